"""Starting coroutines eagerly: inline when they never wait, in a task when they do."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from tremolo.server import eager

variable: contextvars.ContextVar[str] = contextvars.ContextVar('variable', default='unset')


async def test_a_coroutine_that_never_waits_runs_inline():
    steps = []

    async def quick():
        steps.append('ran')

    result = eager.start(asyncio.get_running_loop(), quick())
    assert steps == ['ran']  # before anything else got the loop
    assert result is None


async def test_a_coroutine_that_waits_continues_in_a_task():
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    steps = []

    async def slow():
        steps.append('start')
        value = await future
        steps.append(value)
        await asyncio.sleep(0)
        steps.append('end')
        return 'result'

    task = eager.start(loop, slow())
    assert steps == ['start']
    future.set_result('value')
    assert await task == 'result'
    assert steps == ['start', 'value', 'end']


async def test_context_is_kept_across_the_suspension_and_isolated():
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    async def uses_context():
        variable.set('inside')
        await future
        return variable.get()

    task = eager.start(loop, uses_context())
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
        eager.start(loop, fails_at_once())
    task = eager.start(loop, fails_later())
    with pytest.raises(KeyError):
        await task
