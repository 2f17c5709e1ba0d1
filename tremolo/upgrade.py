"""A connection handed over from HTTP to another protocol (``101 Switching Protocols``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .exceptions import ClientDisconnected
from .inbox import Inbox

if TYPE_CHECKING:
    from .types import ReadControl, WriteChannel


class UpgradedStream:
    """The raw byte stream of an upgraded connection (WebSocket and other protocols run on it).

    Reading pauses the socket when more than the buffer size is waiting; writing waits while
    the client is slower than the writer. A protocol that parses bytes as they arrive can
    `attach` itself instead of calling `read`.
    """

    __slots__ = ('_channel', '_control', '_inbox', '_sink')

    def __init__(self, channel: WriteChannel, control: ReadControl, limit: int) -> None:
        self._channel = channel
        self._control = control
        self._inbox: Inbox[bytes] = Inbox(control, channel.loop, limit)
        self._sink: Any = None

    # -- fed by the connection -----------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if not data:
            return
        if self._sink is not None:
            self._sink.feed(data)
            return
        self._inbox.put(data, len(data))

    def feed_eof(self) -> None:
        if self._inbox.ended:
            return
        self._inbox.end()
        if self._sink is not None:
            self._sink.feed_eof()

    def shutdown(self) -> None:
        """The server is stopping: tell the attached protocol (it may say goodbye)."""
        if self._sink is not None:
            self._sink.shutdown()

    # -- used by the handler --------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the connection is closed (or closing: nothing written would be sent)."""
        return self._channel.disconnected()

    @property
    def writing_paused(self) -> bool:
        """Whether the client is behind: a writer should `drain` before writing more."""
        return self._channel.writing_paused

    def attach(self, sink: Any) -> None:
        """Hand incoming bytes to ``sink`` as they arrive instead of holding them for `read`.

        ``sink.feed(data)`` is called from the event loop for each piece received,
        ``sink.feed_eof()`` once when the client closes or the connection is lost, and
        ``sink.shutdown()`` when the server stops. Bytes already held are fed first. The sink
        applies its own backpressure with `pause_reading` and `resume_reading`.
        """
        self._sink = sink
        for data in self._inbox.take_all():
            sink.feed(data)
        if self._inbox.ended:
            sink.feed_eof()

    def pause_reading(self) -> None:
        """Stop reading the socket until `resume_reading`."""
        self._control.pause_reading()

    def resume_reading(self) -> None:
        """Read the socket again."""
        self._control.resume_reading()

    async def read(self) -> bytes:
        """The next bytes from the client; ``b''`` once the client closed its side."""
        inbox = self._inbox
        while not inbox.items:
            if inbox.ended or self._channel.disconnected():
                return b''
            await inbox.wait()
        data = inbox.items[0]
        return inbox.take(len(data))

    def write(self, data: bytes) -> None:
        """Queue ``data`` for sending (call `drain` to wait for the client).

        Raises:
            ClientDisconnected: The connection is closed.
        """
        channel = self._channel
        if channel.disconnected():
            raise ClientDisconnected('the client closed the connection')
        channel.write(data)

    async def drain(self) -> None:
        """Wait until the client has taken what was written."""
        await self._channel.drain()

    def close(self) -> None:
        """Close the connection after the written data has been sent."""
        self._channel.close()

    def abort(self) -> None:
        """Close the connection at once, discarding unsent data (a dead peer)."""
        self._channel.abort()
