"""Every setting, its default and its meaning, in one typed object.

`Options` drives the keyword arguments of `Tremolo.run`, the flags of
``python -m tremolo`` and the configuration table of the documentation. Fields marked as route
options can also be set per route (as a handler's default argument) and are visible to each
request as ``context.options``. Each field's metadata also declares what a valid value is
(its type, bounds and choices): `check_option` enforces it for the server's options and for
route options alike.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional, Union

if TYPE_CHECKING:  # ssl costs milliseconds to import; only HTTPS servers need it
    import ssl as _ssl


def _opt(default: Any, help: str, *, route: bool = False, cli: bool = True, **rules: Any) -> Any:
    """A field of `Options`.

    Args:
        default: The default value.
        help: One sentence for the CLI and the configuration table.
        route: Also a route option.
        cli: Has a command-line flag.
        **rules: What a valid value is (`check_option`): ``minimum``, ``maximum`` (inclusive),
            ``positive`` (above 0), ``choices``; ``metavar`` for the CLI.
    """
    metadata = {'help': help, 'route': route, 'cli': cli, **rules}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


#: Python types accepted for each kind of option (bool is never a number here).
_KINDS: dict[str, tuple[type, ...]] = {
    'int': (int,), 'float': (int, float), 'bool': (bool,), 'str': (str,), 'list': (list, tuple),
}
_KIND_NAMES = {'int': 'an integer', 'float': 'a number', 'bool': 'True or False',
               'str': 'a string', 'list': 'a list'}


def option_kind(field: dataclasses.Field[Any]) -> str:
    """The kind of an `Options` field for `check_option`: its annotation without parameters
    (``'list[str]'`` is a ``'list'``)."""
    return str(field.type).partition('[')[0]


def check_option(name: str, value: Any, kind: str, rules: Mapping[str, Any]) -> None:
    """Check ``value`` for the option ``name`` of ``kind`` (``'int'``, ``'float'``,
    ``'bool'``, ``'str'``, ``'list'``, or another for no type check) against its ``rules``.

    Raises:
        TypeError: A value of the wrong type, naming the option.
        ValueError: A value out of bounds or not among the choices, naming the option.
    """
    types = _KINDS.get(kind)
    if types is not None and (not isinstance(value, types)
                              or (isinstance(value, bool) and bool not in types)):
        raise TypeError(f'option {name!r} must be {_KIND_NAMES[kind]}, not {value!r} '
                        f'({type(value).__name__})')
    choices = rules.get('choices')
    if choices is not None and value not in choices:
        raise ValueError(f'option {name!r} must be one of {", ".join(map(repr, choices))}, '
                         f'not {value!r}')
    minimum = rules.get('minimum')
    maximum = rules.get('maximum')
    if minimum is not None and maximum is not None and not minimum <= value <= maximum:
        raise ValueError(f'option {name!r} must be between {minimum} and {maximum}, '
                         f'not {value!r}')
    if minimum is not None and value < minimum:
        raise ValueError(f'option {name!r} must be at least {minimum}, not {value!r}')
    if rules.get('positive') and value <= 0:
        raise ValueError(f'option {name!r} must be positive, not {value!r}')
    if rules.get('header_value') and ('\r' in value or '\n' in value):
        raise ValueError(f'option {name!r} must be a header value, without CR or LF')


KiB = 1024
MiB = 1024 * KiB

#: The kinds of file the ``log_config`` option takes.
LOG_CONFIG_SUFFIXES = ('.json', '.toml', '.ini', '.cfg', '.conf')


@dataclass
class Options:
    """Server and route settings. Every field has a default; see the configuration page."""

    host: str = _opt('127.0.0.1', 'Address to bind.')
    port: int = _opt(8000, 'Port to bind (0 picks a free port).', minimum=0, maximum=65535)
    listen: list[Union[int, str]] = _opt(
        [], 'Extra addresses: a port, host:port, or a UNIX socket path (repeatable).',
        metavar='ADDRESS',
    )
    debug: bool = _opt(
        False, 'Debug mode: debug logging, tracebacks in 500 responses, and a warning naming '
        'any handler or hook that blocks the event loop for more than 0.1 s.',
    )
    worker_num: int = _opt(1, 'Number of worker processes (SO_REUSEPORT).', minimum=1)
    supervise: bool = _opt(
        False, 'Run even a single worker in a process of its own under a supervisor, which '
        'SIGHUP reloads (implied by worker_num above 1, max_requests and max_worker_memory).'
    )
    max_requests: int = _opt(
        0, 'Requests a worker serves before it is replaced by a new one, gracefully and one '
        'worker at a time (0: never).', minimum=0,
    )
    max_requests_jitter: int = _opt(
        0, 'Up to this many requests more (at random, per worker) before max_requests '
        'replaces a worker, so that workers started together are not replaced together.',
        minimum=0,
    )
    max_worker_memory: int = _opt(
        0, 'Resident memory (RSS) of a worker, in bytes, above which it is replaced by a new '
        'one, gracefully and one worker at a time (0: no limit; Linux).', minimum=0,
    )
    readiness_path: str = _opt(
        '', 'A path the server answers itself, before the application: 200 while the worker '
        'takes requests, 503 as soon as it stops or is being replaced (empty: none).',
        metavar='PATH',
    )
    liveness_path: str = _opt(
        '', 'A path the server answers itself with 200 while the worker runs (empty: none).',
        metavar='PATH',
    )
    reload: bool = _opt(False, 'Restart the server when a source file changes (development).')
    loop: str = _opt(
        'auto', "Event loop: 'auto' (the current policy), 'asyncio' or 'uvloop'.",
        choices=('auto', 'asyncio', 'uvloop'),
    )
    ssl: Optional[_ssl.SSLContext] = _opt(
        None, 'An ssl.SSLContext to serve HTTPS (CLI: --ssl-certfile/--ssl-keyfile).', cli=False,
    )
    backlog: int = _opt(1024, 'Listen backlog of each socket.', minimum=1)
    thread_pool_size: int = _opt(
        5, 'Threads of each worker that run sync handlers (def, not async def): at most this '
        'many run at once, the others wait for a free thread.', minimum=1,
    )
    trusted_proxies: list[str] = _opt(
        [], "Peers whose Forwarded / X-Forwarded-* fields are believed: IP addresses, networks "
        "(10.0.0.0/8), '*' (all), 'unix' (UNIX socket peers); repeatable or comma-separated.",
        metavar='ADDRESS',
    )
    forwarded_headers: str = _opt(
        'auto', "Fields read from trusted proxies: 'auto' (X-Forwarded-* if present, else "
        "Forwarded), 'forwarded' or 'x-forwarded' (only those).",
        choices=('auto', 'forwarded', 'x-forwarded'),
    )
    proxy_protocol: bool = _opt(
        False, 'Expect a PROXY protocol header (v1 or v2) at the start of every connection.'
    )
    log_level: str = _opt(
        'info', "Level of the 'tremolo' logger ('debug' when debug is on).",
        choices=('critical', 'error', 'warning', 'info', 'debug'),
    )
    access_log: bool = _opt(True, "Log one line per request to the 'tremolo.access' logger.")
    access_log_format: str = _opt(
        'default', "The access log's line: a preset ('default', 'common', 'combined'), 'json' "
        '(one JSON object per line), or a template of named fields such as '
        "'{client} \"{request_line}\" {status} {duration_ms}' (see the deployment page).",
        metavar='FORMAT',
    )
    log_config: str = _opt(
        '', 'A logging configuration file applied at startup: a logging.config dictionary as '
        'JSON (.json) or TOML (.toml), or an INI file (.ini, .cfg, .conf) for fileConfig.',
        metavar='PATH',
    )
    server_name: str = _opt('Tremolo', 'Value of the Server header (empty to omit it).')
    interface: str = _opt(
        'auto', "What the application is: 'auto' (a Tremolo application, else an ASGI 3 "
        "callable), 'tremolo' or 'asgi'.", choices=('auto', 'tremolo', 'asgi'),
    )
    root_path: str = _opt(
        '', "ASGI: the path prefix under which a proxy serves the application (the proxy "
        "strips it): scope['root_path'], and prepended to scope['path'].", metavar='PATH',
    )
    lifespan: str = _opt(
        'auto', "ASGI lifespan protocol: 'auto' (run it if the application supports it), 'on' "
        "(an application that does not fails to start) or 'off'.",
        choices=('auto', 'on', 'off'),
    )

    max_request_line: int = _opt(
        8 * KiB, 'Longest request line, in bytes (414 above it).', minimum=1
    )
    max_header_size: int = _opt(
        16 * KiB, 'Largest request head (request line and fields), in bytes (431 above it).',
        minimum=1
    )
    max_header_count: int = _opt(100, 'Most header fields in a request (431 above it).', minimum=1)
    max_body_size: int = _opt(
        10 * MiB, 'Largest request body, in bytes (413 above it).', route=True, minimum=0,
    )
    buffer_size: int = _opt(
        16 * KiB,
        'Size of the pieces handlers read and write at a time, in bytes (e.g. a file read in '
        'a loop: context.options["buffer_size"]).', route=True, minimum=1,
    )
    body_buffer_size: int = _opt(
        256 * KiB,
        'Unread request body held per request, in bytes: reading the socket pauses above it '
        'until the handler reads (upload backpressure).', route=True, minimum=1,
    )
    max_form_fields: int = _opt(
        1000, 'Most fields of a form, or parts of a multipart body (413 above it).', route=True,
        minimum=1,
    )
    max_form_field_size: int = _opt(
        1 * MiB, 'Largest text field of a form read by request.form(), in bytes (413 above it).',
        route=True, minimum=1,
    )
    max_part_size: int = _opt(
        0, 'Largest part of a multipart body, in bytes (413 above it); 0: only max_body_size '
        'limits it.', route=True, minimum=0,
    )
    max_part_header_size: int = _opt(
        8 * KiB, 'Largest header section of one part of a multipart body, in bytes (413 above '
        'it).', route=True, minimum=1,
    )
    max_preamble_size: int = _opt(
        16 * KiB, 'Largest preamble, and epilogue, of a multipart body, in bytes (413 above it).',
        route=True, minimum=1,
    )
    sse_keepalive: float = _opt(
        15.0, 'Seconds of silence after which an event stream sends a keep-alive comment '
        '(0 disables it).', route=True, minimum=0,
    )
    max_pipelined_bytes: int = _opt(
        64 * KiB, 'Bytes of pipelined requests held while one is answered; reading pauses above.',
        minimum=1
    )

    download_rate: float = _opt(
        0, 'Download speed limit, in bytes per second, over rate_scope (0: unlimited). Per '
        'route: the rate route option.', minimum=0,
    )
    upload_rate: float = _opt(
        0, 'Upload speed limit, in bytes per second, over rate_scope (0: unlimited). As a '
        "route option: the limit of each of the route's requests on its own.", route=True,
        minimum=0,
    )
    rate_scope: str = _opt(
        'connection', 'What download_rate and upload_rate limit: each connection, each client '
        'address (its connections share the rate), each worker process, or the whole server '
        '(global: one budget for all its workers).',
        choices=('connection', 'client', 'worker', 'global'),
    )
    rate_burst: int = _opt(
        0, 'Bytes a limited transfer may send at once after a pause (0: a twentieth of a '
        "second's worth of the rate, 16 KiB to 1 MiB).", minimum=0,
    )
    websocket_max_message_size: int = _opt(
        1 * MiB, 'Largest WebSocket message received, in bytes, after decompression (the '
        'connection closes with 1009 above it).', route=True, minimum=1,
    )
    websocket_compression: bool = _opt(
        True, 'Accept permessage-deflate (RFC 7692) when a WebSocket client offers it.',
        route=True,
    )
    websocket_ping_interval: float = _opt(
        20.0, 'Seconds between keep-alive pings on an open WebSocket (0: no pings).', route=True,
        minimum=0,
    )
    websocket_ping_timeout: float = _opt(
        20.0, 'Seconds a WebSocket client has to answer a keep-alive ping before the connection '
        'is dropped (0: wait forever).', route=True, minimum=0,
    )

    max_connections: int = _opt(
        0, 'Most connections a worker serves at once (0: no limit). At the limit it stops '
        'accepting until one closes (new clients wait in the listen backlog) and closes '
        'connections idle between requests.', minimum=0
    )
    max_connections_per_ip: int = _opt(
        0, 'Most connections a worker serves at once from one client IP address (0: no '
        'limit); a request on a connection above it is answered 503 and the connection closed.',
        minimum=0
    )

    header_timeout: float = _opt(
        10.0, 'Seconds to receive a complete request head, counted from the connection or, '
        'between keep-alive requests, from its first byte (408 after).', positive=True
    )
    body_timeout: float = _opt(
        30.0, 'Seconds a body read may wait for the next data from the client (408 after).',
        positive=True
    )
    keepalive_timeout: float = _opt(
        30.0, 'Seconds an idle keep-alive connection is kept open between requests.', positive=True
    )
    min_data_rate: float = _opt(
        240.0, 'Slowest a client may send a request head or body, in bytes per second, once '
        'min_data_rate_grace has passed (0: no minimum); slower: 408 and close.', minimum=0
    )
    min_data_rate_grace: float = _opt(
        5.0, 'Seconds a request head or body may arrive at any pace before min_data_rate applies.',
        minimum=0
    )
    handler_timeout: float = _opt(
        0.0, 'Seconds a request may take from its head to the end of its response (0: no '
        'limit); then its handler is cancelled: 503 if nothing was sent yet, else the '
        'connection is cut. Routes that stream events or open WebSockets have no limit '
        'unless they set one.', route=True, minimum=0
    )
    graceful_shutdown_timeout: float = _opt(
        30.0, 'Seconds in-flight requests get to finish when the server stops (a second '
        'SIGINT/SIGTERM cuts it short).', positive=True
    )

    def __post_init__(self) -> None:
        if isinstance(self.trusted_proxies, str):
            self.trusted_proxies = [self.trusted_proxies]
        for f in dataclasses.fields(self):
            check_option(f.name, getattr(self, f.name), option_kind(f), f.metadata)
        for address in self.listen:
            if isinstance(address, bool) or not isinstance(address, (int, str)):
                raise TypeError(f"option 'listen' holds ports (int) and addresses (str), not "
                                f'{address!r} ({type(address).__name__})')
        if self.ssl is not None:
            import ssl

            if not isinstance(self.ssl, ssl.SSLContext):
                raise TypeError(
                    f"option 'ssl' must be an ssl.SSLContext (see the deployment page), not "
                    f'{self.ssl!r} ({type(self.ssl).__name__})'
                )
        self.trusted_proxies = [entry.strip() for value in self.trusted_proxies
                                for entry in str(value).split(',') if entry.strip()]
        if self.trusted_proxies or self.forwarded_headers != 'auto':
            from .http.forwarded import TrustedProxies

            TrustedProxies(self.trusted_proxies, self.forwarded_headers)  # raises ValueError
        if self.root_path and (not self.root_path.startswith('/')
                               or self.root_path.endswith('/')):
            raise ValueError(f"option 'root_path' must start with / and not end with one, "
                             f'not {self.root_path!r}')
        if self.proxy_protocol and self.ssl is not None:
            # The PROXY header comes before the TLS handshake, which asyncio starts itself on
            # a TLS listener: a proxy that speaks PROXY protocol terminates TLS.
            raise ValueError('proxy_protocol cannot be combined with ssl: terminate TLS at '
                             'the proxy (PROXY v2 tells Tremolo that the client used TLS)')
        self._check_operations()
        if self.debug and self.log_level == 'info':
            self.log_level = 'debug'

    def _check_operations(self) -> None:
        """The options of logs, health answers and worker recycling."""
        if self.access_log_format != 'default':
            from .access_log import compile_format

            compile_format(self.access_log_format)  # raises ValueError naming the option
        if self.log_config:
            suffix = os.path.splitext(self.log_config)[1].lower()
            if suffix not in LOG_CONFIG_SUFFIXES:
                raise ValueError(f'option \'log_config\': {self.log_config!r} is not a .json, '
                                 '.toml, .ini, .cfg or .conf file')
            if not os.path.isfile(self.log_config):
                raise ValueError(f'option \'log_config\': no such file: {self.log_config!r}')
        for name in ('readiness_path', 'liveness_path'):
            path = getattr(self, name)
            if path and (not path.startswith('/') or '?' in path or ' ' in path):
                raise ValueError(f'option {name!r} must be a path starting with /, without a '
                                 f'query, not {path!r}')
        if self.readiness_path and self.readiness_path == self.liveness_path:
            raise ValueError('options \'readiness_path\' and \'liveness_path\' must differ')
        if self.max_requests_jitter and not self.max_requests:
            raise ValueError("option 'max_requests_jitter' needs max_requests")

    @property
    def supervised(self) -> bool:
        """Whether the workers run under a supervisor process."""
        return bool(self.worker_num > 1 or self.supervise or self.max_requests
                    or self.max_worker_memory)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> Options:
        """Build options from keyword arguments, naming any unknown one.

        Raises:
            TypeError: An argument that is not an option.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise TypeError(
                f'unknown option(s): {", ".join(unknown)}; valid options are: '
                f'{", ".join(sorted(names))}'
            )
        return cls(**kwargs)

    def route_defaults(self) -> dict[str, Any]:
        """The route options with this server's values, the base of every ``context.options``."""
        values = dict(ROUTE_DEFAULTS)
        for f in dataclasses.fields(self):
            if f.metadata.get('route'):
                values[f.name] = getattr(self, f.name)
        return values


#: Route options that only exist per route (the others are `Options` fields marked ``route``),
#: with their default, meaning and rules (see `check_option`). A handler's default argument of
#: the same name overrides them.
ROUTE_ONLY: dict[str, dict[str, Any]] = {
    'content_type': {
        'default': 'text/html; charset=utf-8', 'kind': 'str', 'header_value': True,
        'help': 'Content-Type of the response (JSON results use application/json unless '
                'this is set on the route).',
    },
    'status': {
        'default': 200, 'kind': 'int', 'minimum': 100, 'maximum': 999,
        'help': 'Status code of the response.',
    },
    'rate': {
        'default': 0, 'kind': 'float', 'minimum': 0,
        'help': 'Download speed limit of each response of the route on its own, in bytes per '
                'second (0: unlimited).',
    },
    'websocket_subprotocols': {
        'default': (), 'kind': 'any',
        'help': 'WebSocket subprotocols the route speaks, in order of preference: the first '
                'one the client offers is agreed.',
    },
    'websocket_origins': {
        'default': None, 'kind': 'any',
        'help': 'Origins allowed to open a WebSocket (a list, or a function of the Origin '
                'value returning a bool); None allows any.',
    },
}

#: The defaults of `ROUTE_ONLY`.
ROUTE_DEFAULTS: dict[str, Any] = {name: spec['default'] for name, spec in ROUTE_ONLY.items()}

#: The meanings of `ROUTE_ONLY`, rendered in the configuration page.
ROUTE_HELP: dict[str, str] = {name: spec['help'] for name, spec in ROUTE_ONLY.items()}

#: The type and rules of every route option, by name: the `Options` fields marked ``route``
#: and `ROUTE_ONLY`.
ROUTE_RULES: dict[str, tuple[str, Mapping[str, Any]]] = {
    **{f.name: (option_kind(f), f.metadata) for f in dataclasses.fields(Options)
       if f.metadata.get('route')},
    **{name: (spec['kind'], spec) for name, spec in ROUTE_ONLY.items()},
}


#: The prefix of the environment variables the command line reads: ``TREMOLO_PORT=8000``.
ENV_PREFIX = 'TREMOLO_'

_TRUE = frozenset(('1', 'true', 'yes', 'on'))
_FALSE = frozenset(('0', 'false', 'no', 'off'))


def option_from_text(name: str, kind: str, text: str) -> Any:
    """The value of option ``name`` of ``kind`` written as ``text`` (an environment
    variable): ``'8000'`` → ``8000``, ``'true'`` → ``True``, ``'a, b'`` → ``['a', 'b']``.

    Raises:
        ValueError: Text that is not a value of that kind, naming the option and the kind.
    """
    if kind not in ('int', 'float', 'bool', 'list'):
        return text  # a string, or a kind without a text form: the option's own check decides
    if kind == 'list':
        return [item.strip() for item in text.split(',') if item.strip()]
    value = text.strip()
    if kind == 'bool':
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
    else:
        convert = int if kind == 'int' else float
        try:
            return convert(value)
        except ValueError:
            pass
    expected = 'true or false (or yes/no, on/off, 1/0)' if kind == 'bool' else _KIND_NAMES[kind]
    raise ValueError(f'option {name!r} must be {expected}, not {text!r}')


def options_from_environ(environ: Mapping[str, str],
                         names: Optional[Iterable[str]] = None) -> dict[str, Any]:
    """The options set by ``TREMOLO_<OPTION>`` variables of ``environ`` (``TREMOLO_PORT``,
    ``TREMOLO_WORKER_NUM``...), converted (see `option_from_text`) and checked against their
    own rules (`check_option`; `Options` checks how they go together).

    Args:
        environ: The environment, usually ``os.environ``.
        names: The options to look for (default: those with a command-line flag).

    Raises:
        ValueError: A value that cannot be converted or breaks its option's rules, naming
            the variable.
    """
    fields = {f.name: f for f in dataclasses.fields(Options)}
    if names is None:
        names = [name for name, f in fields.items() if f.metadata.get('cli', True)]
    values: dict[str, Any] = {}
    for name in names:
        variable = ENV_PREFIX + name.upper()
        text = environ.get(variable)
        if text is None:
            continue
        field = fields[name]
        try:
            kind = option_kind(field)
            value = option_from_text(name, kind, text)
            check_option(name, value, kind, field.metadata)
        except (TypeError, ValueError) as exc:
            raise ValueError(f'{variable}: {exc}') from None
        values[name] = value
    return values
