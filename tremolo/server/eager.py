"""Start a coroutine at once; give it a task only if it has to wait.

Most requests are answered without ever waiting (the handler returns, the response is written
to the transport's buffer). Running the first step of the coroutine inline saves creating,
scheduling and switching to a task for them; a coroutine that suspends continues in a task
exactly where it stopped, with the same context, so it cannot tell the difference.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Coroutine, Generator
from typing import Any, Optional

#: ``loop.create_task(..., context=...)`` exists from Python 3.11; before it, the task is
#: created inside the context instead.
SUPPORTED = sys.version_info >= (3, 11)
#: ``asyncio.Task(..., eager_start=True)`` exists from Python 3.12: a task whose first step
#: runs at once, as the current task.
EAGER_TASKS = sys.version_info >= (3, 12)


class _Continuation:
    """Awaitable that resumes a coroutine suspended on ``pending``, forwarding what the task
    sends or throws into it."""

    __slots__ = ('_coroutine', '_pending')

    def __init__(self, coroutine: Coroutine[Any, Any, Any], pending: Any) -> None:
        self._coroutine = coroutine
        self._pending = pending

    def __await__(self) -> Generator[Any, None, Any]:
        coroutine = self._coroutine
        pending = self._pending
        self._pending = None
        while True:
            try:
                yield pending
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as exc:  # cancellation thrown in by the task
                try:
                    pending = coroutine.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coroutine.send(None)
                except StopIteration as stop:
                    return stop.value


async def _resume(coroutine: Coroutine[Any, Any, Any], pending: Any) -> Any:
    return await _Continuation(coroutine, pending)


def start_task(
    loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, Any]
) -> Optional[asyncio.Task[Any]]:
    """Run ``coroutine`` in a task of its own, for code that needs one from its first step
    (``asyncio.current_task()``, and the libraries built on it: anyio, sniffio): started at once
    where Python can (3.12 and later), else scheduled.

    Returns:
        ``None`` if it finished at once, else its task.
    """
    if EAGER_TASKS:
        task: asyncio.Task[Any] = asyncio.Task(  # type: ignore[call-arg]
            coroutine, loop=loop, eager_start=True)
        if task.done():
            task.result()  # what it raised propagates, as with start()
            return None
        return task
    return loop.create_task(coroutine)


def start(
    loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, Any]
) -> Optional[asyncio.Task[Any]]:
    """Run ``coroutine`` until it first suspends.

    Returns:
        ``None`` if it finished (its result is discarded; exceptions propagate), else the task
        that carries on with it.
    """
    context = contextvars.copy_context()
    try:
        pending = context.run(coroutine.send, None)
    except StopIteration:
        return None
    if SUPPORTED:
        return loop.create_task(_resume(coroutine, pending), context=context)
    # Before 3.11 a task copies the context it is created in: created inside ``context``, it
    # sees what the first step set.
    return context.run(loop.create_task, _resume(coroutine, pending))
