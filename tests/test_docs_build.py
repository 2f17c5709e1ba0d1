"""The documentation site holds together: pages, included examples, generated tables, the API
reference directives and the README's code. The strict ``mkdocs build`` of ``make docs`` checks
the rendering; these checks are quick and say precisely what is wrong."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import re
import textwrap
import types
from pathlib import Path

import pytest

import tremolo
from tremolo.cli import build_parser
from tremolo.options import ROUTE_DEFAULTS, Options

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / 'docs'
EXAMPLES = ROOT / 'examples'
MKDOCS = (ROOT / 'mkdocs.yml').read_text()

#: ``--8<-- "examples/file.py"`` or ``--8<-- "examples/file.py:section"``
INCLUDE = re.compile(r'--8<-- "([^":]+)(?::([\w-]+))?"')
#: Examples that are not documentation examples (``make run`` serves the demo).
NOT_INCLUDED = {'__init__.py', 'demo.py'}


def load_hook(name: str) -> types.ModuleType:
    path = DOCS / 'hooks' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'docs_hook_{name}', path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pages() -> list[Path]:
    return sorted(DOCS.rglob('*.md'))


def sections(path: Path) -> dict[str, str]:
    """The snippet sections of a file (``# --8<-- [start:NAME]`` ... ``[end:NAME]``), dedented
    as the pages show them."""
    found: dict[str, str] = {}
    text = path.read_text()
    for match in re.finditer(r'--8<-- \[start:([\w-]+)\]\n(.*?)\n[ \t]*# --8<-- \[end:\1\]',
                             text, re.S):
        found[match.group(1)] = textwrap.dedent(match.group(2))
    return found


def includes() -> list[tuple[Path, str, str | None]]:
    return [(page, match.group(1), match.group(2))
            for page in pages() for match in INCLUDE.finditer(page.read_text())]


# -- the site ----------------------------------------------------------------------------------

def test_the_built_site_works_from_disk_and_the_readme_says_how_to_read_it():
    # The offline plugin names each page's .html file in links (a folder URL opened from disk
    # is a directory listing) and makes the search index a script rather than a fetch.
    assert re.search(r'^plugins:\n  - search\n(?:  #.*\n)*  - offline$', MKDOCS, re.M)
    readme = (ROOT / 'README.md').read_text()
    assert 'make docs-serve' in readme and 'build/site/index.html' in readme


def test_mkdocs_is_strict_and_reads_the_installed_package():
    assert re.search(r'^strict: true$', MKDOCS, re.M)
    assert 'paths: [build/docpkg]' in MKDOCS
    for hook in re.findall(r'^  - (docs/hooks/\S+\.py)$', MKDOCS, re.M):
        assert (ROOT / hook).is_file(), hook
    assert 'docs/hooks/options_table.py' in MKDOCS


def test_nav_lists_every_page_once():
    listed = re.findall(r':\s+(\S+\.md)$', MKDOCS, re.M)
    assert len(listed) == len(set(listed))
    assert {DOCS / page for page in listed} == set(pages())


def test_every_include_exists():
    assert includes(), 'the pages include no example'
    for page, path, section in includes():
        target = ROOT / path
        assert target.is_file(), f'{page.name} includes missing {path}'
        if section is not None:
            assert section in sections(target), f'{page.name}: no section {section} in {path}'


def test_every_example_is_in_the_docs_and_tested():
    included = {path for _, path, _ in includes()}
    tests = (ROOT / 'tests' / 'test_docs_examples.py').read_text()
    for example in sorted(EXAMPLES.iterdir()):
        if example.name in NOT_INCLUDED or example.name.startswith(('.', '_')):
            continue
        assert f'examples/{example.name}' in included, f'no page includes {example.name}'
        named = (f"'{example.stem}'", f"'{example.name}'")  # example('x'), ... / 'x.py'
        if example.suffix == '.py':
            assert any(name in tests for name in named), (
                f'tests/test_docs_examples.py does not exercise {example.name}')


def test_readme_code_is_tested_examples():
    readme = (ROOT / 'README.md').read_text()
    blocks = re.findall(r'```python\n(.*?)```', readme, re.S)
    assert len(blocks) >= 6  # hello world, streaming, workers, ports, uvloop
    known = []
    for path in EXAMPLES.glob('*.py'):
        known.append(path.read_text())
        known.extend(sections(path).values())
    for block in blocks:
        assert any(block.strip() == text.strip() for text in known), (
            f'README block is not an example file or section:\n{block}')


def test_readme_gives_the_two_commands():
    readme = (ROOT / 'README.md').read_text()
    assert 'make run' in readme and 'make test' in readme and 'make docs' in readme
    assert 'MIT' in readme


# -- the generated configuration table ---------------------------------------------------------

def test_options_table_covers_every_option():
    hook = load_hook('options_table')
    rows = {row[0].strip('`'): row for row in hook.option_rows()}
    fields = dataclasses.fields(Options)
    assert set(rows) == {f.name for f in fields} | set(ROUTE_DEFAULTS)
    flags = {action.dest: action.option_strings for action in build_parser()._actions}
    for field in fields:
        option, flag, variable, default, route, description = rows[field.name]
        expected = ' / '.join(f'`{name}`' for name in flags.get(field.name, [])) or '—'
        assert flag == expected
        assert variable == (f'`TREMOLO_{field.name.upper()}`' if flag != '—' else '—')
        assert route == ('yes' if field.metadata.get('route') else 'no')
        assert description == field.metadata['help'].replace('|', '\\|')
        value = field.default if field.default is not dataclasses.MISSING else (
            field.default_factory())  # type: ignore[misc]
        assert default.startswith(f'`{value!r}`')
    for name, value in ROUTE_DEFAULTS.items():
        assert rows[name][3] == f'`{value!r}`' and rows[name][4] == 'yes (route only)'


def test_options_table_marker_is_replaced():
    hook = load_hook('options_table')
    page = (DOCS / 'configuration.md').read_text()
    assert hook.OPTIONS_MARKER in page and hook.CLI_MARKER in page
    rendered = hook.on_page_markdown(page)
    assert hook.OPTIONS_MARKER not in rendered and hook.CLI_MARKER not in rendered
    assert '| `worker_num` | `--worker-num` | `TREMOLO_WORKER_NUM` | `1` | no |' in rendered
    assert '| `--ssl-certfile` | `TREMOLO_SSL_CERTFILE` |' in rendered
    assert '`10485760` (10 MiB)' in rendered


def test_docstrings_use_markdown_not_sphinx_roles():
    # mkdocstrings reads docstrings as Markdown: a Sphinx role would show up literally.
    role = re.compile(r':(?:meth|class|attr|func|data|mod|exc|obj):`')
    offenders = [
        f'{path.relative_to(ROOT)}:{number}'
        for folder in ('tremolo', 'middleware', 'extensions')
        for path in sorted((ROOT / folder).rglob('*.py'))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if role.search(line)
    ]
    assert offenders == []


# -- the other tables and the API reference ----------------------------------------------------

def test_exception_table_matches_the_classes():
    page = (DOCS / 'errors.md').read_text()
    table = page.split('<!-- exception-table -->', 1)[1].split('\n\n', 1)[0]
    documented = {}
    for row in table.strip().splitlines()[2:]:
        name, status = (cell.strip() for cell in row.strip('|').split('|'))
        documented[name.strip('`')] = status
    for name, status in documented.items():
        cls = getattr(tremolo, name)
        assert issubclass(cls, tremolo.HTTPException)
        assert status.startswith(str(cls.status)), name
    exported = {name for name in tremolo.__all__
                if isinstance(getattr(tremolo, name), type)
                and issubclass(getattr(tremolo, name), tremolo.HTTPException)
                and name != 'HTTPException'}
    assert set(documented) == exported


@pytest.mark.parametrize('page', sorted((DOCS / 'reference').glob('*.md')), ids=lambda p: p.stem)
def test_reference_directives_resolve(page):
    directives = re.findall(r'^::: (\S+)$', page.read_text(), re.M)
    assert directives, f'{page.name} renders nothing'
    for dotted in directives:
        module_name, _, attribute = dotted.rpartition('.')
        try:
            target = getattr(importlib.import_module(module_name), attribute)
        except ModuleNotFoundError:  # a method: tremolo.Options.from_kwargs
            owner_module, _, owner = module_name.rpartition('.')
            target = getattr(getattr(importlib.import_module(owner_module), owner), attribute)
        assert target is not None, dotted
