"""Type aliases and interfaces shared across modules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, Protocol

if TYPE_CHECKING:
    from .connection import Connection
    from .request import Request
    from .response import Response

#: Any handler, hook or error handler: its keyword arguments are injected by name.
Handler = Callable[..., Any]


class Dispatcher(Protocol):
    """What the protocol calls into: the application, compiled for one worker."""

    def handle(self, request: Request, response: Response) -> Awaitable[None]:
        """Answer ``request``: must finish ``response`` (or raise)."""

    def connection_made(self, connection: Connection) -> Optional[Awaitable[None]]:
        """Run ``on_connect`` hooks, if any."""

    def connection_lost(self, connection: Connection) -> Optional[Awaitable[None]]:
        """Run ``on_close`` hooks, if any."""

