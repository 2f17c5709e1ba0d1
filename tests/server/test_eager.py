"""Starting the task of a request: inside a task from the first line, eagerly where asyncio can."""

from __future__ import annotations

import asyncio
import contextvars

import aiohttp
import pytest

from tremolo import Tremolo
from tremolo.server import eager
from tremolo.testing import serve

variable: contextvars.ContextVar[str] = contextvars.ContextVar('variable', default='unset')


async def finished(result):
    """``eager.start``'s result, awaited if it is a task."""
    if result is not None:
        return await result
    return None


async def test_a_coroutine_that_never_waits_is_done_at_once_where_tasks_start_eagerly():
    steps = []

    async def quick():
        steps.append(asyncio.current_task() is not None)

    result = eager.start(asyncio.get_running_loop(), quick())
    if eager.EAGER:
        assert result is None and steps == [True]  # before anything else got the loop
    else:
        assert steps == [] and isinstance(result, asyncio.Task)
    await finished(result)
    assert steps == [True]


async def test_a_coroutine_that_waits_continues_in_its_task():
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    steps = []
    tasks = []

    async def slow():
        tasks.append(asyncio.current_task())
        steps.append('start')
        value = await future
        steps.append(value)
        tasks.append(asyncio.current_task())
        await asyncio.sleep(0)
        steps.append('end')
        return 'result'

    task = eager.start(loop, slow())
    await asyncio.sleep(0)
    assert steps == ['start']
    future.set_result('value')
    assert await task == 'result'
    assert steps == ['start', 'value', 'end']
    assert tasks == [task, task]  # one task, from the first line to the last


async def test_context_is_kept_across_the_suspension_and_isolated():
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    async def uses_context():
        variable.set('inside')
        await future
        return variable.get()

    task = eager.start(loop, uses_context())
    await asyncio.sleep(0)
    assert variable.get() == 'unset'  # the caller's context did not change
    future.set_result(None)
    assert await task == 'inside'


async def test_cancelling_the_task_reaches_the_coroutine():
    loop = asyncio.get_running_loop()
    cleaned = []

    async def waits_forever():
        try:
            await loop.create_future()
        finally:
            cleaned.append(True)

    task = eager.start(loop, waits_forever())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == [True]


async def test_exceptions_propagate_from_either_side():
    loop = asyncio.get_running_loop()

    async def fails_at_once():
        raise ValueError('now')

    async def fails_later():
        await asyncio.sleep(0)
        raise KeyError('later')

    with pytest.raises(ValueError):
        await finished(eager.start(loop, fails_at_once()))
    task = eager.start(loop, fails_later())
    with pytest.raises(KeyError):
        await task


async def test_a_handler_runs_inside_a_task_from_its_first_line():
    # Over a real socket the protocol is called by the event loop, outside any task: the
    # handler must still have one before its first await (timeouts, anyio and sniffio ask).
    app = Tremolo()

    @app.route('/')
    async def index():
        task = asyncio.current_task()
        await asyncio.wait_for(asyncio.sleep(0), 1)
        return f'{task is not None} {task is asyncio.current_task()}'

    async with serve(app) as server, aiohttp.ClientSession() as session:
        for _ in range(3):  # keep-alive: every request of the connection
            async with session.get(server.url + '/') as response:
                assert await response.text() == 'True True'
