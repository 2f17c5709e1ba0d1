"""Debug mode: find the handlers and hooks that block the event loop.

A coroutine runs in steps, from one suspension to the next; while a step runs, the event loop
serves nobody else. A step that takes longer than a limit (a ``time.sleep``, a blocking
driver, heavy computing in an ``async def``) is logged with the name of the function that ran
it, the way asyncio's debug mode reports slow callbacks, but naming the application's code
rather than the event loop's callback. Only debug mode pays for the timing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Generator
from typing import Any, Callable, Optional, TypeVar

logger = logging.getLogger('tremolo')

T = TypeVar('T')

#: Seconds a step may run before it is reported (asyncio's ``slow_callback_duration``).
LIMIT = 0.1

_IN_COROUTINE = ('a blocking call in an async function? Make it a plain def (a handler then '
                 'runs in the thread pool) or await an async equivalent')
_ON_THE_LOOP = ('plain hooks and providers run on the event loop: keep them quick, or make '
                'them async and await what they wait for')


class BlockingWatch:
    """Times the steps of the coroutines it runs, for one event loop.

    Steps nest (a handler awaits a provider, whose step runs inside the handler's): a slow step
    is reported once, by the innermost function that ran it.

    Args:
        limit: Seconds a step may take.
        clock: Where the time is read.
    """

    __slots__ = ('limit', 'clock', '_reported')

    def __init__(self, limit: float = LIMIT,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.limit = limit
        self.clock = clock
        self._reported = False  # a slow step inside the current one was reported

    def run(self, awaitable: Awaitable[T], name: str) -> Awaitable[T]:
        """``awaitable``, with each of its steps timed on behalf of ``name``."""
        return _Timed(self, awaitable, name)

    def call(self, func: Callable[..., T], name: str, **kwargs: Any) -> T:
        """Call a plain function on the event loop, timed like one step."""
        started, outer = self._begin()
        try:
            return func(**kwargs)
        finally:
            self._end(started, outer, name, _ON_THE_LOOP)

    async def stream(self, generator: AsyncIterator[T], name: str) -> AsyncIterator[T]:
        """The items of an async generator, each one's production timed."""
        try:
            while True:
                try:
                    item = await self.run(generator.__anext__(), name)
                except StopAsyncIteration:
                    return
                yield item
        finally:
            aclose = getattr(generator, 'aclose', None)
            if aclose is not None:
                await aclose()

    def _begin(self) -> tuple[float, bool]:
        outer, self._reported = self._reported, False
        return self.clock(), outer

    def _end(self, started: float, outer: bool, name: str, advice: str = _IN_COROUTINE) -> None:
        elapsed = self.clock() - started
        if elapsed >= self.limit and not self._reported:
            logger.warning('%s blocked the event loop for %.3f s: %s', name, elapsed, advice)
            self._reported = True
        # What encloses this step must not report it again.
        self._reported = self._reported or outer


class _Timed:
    """An awaitable that drives another one step by step, timing each step (the delegation of
    ``yield from``, PEP 380, with a clock around every ``send`` and ``throw``)."""

    __slots__ = ('watch', 'awaitable', 'name')

    def __init__(self, watch: BlockingWatch, awaitable: Awaitable[Any], name: str) -> None:
        self.watch = watch
        self.awaitable = awaitable
        self.name = name

    def __await__(self) -> Generator[Any, Any, Any]:
        steps = self.awaitable.__await__()
        watch = self.watch
        value: Any = None
        error: Optional[BaseException] = None
        while True:
            started, outer = watch._begin()
            try:
                if error is None:
                    yielded = steps.send(value)
                else:
                    yielded = steps.throw(error)
            except StopIteration as stop:
                return stop.value
            finally:
                watch._end(started, outer, self.name)
            try:
                value = yield yielded
                error = None
            except GeneratorExit:
                close = getattr(steps, 'close', None)
                if close is not None:
                    close()
                raise
            except BaseException as exc:
                value, error = None, exc
