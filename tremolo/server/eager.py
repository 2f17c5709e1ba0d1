"""Start the task that answers a request, its first step at once where asyncio allows it.

Most requests are answered without ever waiting: the handler returns, the response goes to the
transport's buffer. From Python 3.12, asyncio can start a task *eagerly*: its first step runs at
once, inside the task, and a task that finishes there is never scheduled. Before 3.12 the task
is scheduled as usual. Either way the handler runs inside a task from its first line: a first
step run outside any task would leave ``asyncio.current_task()`` empty, which breaks
``asyncio.timeout``, ``asyncio.wait_for`` (3.12), anyio, sniffio and every library built on them
(httpx, database drivers, ...).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, Optional

#: Whether tasks can start eagerly (``asyncio.Task(..., eager_start=True)``, Python 3.12).
EAGER = sys.version_info >= (3, 12)


def start(
    loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, Any]
) -> Optional[asyncio.Task[Any]]:
    """Run ``coroutine`` in a task of its own, its first step at once where possible.

    Returns:
        ``None`` if it finished at once (an exception it raised propagates), else its task.
    """
    if EAGER:
        task: asyncio.Task[Any] = asyncio.Task(  # type: ignore[call-arg]
            coroutine, loop=loop, eager_start=True)
        if task.done():
            task.result()
            return None
        return task
    return loop.create_task(coroutine)
