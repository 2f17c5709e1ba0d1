"""Layer rules, read from the imports of every module."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import tremolo

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / 'tremolo'

# The protocol/stream layer: it must not know about the framework above it.
STREAM_LAYER = (
    'protocol', 'state', 'eager', 'body_stream', 'request', 'response', 'upgrade', 'connection',
    'output', 'timeouts',
)
FRAMEWORK = ('routing', 'pipeline', 'injection', 'dispatch', 'compiled', 'app', 'results')


def imports_of(path: Path) -> list[str]:
    """Absolute module names imported by ``path`` (relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    package = '.'.join(path.relative_to(ROOT).with_suffix('').parts[:-1])
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                module = '.'.join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ''
            names.append(module)
            names.extend(f'{module}.{alias.name}' for alias in node.names)
    return names


def python_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob('*.py'))


@pytest.mark.parametrize('path', python_files(PACKAGE / 'http'), ids=lambda p: p.name)
def test_sans_io_code_imports_no_io(path):
    for name in imports_of(path):
        top = name.split('.')[0]
        assert top not in ('asyncio', 'socket', 'selectors', 'ssl'), f'{path.name}: {name}'
        if top == 'tremolo':
            assert name.startswith('tremolo.http'), f'{path.name} imports {name}'


@pytest.mark.parametrize('module', STREAM_LAYER)
def test_stream_layer_does_not_import_the_framework(module):
    for name in imports_of(PACKAGE / f'{module}.py'):
        parts = name.split('.')
        assert not (parts[0] == 'tremolo' and len(parts) > 1 and parts[1] in FRAMEWORK), (
            f'{module}.py imports {name}'
        )


@pytest.mark.parametrize(
    'path', python_files(ROOT / 'middleware') + python_files(ROOT / 'extensions'),
    ids=lambda p: f'{p.parent.name}/{p.name}',
)
def test_middleware_and_extensions_use_only_public_names(path):
    public = set(tremolo.__all__)
    for name in imports_of(path):
        parts = name.split('.')
        if parts[0] != 'tremolo' or len(parts) == 1:
            continue
        if parts[1] in ('middleware', 'extensions', 'testing', 'http'):
            continue
        assert parts[1] in public or name == 'tremolo', f'{path} imports {name}'


def test_no_bare_middleware_or_extensions_imports():
    offenders = []
    for path in python_files(ROOT):
        if any(part in ('.venv', 'build', '.git', 'node_modules') or part.startswith('.')
               for part in path.relative_to(ROOT).parts[:-1]):
            continue
        for name in imports_of(path):
            if name.split('.')[0] in ('middleware', 'extensions'):
                offenders.append(f'{path.relative_to(ROOT)}: {name}')
    assert offenders == []


def test_modules_stay_small():
    too_long = {
        str(path.relative_to(ROOT)): count
        for path in python_files(PACKAGE)
        if (count := len(path.read_text().splitlines())) > 500
    }
    assert too_long == {}


def test_installed_mapping_points_into_the_repository():
    import tremolo.extensions
    import tremolo.middleware

    assert Path(tremolo.middleware.__file__).resolve().parent == ROOT / 'middleware'
    assert Path(tremolo.extensions.__file__).resolve().parent == ROOT / 'extensions'
    assert 'middleware' not in sys.modules and 'extensions' not in sys.modules
