"""A connection handed over from HTTP to another protocol (``101 Switching Protocols``)."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any, Optional

from .exceptions import ClientDisconnected

if TYPE_CHECKING:
    from .protocol import HTTPProtocol


class UpgradedStream:
    """The raw byte stream of an upgraded connection (WebSocket and other protocols run on it).

    Reading pauses the socket when more than the buffer size is waiting; writing waits while
    the client is slower than the writer. A protocol that parses bytes as they arrive can
    `attach` itself instead of calling `read`.
    """

    __slots__ = ('_protocol', '_chunks', '_buffered', '_eof', '_waiter', '_paused', '_limit',
                 '_sink')

    def __init__(self, protocol: HTTPProtocol, limit: int) -> None:
        self._protocol = protocol
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._eof = False
        self._waiter: Optional[asyncio.Future[None]] = None
        self._paused = False
        self._limit = limit
        self._sink: Any = None

    # -- fed by the protocol -------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if not data:
            return
        if self._sink is not None:
            self._sink.feed(data)
            return
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered >= self._limit and not self._paused:
            self._paused = True
            self._protocol.pause_reading()
        self._wake()

    def feed_eof(self) -> None:
        if self._eof:
            return
        self._eof = True
        if self._sink is not None:
            self._sink.feed_eof()
        self._wake()

    def shutdown(self) -> None:
        """The server is stopping: tell the attached protocol (it may say goodbye)."""
        if self._sink is not None:
            self._sink.shutdown()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._waiter = None

    # -- used by the handler --------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the connection is closed."""
        return self._protocol.closed

    @property
    def writing_paused(self) -> bool:
        """Whether the client is behind: a writer should `drain` before writing more."""
        return self._protocol.writing_paused

    def attach(self, sink: Any) -> None:
        """Hand incoming bytes to ``sink`` as they arrive instead of holding them for `read`.

        ``sink.feed(data)`` is called from the event loop for each piece received,
        ``sink.feed_eof()`` once when the client closes or the connection is lost, and
        ``sink.shutdown()`` when the server stops. Bytes already held are fed first. The sink
        applies its own backpressure with `pause_reading` and `resume_reading`.
        """
        self._sink = sink
        chunks = list(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        if self._paused:
            self._paused = False
            self._protocol.resume_reading()
        for data in chunks:
            sink.feed(data)
        if self._eof:
            sink.feed_eof()

    def pause_reading(self) -> None:
        """Stop reading the socket until `resume_reading`."""
        self._protocol.pause_reading()

    def resume_reading(self) -> None:
        """Read the socket again."""
        self._protocol.resume_reading()

    async def read(self) -> bytes:
        """The next bytes from the client; ``b''`` once the client closed its side."""
        while not self._chunks:
            if self._eof or self._protocol.closed:
                return b''
            self._waiter = self._protocol.loop.create_future()
            await self._waiter
        data = self._chunks.popleft()
        self._buffered -= len(data)
        if self._paused and self._buffered < self._limit:
            self._paused = False
            self._protocol.resume_reading()
        return data

    def write(self, data: bytes) -> None:
        """Queue ``data`` for sending (call `drain` to wait for the client).

        Raises:
            ClientDisconnected: The connection is closed.
        """
        protocol = self._protocol
        if protocol.closed or protocol.transport.is_closing():
            raise ClientDisconnected('the client closed the connection')
        protocol.write(data)

    async def drain(self) -> None:
        """Wait until the client has taken what was written."""
        await self._protocol.drain()

    def close(self) -> None:
        """Close the connection after the written data has been sent."""
        self._protocol.close()

    def abort(self) -> None:
        """Close the connection at once, discarding unsent data (a dead peer)."""
        self._protocol.abort()
