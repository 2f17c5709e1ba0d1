"""The architecture's rules, read from the source of every module.

- ``tremolo/http/`` is sans-IO: no asyncio, no sockets, nothing of Tremolo outside itself.
- ``tremolo/server/`` never imports the framework (``tremolo/web/``) or the ASGI mode, not
  even inside a function: it is handed a dispatcher factory and a worker entry point.
- The objects handlers use (``tremolo/*.py``) import neither the server nor the framework.
- The framework reaches the server at one documented edge: ``Tremolo.run``.
- The ASGI mode (``tremolo/asgi/``) is a dispatcher: it never imports the server nor the
  framework; the framework may use it (to mount an ASGI application).
- No module imports another in a cycle at import time.
- No module touches another module's private (``_x``) names.
- Middleware and extensions use only public names.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import tremolo

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / 'tremolo'
#: The modules at the top of the package that stand above every layer.
EDGES = ('__init__', '__main__', 'cli', 'launch')


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix('')
    parts = list(relative.parts)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def resolve(path: Path, node: ast.ImportFrom) -> str:
    """The absolute module of a ``from ... import`` in ``path``."""
    if not node.level:
        return node.module or ''
    package = module_name(path).split('.')
    if path.name != '__init__.py':
        package = package[:-1]
    base = package[:len(package) - node.level + 1]
    return '.'.join(base + ([node.module] if node.module else []))


def imports_of(path: Path) -> list[str]:
    """Every module (and ``module.name``) ``path`` imports, wherever the import stands."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = resolve(path, node)
            if node.module is not None:  # ``from . import x`` imports x, not the package
                names.append(module)
            names.extend(f'{module}.{alias.name}' for alias in node.names)
    return names


def import_time_imports(path: Path) -> Iterator[tuple[str, list[str]]]:
    """``(module, names)`` of the imports that run when ``path`` is imported: the module's own
    statements, outside functions and ``if TYPE_CHECKING:`` blocks."""

    def walk(statements: list[ast.stmt]) -> Iterator[tuple[str, list[str]]]:
        for node in statements:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield alias.name, []
            elif isinstance(node, ast.ImportFrom):
                yield resolve(path, node), [alias.name for alias in node.names]
            elif isinstance(node, ast.If):
                if not (isinstance(node.test, ast.Name) and node.test.id == 'TYPE_CHECKING'):
                    yield from walk(node.body)
                yield from walk(node.orelse)
            elif isinstance(node, (ast.Try, ast.With)):
                yield from walk(node.body)
                for handler in getattr(node, 'handlers', ()):
                    yield from walk(handler.body)
            elif isinstance(node, ast.ClassDef):
                yield from walk(node.body)

    yield from walk(ast.parse(path.read_text(), str(path)).body)


def python_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob('*.py'))


def layer_of(name: str) -> str:
    """``'http'``, ``'server'``, ``'web'``, ``'asgi'``, ``'testing'``, ``'middleware'``,
    ``'extensions'``, ``'edge'`` or ``'objects'`` for a ``tremolo.*`` module name."""
    parts = name.split('.')
    if len(parts) == 1:
        return 'edge'
    if parts[1] in ('http', 'server', 'web', 'asgi', 'testing', 'middleware', 'extensions'):
        return parts[1]
    return 'edge' if parts[1] in EDGES else 'objects'


def tremolo_imports(path: Path) -> list[str]:
    return [name for name in imports_of(path) if name.split('.')[0] == 'tremolo']


def layer_files(layer: str) -> list[Path]:
    return [path for path in python_files(PACKAGE) if layer_of(module_name(path)) == layer]


def test_the_layers_are_folders():
    for folder in ('http', 'server', 'web', 'asgi', 'testing'):
        assert (PACKAGE / folder / '__init__.py').is_file()
    assert {path.stem for path in layer_files('server')} >= {
        'protocol', 'output', 'deadlines', 'state', 'proxied', 'eager', 'sockets', 'worker',
        'serve', 'supervisor', 'reloader'}
    assert {path.stem for path in layer_files('web')} >= {
        'app', 'compiled', 'dispatch', 'hooks', 'injection', 'routing', 'views', 'errors',
        'results', 'context', 'extension'}
    assert {path.stem for path in layer_files('asgi')} >= {
        'dispatcher', 'scope', 'http', 'websocket', 'lifespan', 'mount', 'detect'}


@pytest.mark.parametrize('path', layer_files('http'), ids=lambda p: p.name)
def test_sans_io_code_imports_no_io(path):
    for name in imports_of(path):
        top = name.split('.')[0]
        assert top not in ('asyncio', 'socket', 'selectors', 'ssl'), f'{path.name}: {name}'
        if top == 'tremolo':
            assert layer_of(name) == 'http', f'{path.name} imports {name}'


@pytest.mark.parametrize('path', layer_files('server'), ids=lambda p: p.name)
def test_the_server_never_imports_the_framework(path):
    # Nor the package itself or the command line, which import the framework.
    for name in tremolo_imports(path):
        assert layer_of(name) in ('server', 'http', 'objects'), f'{path.name}: {name}'


@pytest.mark.parametrize('path', layer_files('asgi'), ids=lambda p: p.name)
def test_the_asgi_mode_imports_neither_server_nor_framework(path):
    for name in tremolo_imports(path):
        if name.startswith('tremolo.middleware.bandwidth'):
            continue  # the documented convenience: download_rate and upload_rate install it
        assert layer_of(name) in ('asgi', 'objects', 'http', 'edge'), f'{path.name}: {name}'
        assert layer_of(name) != 'edge' or name in ('tremolo', 'tremolo.options',
                                                    'tremolo.types'), f'{path.name}: {name}'


def test_only_the_framework_and_the_edges_use_the_asgi_mode():
    users = set()
    for path in python_files(PACKAGE):
        layer = layer_of(module_name(path))
        if layer != 'asgi' and any(layer_of(name) == 'asgi' for name in tremolo_imports(path)):
            users.add((layer, path.name))
    assert {layer for layer, _ in users} <= {'web', 'edge'}
    assert ('web', 'app.py') in users and ('edge', 'launch.py') in users


@pytest.mark.parametrize('path', layer_files('objects'), ids=lambda p: p.name)
def test_the_objects_import_neither_server_nor_framework(path):
    for name in tremolo_imports(path):
        assert layer_of(name) in ('objects', 'http'), f'{path.name}: {name}'


def test_the_framework_reaches_the_server_only_in_run():
    found = []
    for path in layer_files('web'):
        tree = ast.parse(path.read_text(), str(path))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and layer_of(resolve(path, node)) == 'server':
                    found.append(f'{path.name}:{function.name}')
        top_level = [node for node in tree.body if isinstance(node, ast.ImportFrom)]
        assert not [node for node in top_level if layer_of(resolve(path, node)) == 'server']
    assert found == ['app.py:run']


def test_no_import_time_cycles():
    graph: dict[str, set[str]] = {}
    modules = {module_name(path): path for path in python_files(PACKAGE)}
    for name, path in modules.items():
        edges = graph.setdefault(name, set())
        for module, names in import_time_imports(path):
            if module.split('.')[0] != 'tremolo':
                continue
            # ``from package import module`` imports the module too.
            targets = [f'{module}.{item}' for item in names if f'{module}.{item}' in modules]
            edges.update(targets or [module])
    for name in graph:
        graph[name] = {target for target in graph[name]
                       if target in modules and target != name}

    def cycle_from(start: str) -> list[str]:
        stack = [(start, [start])]
        seen = set()
        while stack:
            node, trail = stack.pop()
            for target in graph[node]:
                if target == start:
                    return trail + [start]
                if target not in seen:
                    seen.add(target)
                    stack.append((target, trail + [target]))
        return []

    cycles = [cycle for name in sorted(graph) if (cycle := cycle_from(name))]
    assert cycles == []


def defined_private_names(tree: ast.AST) -> set[str]:
    """Private names a module defines: functions, classes, assignments, attributes set on
    ``self``, slots, parameters and keyword arguments."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                node.value.isidentifier()):
            names.add(node.value)  # __slots__ entries, getattr() names
    return {name for name in names if name.startswith('_') and not name.startswith('__')}


@pytest.mark.parametrize(
    'path', python_files(PACKAGE) + python_files(ROOT / 'middleware')
    + python_files(ROOT / 'extensions'), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_touches_private_names_of_another(path):
    tree = ast.parse(path.read_text(), str(path))
    own = defined_private_names(tree)
    offenders = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith('_') and not (
                node.attr.startswith('__')):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ('self', 'cls'):
                continue
            if node.attr not in own:
                offenders.append(f'line {node.lineno}: .{node.attr}')
        elif isinstance(node, ast.ImportFrom):
            offenders.extend(f'line {node.lineno}: import {alias.name}' for alias in node.names
                             if alias.name.startswith('_') and not alias.name.startswith('__'))
    assert offenders == []


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


def test_installed_mapping_points_into_the_repository():
    import tremolo.extensions
    import tremolo.middleware

    assert Path(tremolo.middleware.__file__).resolve().parent == ROOT / 'middleware'
    assert Path(tremolo.extensions.__file__).resolve().parent == ROOT / 'extensions'
    assert 'middleware' not in sys.modules and 'extensions' not in sys.modules
