"""The seams between the layers, as `typing.Protocol` classes.

The server layer (`tremolo.server`) knows an application only as a `Dispatcher`, made for each
worker by a `DispatcherFactory`. The objects handlers use (`tremolo.Request`,
`tremolo.Response`, `tremolo.UpgradedStream`, event streams, files) know their connection
only as a `WriteChannel` and a `ReadControl` (`BodyControl` for a request body). The
connection registry of a worker knows each connection as a `Tracked`. Nothing crosses a layer
by any other way.

It also holds the type aliases that several layers share.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Awaitable, BinaryIO, Callable, Optional, Protocol, Union

if TYPE_CHECKING:
    import asyncio

    from .connection import Connection
    from .options import Options
    from .request import Request
    from .response import Response
    from .upgrade import UpgradedStream

#: Header fields given by a user: a mapping, or ``(name, value)`` pairs (names may repeat).
HeadersLike = Union[Mapping[str, str], Iterable[tuple[str, str]]]


class Dispatcher(Protocol):
    """The application as the server calls it, in one worker (one event loop).

    The native framework's is `tremolo.web.dispatch.Runtime`; any object with these methods
    can be served. A dispatcher may also have a ``telemetry`` attribute, a
    `tremolo.Telemetry`: the server then reports to it (the end of every exchange, its
    figures), and the application's code can add listeners to it; otherwise the server makes
    one of its own (for the access log).
    """

    async def startup(self) -> None:
        """Run once when the worker starts, before it accepts connections; an exception stops
        the worker."""

    async def shutdown(self) -> None:
        """Run once when the worker stops, after the last connection."""

    def handle(self, request: Request, response: Response) -> Awaitable[None]:
        """Answer ``request``: finish ``response`` (or raise: the server answers 500, or cuts
        a response already started)."""

    def connection_made(self, connection: Connection) -> Optional[Awaitable[None]]:
        """A client connected: ``None``, or an awaitable that the first request waits for."""

    def connection_lost(self, connection: Connection) -> Optional[Awaitable[None]]:
        """A connection closed: ``None``, or an awaitable run in the background."""


#: Makes the `Dispatcher` of one worker, given its event loop.
DispatcherFactory = Callable[['asyncio.AbstractEventLoop'], Dispatcher]


class ReadControl(Protocol):
    """What a bounded reader (`tremolo.inbox.Inbox`) asks of its connection."""

    def pause_reading(self) -> None:
        """Stop reading the socket: the reader's buffer is full."""

    def resume_reading(self) -> None:
        """Read the socket again."""


class BodyControl(ReadControl, Protocol):
    """What a request body asks of its connection."""

    def send_continue(self) -> None:
        """Send ``100 Continue`` to a client that waits for it before sending its body."""


class WriteChannel(Protocol):
    """The writing side of one HTTP connection, as a response and what streams it use.

    Attributes:
        loop: The connection's event loop.
        options: The server's options.
        server_header: The ``Server`` header line (``b''`` when disabled).
        closing: No further request will be read: the response must close the connection.
        writing_paused: The client is behind: a producer awaits `drain` before writing more.
    """

    loop: asyncio.AbstractEventLoop
    options: Options
    server_header: bytes
    closing: bool
    writing_paused: bool

    def disconnected(self) -> bool:
        """Whether written bytes can no longer reach the client (closed or closing)."""

    def write(self, data: bytes) -> None:
        """Send ``data`` now, after anything held by `write_soon`."""

    def write_soon(self, data: bytes) -> None:
        """Send ``data`` with whatever else is written in this turn of the event loop."""

    def write_chunk_soon(self, data: bytes) -> None:
        """`write_soon` one chunk of a chunked body, with its framing."""

    def flush(self) -> None:
        """Send what `write_soon` holds now."""

    async def drain(self) -> None:
        """Wait until the client has taken enough of what was written.

        Raises:
            ClientDisconnected: The connection is closed.
        """

    async def sendfile(self, file: BinaryIO, offset: int, count: int) -> Optional[int]:
        """Send ``count`` bytes of ``file`` from ``offset`` zero-copy: the bytes sent, or
        ``None`` (nothing sent) when this connection or event loop cannot.

        Raises:
            ClientDisconnected: The client went away (the connection is aborted).
        """

    def close(self) -> None:
        """Close once what was written has been sent."""

    def abort(self) -> None:
        """Close at once, discarding what was not sent."""

    def response_finished(self, response: Response) -> None:
        """The response is complete (the exchange's listeners are told: the access log...)."""

    def upgrade(self) -> UpgradedStream:
        """Hand the connection over to another protocol after a ``101`` head."""

    def cancel_on_disconnect(self) -> None:
        """Cancel the current request's handler as soon as the client goes away."""

    def set_handler_timeout(self, seconds: float) -> None:
        """Give the current request ``seconds`` from its head to the end of its response
        (0: no limit), instead of the server's ``handler_timeout``."""

    def detach(self) -> None:
        """The response is complete and the handler carries on with other work (an ASGI
        application's background tasks): the connection goes on to its next request without
        waiting for the handler, whose later errors are only logged. The graceful stop waits
        for it as for a request."""

    def when_lost(self) -> asyncio.Future[None]:
        """A future done once the connection is lost: for what waits on something else than
        the client and must still notice when it goes (the same future for every caller; add
        a done callback, or await it)."""


class Tracked(Protocol):
    """What the connection registry of a worker (`tremolo.server.state.ServerState`) asks of
    every connection it tracks, whatever protocol it speaks yet.

    Attributes:
        counted_host: The client address counted against ``max_connections_per_ip``.
    """

    counted_host: Optional[str]

    def check_deadline(self, now: float) -> None:
        """Enforce the connection's timeouts; ``now`` is the event loop's time."""

    def shutdown(self) -> None:
        """The server stops: take no further request, close when idle."""

    def cancel(self) -> None:
        """Stop what is in progress now (the graceful stop is over)."""

    def abort(self) -> None:
        """Close at once."""

    def close(self) -> None:
        """Close once what was written has been sent."""


class Admitted(Tracked, Protocol):
    """A connection that may wait for a free slot (``max_connections``) before it is served."""

    def admitted(self, decision: int) -> None:
        """The connection may go on; ``decision`` is the registry's (admitted or refused)."""


class OptionSource(Protocol):
    """Where a request reads its effective route options (its `tremolo.Context`)."""

    def option(self, name: str, default: Any = None) -> Any:
        """One effective option."""
