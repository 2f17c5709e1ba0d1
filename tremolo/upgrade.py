"""A connection handed over from HTTP to another protocol (``101 Switching Protocols``)."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Optional

from .exceptions import ClientDisconnected

if TYPE_CHECKING:
    from .protocol import HTTPProtocol


class UpgradedStream:
    """The raw byte stream of an upgraded connection (WebSocket and other protocols run on it).

    Reading pauses the socket when more than the buffer size is waiting; writing waits while
    the client is slower than the writer.
    """

    __slots__ = ('_protocol', '_chunks', '_buffered', '_eof', '_waiter', '_paused', '_limit')

    def __init__(self, protocol: HTTPProtocol, limit: int) -> None:
        self._protocol = protocol
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._eof = False
        self._waiter: Optional[asyncio.Future[None]] = None
        self._paused = False
        self._limit = limit

    # -- fed by the protocol -------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if not data:
            return
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered >= self._limit and not self._paused:
            self._paused = True
            self._protocol.pause_reading()
        self._wake()

    def feed_eof(self) -> None:
        self._eof = True
        self._wake()

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
