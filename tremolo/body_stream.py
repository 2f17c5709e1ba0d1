"""The request body as the handler sees it: decoded bytes held in a bounded `Inbox` between
the connection and the reader, its size limit, its read timeout and its stream filters."""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import TYPE_CHECKING, Awaitable, Callable, Optional, Union

from .exceptions import ClientDisconnected, PayloadTooLarge, RequestTimeout
from .inbox import Inbox

if TYPE_CHECKING:
    from .types import BodyControl

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


class BodyStream:
    """The body of one request.

    Args:
        control: The connection: paused when the buffer is full, asked to send
            ``100 Continue`` before the first read when the client expects it.
        loop: The event loop.
        content_length: The announced length, if the body is framed by Content-Length.
        high_water: Bytes buffered before reading pauses.
        timeout: Seconds a read may wait for data.
        max_size: The most bytes the body may have (413 above it).
        expect_continue: The client waits for ``100 Continue`` before sending the body.

    Attributes:
        max_size: The body limit: the one place it is kept (`tremolo.Request.max_body_size`
            reads and sets it). Changing it takes effect at the first read.
        filters: Stream filters applied to each piece the reader takes.
        trailers: The trailer fields of a chunked body, once it has been received.
    """

    __slots__ = (
        '_control', '_inbox', '_exception', '_started', '_received', 'content_length',
        'max_size', 'timeout', 'filters', 'expect_continue', 'trailers', 'loop', 'thread',
        '_collect',
    )

    def __init__(
        self, control: BodyControl, loop: asyncio.AbstractEventLoop,
        content_length: Optional[int], high_water: int, timeout: float,
        max_size: int, expect_continue: bool = False,
    ) -> None:
        self._control = control
        self._inbox: Inbox[bytes] = Inbox(control, loop, high_water)
        self._exception: Optional[BaseException] = None
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

    @property
    def high_water(self) -> int:
        """Bytes held unread before reading the socket pauses (the ``body_buffer_size``)."""
        return self._inbox.high_water

    @high_water.setter
    def high_water(self, value: int) -> None:
        self._inbox.high_water = value

    # -- the protocol's side ------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if not data:
            return
        self._received += len(data)
        collect = self._collect
        if collect is not None:
            collect.append(data)
            if self._received > self.max_size:
                self.set_exception(PayloadTooLarge('request body too large'))
            return
        if self._received > self.max_size and self._started:
            self.set_exception(PayloadTooLarge('request body too large'))
            return
        self._inbox.put(data, len(data))

    def feed_eof(self) -> None:
        self._inbox.end()

    def set_exception(self, exc: BaseException) -> None:
        """Fail the reads still to come (the bytes already received are read first, unless the
        error is not a disconnection)."""
        if self._exception is None and not self.finished:
            self._exception = exc
        self._inbox.wake()

    @property
    def buffered(self) -> int:
        """Bytes of the body received and not yet read."""
        return self._inbox.size

    @property
    def received(self) -> int:
        """Bytes of the body received from the client so far."""
        return self._received

    @property
    def complete(self) -> bool:
        """Whether the whole body has arrived from the client."""
        return self._inbox.ended

    @property
    def finished(self) -> bool:
        """Whether the reader has consumed the whole body."""
        return self._inbox.ended and not self._inbox.items

    # -- the handler's side -------------------------------------------------------------------

    async def read(self) -> bytes:
        """The next piece of the body, after the filters; ``b''`` at the end."""
        return await self._filtered(await self._read_raw())

    async def read_queued(self) -> bytes:
        """Every piece of the body that has arrived and is not read yet, as one (waiting for
        one if none has), after the filters; ``b''`` at the end.

        For a reader that takes the body in as few steps as it can (an ASGI application's
        ``receive``): each step costs the reader a turn of the event loop.
        """
        if not self._started:
            self._start()
        inbox = self._inbox
        if len(inbox.items) > 1 and self._exception is None:
            return await self._filtered(b''.join(inbox.take_all()))
        return await self.read()

    async def _filtered(self, data: bytes) -> bytes:
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
        inbox = self._inbox
        while not inbox.items:
            if self._exception is not None:
                raise self._exception
            if inbox.ended:
                return b''
            await inbox.wait(self.timeout, _timed_out)
        if self._exception is not None and not isinstance(self._exception, ClientDisconnected):
            raise self._exception
        data = inbox.items[0]
        return inbox.take(len(data))

    def _start(self) -> None:
        self._started = True
        limit = self.max_size
        if (self.content_length is not None and self.content_length > limit) or (
            self._received > limit
        ):
            # Refuse before the client sends the body (it waits for 100 Continue) or before we
            # read any of it; the connection closes because the body stays unread.
            raise PayloadTooLarge('request body too large')
        if self.expect_continue and not self._inbox.ended:
            self.expect_continue = False
            self._control.send_continue()

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
        # without pausing the socket or waking this reader for each one. Taking what waits
        # resumes reading, and a transport may deliver what it held back at once, into the
        # inbox again: hence the second take.
        inbox = self._inbox
        parts = inbox.take_all()
        if inbox.items:
            parts += inbox.take_all()
        if not inbox.ended and self._exception is None:
            self._collect = parts
            try:
                await self._collect_rest(parts)
            finally:
                self._collect = None
        exc = self._exception
        if exc is not None and not (inbox.ended and isinstance(exc, ClientDisconnected)):
            raise exc
        return parts[0] if len(parts) == 1 else b''.join(parts)

    async def _collect_rest(self, parts: list[bytes]) -> None:
        """Wait for the end of the body; the timeout is an idle one (no new piece for
        `timeout` seconds), checked by a timer re-armed while pieces keep coming."""
        loop = self.loop
        inbox = self._inbox
        seen = len(parts)
        timer: list[asyncio.TimerHandle] = []  # the one armed now

        def check() -> None:
            nonlocal seen
            if len(parts) == seen:
                self.set_exception(_timed_out())
            else:
                seen = len(parts)
                timer[0] = loop.call_later(self.timeout, check)

        timer.append(loop.call_later(self.timeout, check))
        try:
            while not inbox.ended and self._exception is None:
                await inbox.wait()
        finally:
            timer[0].cancel()

    def __aiter__(self) -> BodyStream:
        return self

    async def __anext__(self) -> bytes:
        data = await self.read()
        if not data:
            raise StopAsyncIteration
        return data


def _timed_out() -> RequestTimeout:
    return RequestTimeout('timed out reading the request body')
