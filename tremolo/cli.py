"""``python -m tremolo module:app``: the command line, built from
`Options`.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import importlib.util
import os
import ssl
import sys
import sysconfig
from types import ModuleType
from typing import Any, Mapping, Optional, Sequence

from . import __version__
from .asgi.detect import interface_of
from .asgi.errors import LifespanFailure
from .launch import run
from .options import ENV_PREFIX, Options, option_kind, options_from_environ
from .server.sockets import addresses


def build_parser() -> argparse.ArgumentParser:
    """An argument parser with one flag per option (``worker_num`` → ``--worker-num``)."""
    parser = argparse.ArgumentParser(
        prog='python -m tremolo',
        description='Serve a Tremolo application or an ASGI 3 application.',
        epilog=f'Every option can also be set by an environment variable: {ENV_PREFIX} and its '
        f'name in capitals ({ENV_PREFIX}PORT=8001, {ENV_PREFIX}WORKER_NUM=4, '
        f'{ENV_PREFIX}SSL_CERTFILE=cert.pem); a flag wins over the variable.',
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument('app', help="the application, as 'module:attribute' or "
                        "'path/to/file.py:attribute' (default attribute: app), e.g. "
                        "'hello:app' or 'hello.py'")
    parser.add_argument('--version', action='version', version=f'tremolo {__version__}')
    for field in dataclasses.fields(Options):
        meta = field.metadata
        if not meta.get('cli', True):
            continue
        flag = '--' + field.name.replace('_', '-')
        help_text = f"{meta['help']} (default: {_default(field)})"
        kind = option_kind(field)
        if kind == 'bool':
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_text)
        elif kind == 'list':
            parser.add_argument(flag, action='append', metavar=meta.get('metavar'),
                                help=help_text)
        else:
            convert = {'int': int, 'float': float}.get(kind, str)
            parser.add_argument(flag, type=convert, choices=meta.get('choices'),
                                help=help_text)
    parser.add_argument('--ssl-certfile', help='certificate chain (PEM) to serve HTTPS')
    parser.add_argument('--ssl-keyfile', help='private key (PEM) of the certificate')
    parser.add_argument('--ssl-keyfile-password',
                        help='password of an encrypted private key (the TREMOLO_SSL_KEYFILE_'
                        'PASSWORD environment variable keeps it out of the process list)')
    return parser


def _default(field: dataclasses.Field[Any]) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def load_app(spec: str, interface: str = 'auto') -> Any:
    """Import ``'module:attribute'`` (the working directory is importable), or the file of
    ``'path/to/app.py:attribute'`` (its directory is importable, as with ``python app.py``):
    a Tremolo application or an ASGI 3 application, as ``interface`` allows.

    Raises:
        SystemExit: With a one-line message when the module cannot be found or has no such
            application. An error raised *inside* the module keeps its traceback.
    """
    path, attribute = _file_spec(spec)
    if path is not None:
        return _application(spec, _import_file(spec, path), f'file {path!r}', attribute,
                            interface)
    module_name, _, attribute = spec.partition(':')
    attribute = attribute or 'app'
    # A name importlib cannot take is a usage error too, not a traceback.
    if not module_name or module_name.startswith('.') or not all(module_name.split('.')):
        raise SystemExit(f"error: cannot read the application {spec!r}: use 'module:attribute'")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # A missing module is a usage error, worth one clear line rather than a traceback; a
        # module that fails to import one of *its* dependencies still shows the traceback.
        if exc.name is None or not (module_name == exc.name
                                    or module_name.startswith(exc.name + '.')):
            raise
        raise SystemExit(f'error: cannot import module {module_name!r} for {spec!r} '
                         f'({exc}); the working directory {os.getcwd()!r} is importable') from None
    return _application(spec, module, f'module {module_name!r}', attribute, interface)


def _application(spec: str, module: ModuleType, source: str, attribute: str,
                 interface: str) -> Any:
    try:
        app = getattr(module, attribute)
    except AttributeError:
        raise SystemExit(f'error: {source} has no attribute {attribute!r}') from None
    # Anything else (a handler, a module) is refused here, with its name.
    try:
        interface_of(app, interface)
    except TypeError as exc:
        raise SystemExit(f'error: {spec!r}: {exc}') from None
    return app


def _file_spec(spec: str) -> tuple[Optional[str], str]:
    """``('path/app.py', 'attribute')`` for a file spec, ``(None, '')`` for a module spec."""
    path, sep, attribute = spec.rpartition(':')
    if not sep or not attribute.isidentifier():
        path, attribute = spec, ''  # no attribute (or a Windows drive's colon)
    if path.endswith('.py') or os.sep in path or (os.altsep and os.altsep in path):
        return path, attribute or 'app'
    return None, ''


def _import_file(spec: str, path: str) -> ModuleType:
    """Run the file at ``path`` as a module named after it, the way ``python path`` would find
    its neighbours (its directory first on ``sys.path``)."""
    if not os.path.isfile(path):
        raise SystemExit(f'error: cannot load the application {spec!r}: no file {path!r}')
    name = os.path.splitext(os.path.basename(path))[0]
    directory = os.path.dirname(os.path.abspath(path))
    if directory not in sys.path:
        sys.path.insert(0, directory)
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise SystemExit(f'error: cannot load the application {spec!r}: {path!r} is not a '
                         f'Python file')
    module = importlib.util.module_from_spec(module_spec)
    # Registered before it runs, like an imported module: its own code (dataclasses, pickling,
    # `import hello` elsewhere) finds it under its name.
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def reload_app(spec: str, preloaded: frozenset[str], interface: str = 'auto') -> Any:
    """Import the application ``spec`` afresh, for the workers of a reload (SIGHUP): the
    modules imported since ``preloaded`` (the names of ``sys.modules`` before the first
    import), except those of installed packages and of the standard library, are imported
    again.

    Raises:
        SystemExit: As `load_app`.
    """
    installed = tuple(
        os.path.realpath(path) + os.sep
        for key in ('stdlib', 'platstdlib', 'purelib', 'platlib')
        if (path := sysconfig.get_paths().get(key))
    )
    for name in [name for name in sys.modules if name not in preloaded]:
        module = sys.modules.get(name)
        path = getattr(module, '__file__', None)
        if path is None or os.path.realpath(path).startswith(installed):
            continue  # a namespace package, a built-in, an installed library
        del sys.modules[name]
    importlib.invalidate_caches()
    return load_app(spec, interface)


def options_from_args(args: argparse.Namespace,
                      environ: Optional[Mapping[str, str]] = None) -> dict[str, Any]:
    """The options of parsed command-line ``args``, over those of the ``TREMOLO_<OPTION>``
    variables of ``environ`` (default: ``os.environ``): a flag wins over a variable.

    Raises:
        ValueError: A variable whose value cannot be read, naming it.
        SystemExit: A certificate that cannot be loaded, or TLS flags that do not go together.
    """
    flags = {k: v for k, v in vars(args).items()
             if k not in ('app', 'ssl_certfile', 'ssl_keyfile', 'ssl_keyfile_password')}
    if environ is None:
        environ = os.environ
    values = {**options_from_environ(environ), **flags}
    certfile = getattr(args, 'ssl_certfile', None) or environ.get(ENV_PREFIX + 'SSL_CERTFILE')
    keyfile = getattr(args, 'ssl_keyfile', None) or environ.get(ENV_PREFIX + 'SSL_KEYFILE')
    password = getattr(args, 'ssl_keyfile_password', None)
    if password is None:
        password = environ.get(ENV_PREFIX + 'SSL_KEYFILE_PASSWORD')
    if certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(certfile, keyfile, password)
        except (OSError, ssl.SSLError) as exc:
            # A missing file or a wrong password is a usage error, not a traceback.
            raise SystemExit(f'error: cannot load the certificate {certfile!r}: {exc}') from None
        values['ssl'] = context
    elif keyfile:
        raise SystemExit(f'error: --ssl-keyfile ({ENV_PREFIX}SSL_KEYFILE) needs --ssl-certfile '
                         f'({ENV_PREFIX}SSL_CERTFILE)')
    elif getattr(args, 'ssl_keyfile_password', None):
        raise SystemExit('error: --ssl-keyfile-password needs --ssl-certfile')
    return values


def main(argv: Optional[Sequence[str]] = None,
         environ: Optional[Mapping[str, str]] = None) -> None:
    """Entry point of ``python -m tremolo`` and of the ``tremolo`` command.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).
        environ: Where ``TREMOLO_<OPTION>`` variables are read (default: ``os.environ``).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        values = options_from_args(args, environ)
        options = Options.from_kwargs(**values)
        # A bad --listen value is a usage error now, not a failure at bind time.
        addresses(options)
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    # After the options are checked: a bad flag is reported without first running the
    # application module's import-time code.
    preloaded = frozenset(sys.modules)
    app = load_app(args.app, options.interface)
    host, port = options.host, options.port
    extra = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)
             if f.name not in ('host', 'port')}
    # SIGHUP imports the application afresh for the new workers.
    loader = functools.partial(reload_app, args.app, preloaded, options.interface)
    try:
        run(app, host, port, loader=loader, **extra)
    except LifespanFailure as exc:
        raise SystemExit(f'error: {exc}') from None
