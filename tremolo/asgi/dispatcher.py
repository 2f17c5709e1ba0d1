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


class ServerOptions:
    """The route options of an application served directly (the server's values): what a
    WebSocket reads (`tremolo.types.OptionSource`)."""

    __slots__ = ('values',)

    def __init__(self, options: Options) -> None:
        self.values = options.route_defaults()

    def option(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)


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
        self.settings = ServerOptions(options)
        self._tls = options.ssl is not None

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
        if request.head.upgrade is not None and is_handshake(request):
            return run_websocket(self.app, self.scopes, request, response, self.settings,
                                 self.debug)
        return run_http(self.app, self.scopes, request, response, self.debug)

    def __repr__(self) -> str:
        return f'<ASGIDispatcher {self.app!r}>'
