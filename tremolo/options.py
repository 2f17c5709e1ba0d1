"""Every setting, its default and its meaning, in one typed object.

`Options` drives the keyword arguments of `Tremolo.run`, the flags of
``python -m tremolo`` and the configuration table of the documentation. Fields marked as route
options can also be set per route (as a handler's default argument) and are visible to each
request as ``context.options``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:  # ssl costs milliseconds to import; only HTTPS servers need it
    import ssl as _ssl


def _opt(default: Any, help: str, *, route: bool = False, cli: bool = True, **extra: Any) -> Any:
    metadata = {'help': help, 'route': route, 'cli': cli, **extra}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


KiB = 1024
MiB = 1024 * KiB


@dataclass
class Options:
    """Server and route settings. Every field has a default; see the configuration page."""

    host: str = _opt('127.0.0.1', 'Address to bind.')
    port: int = _opt(8000, 'Port to bind (0 picks a free port).')
    listen: list = _opt(
        [], 'Extra addresses: a port, host:port, or a UNIX socket path (repeatable).',
        metavar='ADDRESS',
    )
    debug: bool = _opt(False, 'Debug mode: debug logging and tracebacks in 500 responses.')
    worker_num: int = _opt(1, 'Number of worker processes (SO_REUSEPORT).')
    reload: bool = _opt(False, 'Restart the server when a source file changes (development).')
    loop: str = _opt(
        'auto', "Event loop: 'auto' (the current policy), 'asyncio' or 'uvloop'.",
        choices=('auto', 'asyncio', 'uvloop'),
    )
    ssl: Optional[_ssl.SSLContext] = _opt(
        None, 'An ssl.SSLContext to serve HTTPS (CLI: --ssl-certfile/--ssl-keyfile).', cli=False,
    )
    backlog: int = _opt(1024, 'Listen backlog of each socket.')
    trusted_proxies: list = _opt(
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
    server_name: str = _opt('Tremolo', 'Value of the Server header (empty to omit it).')

    max_request_line: int = _opt(8 * KiB, 'Longest request line, in bytes (414 above it).')
    max_header_size: int = _opt(
        16 * KiB, 'Largest request head (request line and fields), in bytes (431 above it).'
    )
    max_header_count: int = _opt(100, 'Most header fields in a request (431 above it).')
    max_body_size: int = _opt(
        10 * MiB, 'Largest request body, in bytes (413 above it).', route=True,
    )
    buffer_size: int = _opt(
        16 * KiB,
        'Size of the pieces handlers read and write at a time, in bytes (e.g. a file read in '
        'a loop: context.options["buffer_size"]).', route=True,
    )
    body_buffer_size: int = _opt(
        256 * KiB,
        'Unread request body held per request, in bytes: reading the socket pauses above it '
        'until the handler reads (upload backpressure).', route=True,
    )
    max_form_fields: int = _opt(
        1000, 'Most fields of a form, or parts of a multipart body (413 above it).', route=True,
    )
    max_form_field_size: int = _opt(
        1 * MiB, 'Largest text field of a form read by request.form(), in bytes (413 above it).',
        route=True,
    )
    max_part_size: int = _opt(
        0, 'Largest part of a multipart body, in bytes (413 above it); 0: only max_body_size '
        'limits it.', route=True,
    )
    max_part_header_size: int = _opt(
        8 * KiB, 'Largest header section of one part of a multipart body, in bytes (413 above '
        'it).', route=True,
    )
    max_preamble_size: int = _opt(
        16 * KiB, 'Largest preamble, and epilogue, of a multipart body, in bytes (413 above it).',
        route=True,
    )
    sse_keepalive: float = _opt(
        15.0, 'Seconds of silence after which an event stream sends a keep-alive comment '
        '(0 disables it).', route=True,
    )
    max_pipelined_bytes: int = _opt(
        64 * KiB, 'Bytes of pipelined requests held while one is answered; reading pauses above.'
    )

    download_rate: int = _opt(
        0, 'Download speed limit, in bytes per second, over rate_scope (0: unlimited). Per '
        'route: the rate route option.',
    )
    upload_rate: int = _opt(
        0, 'Upload speed limit, in bytes per second, over rate_scope (0: unlimited). As a '
        "route option: the limit of each of the route's requests on its own.", route=True,
    )
    rate_scope: str = _opt(
        'connection', 'What download_rate and upload_rate limit: each connection, each client '
        'address (its connections share the rate), or the whole worker.',
        choices=('connection', 'client', 'worker'),
    )
    rate_burst: int = _opt(
        0, 'Bytes a limited transfer may send at once after a pause (0: a twentieth of a '
        "second's worth of the rate, 16 KiB to 1 MiB).",
    )
    websocket_max_message_size: int = _opt(
        1 * MiB, 'Largest WebSocket message received, in bytes, after decompression (the '
        'connection closes with 1009 above it).', route=True,
    )
    websocket_compression: bool = _opt(
        True, 'Accept permessage-deflate (RFC 7692) when a WebSocket client offers it.',
        route=True,
    )
    websocket_ping_interval: float = _opt(
        20.0, 'Seconds between keep-alive pings on an open WebSocket (0: no pings).', route=True,
    )
    websocket_ping_timeout: float = _opt(
        20.0, 'Seconds a WebSocket client has to answer a keep-alive ping before the connection '
        'is dropped (0: wait forever).', route=True,
    )

    max_connections: int = _opt(
        0, 'Most connections a worker serves at once (0: no limit). At the limit it stops '
        'accepting until one closes (new clients wait in the listen backlog) and closes '
        'connections idle between requests.'
    )
    max_connections_per_ip: int = _opt(
        0, 'Most connections a worker serves at once from one client IP address (0: no '
        'limit); a request on a connection above it is answered 503 and the connection closed.'
    )

    header_timeout: float = _opt(
        10.0, 'Seconds to receive a complete request head, counted from the connection or, '
        'between keep-alive requests, from its first byte (408 after).'
    )
    body_timeout: float = _opt(
        30.0, 'Seconds a body read may wait for the next data from the client (408 after).'
    )
    keepalive_timeout: float = _opt(
        30.0, 'Seconds an idle keep-alive connection is kept open between requests.'
    )
    min_data_rate: float = _opt(
        240.0, 'Slowest a client may send a request head or body, in bytes per second, once '
        'min_data_rate_grace has passed (0: no minimum); slower: 408 and close.'
    )
    min_data_rate_grace: float = _opt(
        5.0, 'Seconds a request head or body may arrive at any pace before min_data_rate applies.'
    )
    handler_timeout: float = _opt(
        0.0, 'Seconds a request may take from its head to the end of its response (0: no '
        'limit); then its handler is cancelled: 503 if nothing was sent yet, else the '
        'connection is cut.'
    )
    graceful_shutdown_timeout: float = _opt(
        30.0, 'Seconds in-flight requests get to finish when the server stops (a second '
        'SIGINT/SIGTERM cuts it short).'
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ('int', 'float') and isinstance(value, bool):
                raise TypeError(f'option {f.name!r} must be a number, not {value!r}')
        for name in (
            'max_request_line', 'max_header_size', 'max_header_count', 'max_body_size',
            'buffer_size', 'body_buffer_size', 'max_pipelined_bytes', 'worker_num', 'backlog',
            'max_form_fields', 'max_form_field_size', 'max_part_header_size', 'max_preamble_size',
            'websocket_max_message_size',
        ):
            if getattr(self, name) < 1:
                raise ValueError(f'option {name!r} must be at least 1')
        for name in ('max_part_size', 'sse_keepalive'):
            if getattr(self, name) < 0:
                raise ValueError(f'option {name!r} must not be negative')
        for name in ('header_timeout', 'body_timeout', 'keepalive_timeout',
                     'graceful_shutdown_timeout'):
            if getattr(self, name) <= 0:
                raise ValueError(f'option {name!r} must be positive')
        for name in ('download_rate', 'upload_rate', 'rate_burst'):
            if getattr(self, name) < 0:
                raise ValueError(f'option {name!r} must be 0 or more bytes (per second)')
        if self.rate_scope not in ('connection', 'client', 'worker'):
            raise ValueError(
                f"rate_scope must be 'connection', 'client' or 'worker', not {self.rate_scope!r}"
            )
        for name in ('websocket_ping_interval', 'websocket_ping_timeout'):
            if getattr(self, name) < 0:
                raise ValueError(f'option {name!r} must not be negative')
        for name in ('max_connections', 'max_connections_per_ip', 'min_data_rate',
                     'min_data_rate_grace', 'handler_timeout'):
            if getattr(self, name) < 0:
                raise ValueError(f'option {name!r} must be at least 0')
        if not 0 <= self.port <= 65535:
            raise ValueError(f'port must be between 0 and 65535, not {self.port}')
        if self.loop not in ('auto', 'asyncio', 'uvloop'):
            raise ValueError(f"loop must be 'auto', 'asyncio' or 'uvloop', not {self.loop!r}")
        if isinstance(self.trusted_proxies, str):
            self.trusted_proxies = [self.trusted_proxies]
        self.trusted_proxies = [entry.strip() for value in self.trusted_proxies
                                for entry in str(value).split(',') if entry.strip()]
        if self.trusted_proxies or self.forwarded_headers != 'auto':
            from .http.forwarded import TrustedProxies

            TrustedProxies(self.trusted_proxies, self.forwarded_headers)  # raises ValueError
        if self.proxy_protocol and self.ssl is not None:
            # Why: the PROXY header comes before the TLS handshake, which asyncio starts
            # itself on a TLS listener; a proxy that speaks PROXY protocol terminates TLS.
            raise ValueError('proxy_protocol cannot be combined with ssl: terminate TLS at '
                             'the proxy (PROXY v2 tells Tremolo that the client used TLS)')
        if self.debug and self.log_level == 'info':
            self.log_level = 'debug'

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


#: Route options that only exist per route (the others are `Options` fields marked
#: ``route``). A handler's default argument of the same name overrides them.
ROUTE_DEFAULTS: dict[str, Any] = {
    'content_type': 'text/html; charset=utf-8',
    'status': 200,
    'rate': 0,
    'websocket_subprotocols': (),
    'websocket_origins': None,
}

#: Documentation of `ROUTE_DEFAULTS`, rendered in the configuration page.
ROUTE_HELP: dict[str, str] = {
    'content_type': 'Content-Type of the response (JSON results use application/json unless '
    'this is set on the route).',
    'status': 'Status code of the response.',
    'rate': 'Download speed limit of each response of the route on its own, in bytes per '
    'second (0: unlimited).',
    'websocket_subprotocols': 'WebSocket subprotocols the route speaks, in order of preference: '
    'the first one the client offers is agreed.',
    'websocket_origins': 'Origins allowed to open a WebSocket (a list, or a function of the '
    'Origin value returning a bool); None allows any.',
}

