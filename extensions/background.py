"""Background tasks: work that runs after the response has been sent.

```python
from tremolo import Tremolo
from tremolo.extensions.background import BackgroundTasks

app = Tremolo()
app.install(BackgroundTasks())

@app.post('/signup')
async def signup(request, background):
    user = await create_user(await request.form())
    background.add(send_welcome_email, user.email)
    return 'Welcome!'
```

A handler (or hook) that takes ``background`` gets a `Background` and adds functions to it
with their arguments: coroutine functions are awaited, plain functions run in the thread
pool. They run once the response has been sent in full, one after the other in the order they
were added, without holding up the connection: the client's next request is answered
meanwhile. They are not run when the response could not be completed (the client went away,
the connection was cut). A task that raises is logged on the ``tremolo.background`` logger
(with the request's id, if `tremolo.middleware.request_id.RequestID` is installed) and the
next one still runs.

When the server stops, each worker waits for the tasks still running, at most the
``graceful_shutdown_timeout`` (or ``shutdown_timeout``), then cancels them.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
from typing import Any, AsyncIterator, Callable, Optional

from tremolo import Extension, Options, Response, Tremolo

__all__ = ['Background', 'BackgroundTasks']

logger = logging.getLogger('tremolo.background')


class Background:
    """The tasks of one request, injected as ``background``."""

    __slots__ = ('tasks',)

    def __init__(self) -> None:
        self.tasks: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []

    def add(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``func(*args, **kwargs)`` after the response has been sent.

        Raises:
            TypeError: ``func`` is not callable (a coroutine object, for instance: pass the
                function and its arguments instead).
        """
        if inspect.iscoroutine(func):
            func.close()  # never to be awaited: no "never awaited" warning on top
            raise TypeError('background.add() takes a function and its arguments, not a '
                            'coroutine: background.add(send_email, address)')
        if not callable(func):
            raise TypeError(f'background.add() takes a function, not {func!r}')
        self.tasks.append((func, args, kwargs))

    def clear(self) -> None:
        """Drop the tasks added so far."""
        self.tasks.clear()

    def __len__(self) -> int:
        return len(self.tasks)

    def __repr__(self) -> str:
        return f'<Background {len(self.tasks)} task(s)>'


class BackgroundTasks(Extension):
    """Give handlers a ``background`` (see the module's description).

    Args:
        shutdown_timeout: Seconds a stopping worker waits for the tasks still running, once
            its connections are closed; ``None``: the ``graceful_shutdown_timeout`` option.

    Raises:
        ValueError: A negative ``shutdown_timeout``.
    """

    name = 'background-tasks'

    def __init__(self, *, shutdown_timeout: Optional[float] = None) -> None:
        if shutdown_timeout is not None and (
                isinstance(shutdown_timeout, bool)
                or not isinstance(shutdown_timeout, (int, float)) or shutdown_timeout < 0):
            raise ValueError(f'shutdown_timeout must be a number of seconds of at least 0, not '
                             f'{shutdown_timeout!r}')
        self.shutdown_timeout = shutdown_timeout
        #: The tasks running in this process (a worker), until they finish.
        self.running: set[asyncio.Task[None]] = set()

    def setup(self, app: Tremolo) -> None:
        app.provide('background')(self.provide)

    async def provide(self, response: Response) -> AsyncIterator[Background]:
        """The ``background`` of a request; its tasks start once the response is sent."""
        background = Background()
        yield background
        if not background.tasks:
            return
        if not response.finished:
            logger.debug('%d background task(s) dropped: the response to %r was not '
                         'completed', len(background.tasks), response.request)
            return
        task = asyncio.ensure_future(self._run(list(background.tasks)))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def _run(self, tasks: list[tuple[Callable[..., Any], tuple[Any, ...],
                                           dict[str, Any]]]) -> None:
        loop = asyncio.get_running_loop()
        for func, args, kwargs in tasks:
            try:
                if _is_async(func):
                    await func(*args, **kwargs)
                else:
                    call = functools.partial(contextvars.copy_context().run, func, *args,
                                             **kwargs)
                    result = await loop.run_in_executor(None, call)
                    if inspect.isawaitable(result):
                        await result
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception('background task %s failed', _name(func))

    async def close(self, options: Options) -> None:
        """Wait for the tasks still running (bounded), then cancel the rest."""
        if not self.running:
            return
        timeout = (self.shutdown_timeout if self.shutdown_timeout is not None
                   else options.graceful_shutdown_timeout)
        pending = set(self.running)
        logger.info('waiting up to %g s for %d background task(s)', timeout, len(pending))
        done, late = await asyncio.wait(pending, timeout=timeout)
        if late:
            logger.warning('%d background task(s) still running after %g s: cancelled',
                           len(late), timeout)
            for task in late:
                task.cancel()
            await asyncio.wait(late)

    def __repr__(self) -> str:
        return f'<BackgroundTasks {len(self.running)} running>'


def _is_async(func: Callable[..., Any]) -> bool:
    target = inspect.unwrap(func)
    if isinstance(target, functools.partial):
        target = target.func
    if inspect.iscoroutinefunction(target):
        return True
    # An object with an async __call__.
    return not inspect.isfunction(target) and inspect.iscoroutinefunction(
        type(target).__call__)


def _name(func: Callable[..., Any]) -> str:
    return getattr(func, '__qualname__', None) or repr(func)
