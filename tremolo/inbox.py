"""A bounded buffer between a connection, which puts what it reads, and one reader.

Request bodies (`tremolo.body_stream.BodyStream`), upgraded connections
(`tremolo.upgrade.UpgradedStream`) and WebSocket messages (`tremolo.websocket_io`) all hold
what arrived until their reader takes it, in an `Inbox`. When more than ``high_water`` bytes
wait, the connection stops reading the socket, so a client can never send faster than the
reader takes (the TCP window closes instead): this is what keeps memory constant whatever the
size of a body or a stream, and what the upload speed limiter builds on.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Generic, Optional, TypeVar

if TYPE_CHECKING:
    from .types import ReadControl

T = TypeVar('T')


class Inbox(Generic[T]):
    """Items waiting for one reader, with their total size bounded by pausing the socket.

    The owner decides what an item is (bytes, a WebSocket frame's data) and its size, and what
    the end of input or an error mean to its reader; the inbox keeps the items, the count, the
    pausing and the one waiting reader.

    Attributes:
        items: The items not yet taken, oldest first (take them with `take`).
        size: Their total size.
        high_water: Reading pauses while `size` is at or above it.
        ended: The connection said nothing more will come.
    """

    __slots__ = ('items', 'size', 'high_water', 'ended', '_control', '_loop', '_paused',
                 '_waiter')

    def __init__(self, control: ReadControl, loop: asyncio.AbstractEventLoop,
                 high_water: int) -> None:
        self.items: deque[T] = deque()
        self.size = 0
        self.high_water = high_water
        self.ended = False
        self._control = control
        self._loop = loop
        self._paused = False
        self._waiter: Optional[asyncio.Future[None]] = None

    # -- the connection's side ------------------------------------------------------------------

    def put(self, item: T, size: int) -> None:
        """Add an item and wake the reader; pause reading above the high-water mark."""
        self.items.append(item)
        self.size += size
        if self.size >= self.high_water and not self._paused:
            self._paused = True
            self._control.pause_reading()
        self.wake()

    def end(self) -> None:
        """Nothing more will come: wake the reader."""
        self.ended = True
        self.wake()

    def wake(self) -> None:
        """Wake the reader, if it waits (something changed: an item, the end, an error)."""
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- the reader's side ----------------------------------------------------------------------

    def take(self, size: int) -> T:
        """Remove the oldest item, of ``size``; resume reading below the high-water mark.

        Raises:
            IndexError: Nothing waits.
        """
        item = self.items.popleft()
        self.release(size)
        return item

    def take_all(self) -> list[T]:
        """Remove every waiting item at once (the reader takes over from here)."""
        items = list(self.items)
        self.items.clear()
        self.size = 0
        if self._paused:
            self._paused = False
            self._control.resume_reading()
        return items

    def release(self, size: int) -> None:
        """``size`` of what was counted is gone; resume reading below the high-water mark."""
        self.size -= size
        if self._paused and self.size < self.high_water:
            self._paused = False
            self._control.resume_reading()

    @property
    def waiting(self) -> bool:
        """Whether a reader waits."""
        return self._waiter is not None

    async def wait(self, timeout: float = 0.0,
                   timed_out: Optional[Callable[[], BaseException]] = None) -> None:
        """Wait until the connection puts an item, ends, or wakes the reader.

        Args:
            timeout: Seconds to wait at most (0: no limit).
            timed_out: Makes the exception raised when ``timeout`` passes.

        Raises:
            RuntimeError: Another reader waits already.
        """
        if self._waiter is not None:
            raise RuntimeError('another task is already reading')
        loop = self._loop
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _expire, waiter, timed_out) if timeout else None
        try:
            await waiter
        finally:
            if self._waiter is waiter:
                self._waiter = None
            if timer is not None:
                timer.cancel()


def _expire(waiter: asyncio.Future[Any], timed_out: Optional[Callable[[], BaseException]]
            ) -> None:
    if not waiter.done():
        waiter.set_exception(timed_out() if timed_out is not None else asyncio.TimeoutError())
