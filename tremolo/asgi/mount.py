"""An ASGI application mounted into a Tremolo application (``app.mount('/legacy', asgi_app)``).

The mount is a route of the Tremolo application for the prefix and everything under it, any
method: the request goes through the Tremolo application's middleware for its path (request
and response hooks, the speed limiters, route options), then to the ASGI application, whose
scope says where it is mounted (``root_path``; ``path`` stays the full path, as the ASGI spec
wants). Its lifespan runs in each worker with the Tremolo application's worker hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

from .http import run_http
from .lifespan import Lifespan
from .scope import ScopeBuilder
from .websocket import is_handshake, run_websocket

if TYPE_CHECKING:
    from ..request import Request
    from ..response import Response
    from ..types import OptionSource


class ASGIMount:
    """An ASGI application served under a prefix of a Tremolo application.

    Args:
        app: The ASGI application.
        prefix: Where it is mounted, e.g. ``'/legacy'``.
    """

    def __init__(self, app: Callable[..., Any], prefix: str) -> None:
        self.app = app
        self.prefix = prefix
        self.scopes = ScopeBuilder(mount=prefix)
        self.lifespan: Optional[Lifespan] = None

    def routes(self) -> tuple[str, str]:
        """The route paths that reach the application: the prefix, and what is under it."""
        return self.prefix, self.prefix + '/{path:path}'

    async def startup(self) -> None:
        """A worker starts: run the application's lifespan startup (``on_worker_start``)."""
        lifespan = self.lifespan = Lifespan(self.app)
        await lifespan.startup()
        self.scopes.state = lifespan.state if lifespan.supported else None

    async def shutdown(self) -> None:
        """A worker stops: run the application's lifespan shutdown (``on_worker_stop``)."""
        if self.lifespan is not None:
            await self.lifespan.shutdown()

    async def handle(self, **server: Any) -> None:
        """The route's handler: the request, past the Tremolo application's hooks."""
        request: Request = server['request']
        response: Response = server['response']
        context: OptionSource = server['context']
        # Where the mount matched: the prefix, after the prefixes of the applications that
        # mount this one (the path less what the route's {path:path} took).
        rest = request.params.get('path')
        path = request.path
        mounted_at = path.rstrip('/') if rest is None else path[:len(path) - len(rest) - 1]
        if request.head.upgrade is not None and is_handshake(request):
            await run_websocket(self.app, self.scopes, request, response, context, False,
                                mounted_at)
        else:
            await run_http(self.app, self.scopes, request, response, False, mounted_at)

    def __repr__(self) -> str:
        return f'<ASGIMount {self.prefix!r} {self.app!r}>'
