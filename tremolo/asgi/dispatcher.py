"""The ASGI mode's `tremolo.types.Dispatcher`: an ASGI 3 application served by the server core.

One `ASGIDispatcher` per worker: it runs the application's lifespan at the worker's start and
stop, and hands each request to an HTTP or a WebSocket cycle. Every option of the server
applies unchanged (parsing, limits, timeouts, keep-alive, TLS, workers): they are the
server's, not the dispatcher's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional

from .http import run_http
from .lifespan import Lifespan
from .scope import ScopeBuilder
from .websocket import is_handshake, run_websocket

if TYPE_CHECKING:
    import asyncio

    from ..connection import Connection
    from ..options import Options
    from ..request import Request
    from ..response import Response


class RequestOptions:
    """The route options of one request of an application served directly: the server's
    values, which the bandwidth limiter may change for this request (a
    `tremolo.types.OptionSource`, what a WebSocket and the limiter read).

    Attributes:
        connection: The request's connection.
    """

    __slots__ = ('connection', '_defaults', '_options')

    def __init__(self, defaults: dict[str, Any], connection: Connection) -> None:
        self.connection = connection
        self._defaults = defaults
        self._options: Optional[dict[str, Any]] = None

    @property
    def options(self) -> dict[str, Any]:
        """This request's options, copied on first use: changes are its own."""
        if self._options is None:
            self._options = dict(self._defaults)
        return self._options

    def option(self, name: str, default: Any = None) -> Any:
        options = self._options if self._options is not None else self._defaults
        return options.get(name, default)


class ASGIDispatcher:
    """Serves an ASGI 3 application in one worker.

    Args:
        app: The application: ``await app(scope, receive, send)``.
        options: The server's options (``lifespan``, ``root_path``, ``debug`` are read here).
        loop: The worker's event loop.

    Attributes:
        lifespan: The application's lifespan (``None`` with ``lifespan='off'``).
        scopes: What makes the requests' scopes.
    """

    def __init__(self, app: Callable[..., Any], options: Options,
                 loop: Optional[asyncio.AbstractEventLoop] = None) -> None:
        self.app = app
        self.options = options
        self.loop = loop
        self.debug = options.debug
        self.lifespan = Lifespan(app, options.lifespan) if options.lifespan != 'off' else None
        self.scopes = ScopeBuilder(options.root_path)
        #: The route options of every request: the server's.
        self.defaults = options.route_defaults()
        self._tls = options.ssl is not None
        self._limiter = _bandwidth_limiter(options)

    @property
    def state(self) -> dict[str, Any]:
        """The lifespan state (empty without lifespan)."""
        return self.lifespan.state if self.lifespan is not None else {}

    async def startup(self) -> None:
        """Run the application's lifespan startup.

        Raises:
            LifespanFailure: The application's startup failed.
        """
        if self.lifespan is not None:
            await self.lifespan.startup()
            if self.lifespan.supported:
                self.scopes.state = self.lifespan.state

    async def shutdown(self) -> None:
        """Run the application's lifespan shutdown."""
        if self.lifespan is not None:
            await self.lifespan.shutdown()

    def connection_made(self, connection: Connection) -> None:
        if self._tls:
            self.scopes.connection_made(connection)

    def connection_lost(self, connection: Connection) -> None:
        if self._tls:
            self.scopes.connection_lost(connection)

    def handle(self, request: Request, response: Response) -> Awaitable[None]:
        """Serve one request: a WebSocket handshake or an HTTP request."""
        context = None
        if self._limiter is not None:
            context = self._limit(request, response)
        if request.head.upgrade is not None and is_handshake(request):
            if context is None:
                context = RequestOptions(self.defaults, request.connection)
            return run_websocket(self.app, self.scopes, request, response, context,
                                 self.debug)
        return run_http(self.app, self.scopes, request, response, self.debug)

    def _limit(self, request: Request, response: Response) -> RequestOptions:
        """Put the request and its response under the speed limits of the
        ``download_rate`` and ``upload_rate`` options."""
        context = RequestOptions(self.defaults, request.connection)
        assert self._limiter is not None
        self._limiter.on_request(request, response, context)
        # A limited upload is read from the socket in smaller steps.
        request.body_buffer_size = context.option('body_buffer_size',
                                                  request.body_buffer_size)
        return context

    def __repr__(self) -> str:
        return f'<ASGIDispatcher {self.app!r}>'


def _bandwidth_limiter(options: Options) -> Any:
    """The speed limiter the ``download_rate`` and ``upload_rate`` options ask for, or
    ``None``. It is imported only then: an unused limiter costs nothing."""
    if not options.download_rate and not options.upload_rate:
        return None
    from ..middleware.bandwidth import BandwidthLimiter

    return BandwidthLimiter(options.download_rate, options.upload_rate,
                            scope=options.rate_scope, burst=options.rate_burst or None)
