"""The request body as the handler sees it: a bounded buffer between the socket and the reader.

The protocol feeds decoded body bytes in; the handler pulls them out. When more than the
high-water mark is waiting, the protocol stops reading the socket, so a client can never push a
body faster than the handler consumes it (the TCP window closes instead). This is what keeps
big uploads in constant memory and what the upload speed limiter builds on.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections import deque
from typing import Any, Awaitable, Callable, Optional, Protocol, Union

from .exceptions import ClientDisconnected, PayloadTooLarge, RequestTimeout

StreamFilter = Callable[[bytes, bool], Union[bytes, Awaitable[bytes]]]
"""A stream filter: called with each piece of data (and once with ``final=True`` at the end);
returns the data to pass on, or an awaitable of it. Filters are how middleware transform or pace
a body (speed limiters, decompression, compression).

Two optional attributes of a filter change how it is used: ``preserves_length = True`` (it
passes every byte on unchanged, like a speed limiter) lets a whole response keep its
Content-Length and go out in pieces of ``buffer_size``; ``on_wire = True`` (it paces the bytes as
they cross the network) keeps it last among a response's filters and first among a request
body's, whatever the order the filters are added in."""


def insert_filter(filters: list[StreamFilter], stream_filter: StreamFilter,
                  wire_last: bool) -> None:
    """Add ``stream_filter`` to ``filters``, keeping ``on_wire`` filters at the network end:
    the end of the list for a response (``wire_last``), the start for a request body."""
    if getattr(stream_filter, 'on_wire', False):
        if wire_last:
            filters.append(stream_filter)
        else:
            at = 0
            while at < len(filters) and getattr(filters[at], 'on_wire', False):
                at += 1
            filters.insert(at, stream_filter)
        return
    if wire_last:
        at = len(filters)
        while at and getattr(filters[at - 1], 'on_wire', False):
            at -= 1
        filters.insert(at, stream_filter)
    else:
        filters.append(stream_filter)


class ReadControl(Protocol):
    """What a body stream needs from its connection."""

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def send_continue(self) -> None: ...


class BodyStream:
    """The body of one request.

    Args:
        control: The connection: paused when the buffer is full, asked to send
            ``100 Continue`` before the first read when the client expects it.
        loop: The event loop.
        content_length: The announced length, if the body is framed by Content-Length.
        high_water: Bytes buffered before reading pauses.
        timeout: Seconds a read may wait for data.
    """

    __slots__ = (
        '_control', '_chunks', '_buffered', '_eof', '_exception', '_waiter',
        '_high_water', '_paused', '_started', '_received', 'content_length', 'max_size',
        'timeout', 'filters', 'expect_continue', 'trailers', 'loop', 'thread', '_collect',
    )

    def __init__(
        self, control: ReadControl, loop: asyncio.AbstractEventLoop,
        content_length: Optional[int], high_water: int, timeout: float,
        max_size: int, expect_continue: bool = False,
    ) -> None:
        self._control = control
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._eof = False
        self._exception: Optional[BaseException] = None
        self._waiter: Optional[asyncio.Future[None]] = None
        self._high_water = high_water
        self._paused = False
        self._started = False
        self._received = 0
        self.content_length = content_length
        self.max_size = max_size
        self.timeout = timeout
        self.filters: list[StreamFilter] = []
        self.expect_continue = expect_continue
        self.trailers: dict[bytes, bytes] = {}
        #: The event loop and its thread, for reads from sync handlers in other threads.
        self.loop = loop
        self.thread = threading.get_ident()
        # While `read_all` collects, pieces go straight into its list (see there).
        self._collect: Optional[list[bytes]] = None

    # -- the protocol's side ------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if not data:
            return
        collect = self._collect
        if collect is not None:
            collect.append(data)
            self._received += len(data)
            if self._received > self.max_size:
                self.set_exception(PayloadTooLarge('request body too large'))
            return
        self._chunks.append(data)
        self._buffered += len(data)
        self._received += len(data)
        if self._received > self.max_size and self._started:
            self.set_exception(PayloadTooLarge('request body too large'))
            return
        if self._buffered >= self._high_water and not self._paused:
            self._paused = True
            self._control.pause_reading()
        self._wake()

    def feed_eof(self) -> None:
        self._eof = True
        self._wake()

    def set_exception(self, exc: BaseException) -> None:
        if self._exception is None and not (self._eof and not self._chunks):
            self._exception = exc
        self._wake()

    @property
    def received(self) -> int:
        """Bytes of the body received from the client so far."""
        return self._received

    @property
    def complete(self) -> bool:
        """Whether the whole body has arrived from the client."""
        return self._eof

    @property
    def finished(self) -> bool:
        """Whether the reader has consumed the whole body."""
        return self._eof and not self._chunks

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- the handler's side -------------------------------------------------------------------

    async def read(self) -> bytes:
        """The next piece of the body, after the filters; ``b''`` at the end."""
        data = await self._read_raw()
        if self.filters:
            final = not data
            for stream_filter in self.filters:
                result = stream_filter(data, final)
                data = await result if inspect.isawaitable(result) else result
            if not data and not final:
                return await self.read()
        return data

    async def _read_raw(self) -> bytes:
        if not self._started:
            self._start()
        while not self._chunks:
            if self._exception is not None:
                raise self._exception
            if self._eof:
                return b''
            await self._wait()
        if self._exception is not None and not isinstance(self._exception, ClientDisconnected):
            raise self._exception
        data = self._chunks.popleft()
        self._buffered -= len(data)
        if self._paused and self._buffered < self._high_water:
            self._paused = False
            self._control.resume_reading()
        return data

    def _start(self) -> None:
        self._started = True
        limit = self.max_size
        if (self.content_length is not None and self.content_length > limit) or (
            self._received > limit
        ):
            # Refuse before the client sends the body (it waits for 100 Continue) or before we
            # read any of it; the connection closes because the body stays unread.
            raise PayloadTooLarge('request body too large')
        if self.expect_continue and not self._eof:
            self.expect_continue = False
            self._control.send_continue()

    async def _wait(self) -> None:
        waiter = self.loop.create_future()
        self._waiter = waiter
        timer = self.loop.call_later(self.timeout, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()

    async def read_all(self) -> bytes:
        """The whole body (subject to `max_size`)."""
        if self.filters:
            parts = []
            while True:
                data = await self.read()
                if not data:
                    break
                parts.append(data)
            return parts[0] if len(parts) == 1 else b''.join(parts)
        if not self._started:
            self._start()
        # The whole body is wanted (and bounded by max_size): collect the pieces as they arrive,
        # without pausing the socket or waking this reader for each one.
        parts = list(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        if self._paused:
            self._paused = False
            self._control.resume_reading()
            # Why: a transport may deliver the data it held back at once, into the buffer.
            parts += self._chunks
            self._chunks.clear()
            self._buffered = 0
        if not self._eof and self._exception is None:
            self._collect = parts
            try:
                await self._collect_rest(parts)
            finally:
                self._collect = None
        exc = self._exception
        if exc is not None and not (self._eof and isinstance(exc, ClientDisconnected)):
            raise exc
        return parts[0] if len(parts) == 1 else b''.join(parts)

    async def _collect_rest(self, parts: list[bytes]) -> None:
        """Wait for the end of the body; the timeout is an idle one (no new piece for
        `timeout` seconds), checked by a timer re-armed while pieces keep coming."""
        loop = self.loop
        waiter = self._waiter = loop.create_future()
        seen = len(parts)

        def check() -> None:
            nonlocal seen, timer
            if waiter.done():
                return
            if len(parts) == seen:
                _expire(waiter)
            else:
                seen = len(parts)
                timer = loop.call_later(self.timeout, check)

        timer = loop.call_later(self.timeout, check)
        try:
            while not self._eof and self._exception is None:
                await waiter
                if not self._eof and self._exception is None:
                    waiter = self._waiter = loop.create_future()
        finally:
            timer.cancel()

    def __aiter__(self) -> BodyStream:
        return self

    async def __anext__(self) -> bytes:
        data = await self.read()
        if not data:
            raise StopAsyncIteration
        return data


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(RequestTimeout('timed out reading the request body'))
