"""Debug mode names the functions that block the event loop (on a fake clock, and once for
real with the test client)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from tremolo.testing import TestClient
from tremolo.web.blocking import BlockingWatch


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def watch(clock) -> BlockingWatch:
    return BlockingWatch(limit=0.1, clock=clock)


def warnings(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records
            if record.name == 'tremolo' and record.levelno == logging.WARNING]


async def test_a_slow_step_is_named_a_slow_wait_is_not(watch, clock, caplog):
    async def handler() -> str:
        clock.now += 0.05  # a quick step
        await asyncio.sleep(0)  # suspended: the 5 s of `elsewhere` pass meanwhile
        clock.now += 0.25  # this step blocks
        return 'done'

    async def elsewhere() -> None:
        clock.now += 5.0

    # The 5 s pass in another coroutine, between the handler's steps.
    task = asyncio.ensure_future(watch.run(handler(), 'handler (app)'))
    await asyncio.sleep(0)
    await elsewhere()
    assert await task == 'done'
    assert warnings(caplog) == [
        'handler (app) blocked the event loop for 0.250 s: a blocking call in an async '
        'function? Make it a plain def (a handler then runs in the thread pool) or await an '
        'async equivalent']


async def test_nested_steps_are_reported_once_by_the_innermost(watch, clock, caplog):
    async def provider() -> int:
        clock.now += 0.3
        return 1

    async def handler() -> int:
        return await watch.run(provider(), 'provider') + 1

    assert await watch.run(handler(), 'handler') == 2
    assert [message.split(' blocked')[0] for message in warnings(caplog)] == ['provider']


async def test_exceptions_and_results_pass_through(watch, clock):
    async def failing() -> None:
        await asyncio.sleep(0)
        raise KeyError('x')

    with pytest.raises(KeyError):
        await watch.run(failing(), 'failing')

    async def waits_for_cancel() -> None:
        await asyncio.sleep(10)

    task = asyncio.ensure_future(watch.run(waits_for_cancel(), 'cancelled'))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_plain_functions_and_streams_are_timed(watch, clock, caplog):
    def hook(request: str) -> str:
        clock.now += 0.2
        return request

    async def stream():
        yield b'a'
        clock.now += 0.2
        yield b'b'

    assert watch.call(hook, 'hook', request='r') == 'r'
    assert [item async for item in watch.stream(stream(), 'stream')] == [b'a', b'b']
    messages = warnings(caplog)
    assert messages[0].startswith('hook blocked the event loop for 0.200 s: plain hooks and '
                                  'providers run on the event loop')
    assert messages[1].startswith('stream blocked the event loop for 0.200 s: a blocking call')


@pytest.mark.parametrize('debug', [True, False])
async def test_debug_mode_names_a_blocking_handler(app, caplog, debug):
    @app.route('/sleepy')
    async def sleepy():
        time.sleep(0.15)  # the mistake: a blocking call in an async def
        return 'slept'

    @app.route('/threaded')
    def threaded():
        time.sleep(0.15)  # a plain def runs in a thread: the loop is free
        return 'slept'

    async with TestClient(app, debug=debug) as client:
        assert (await client.get('/sleepy')).text == 'slept'
        assert (await client.get('/threaded')).text == 'slept'
    reported = [message for message in warnings(caplog) if 'blocked the event loop' in message]
    if debug:
        assert len(reported) == 1
        assert reported[0].startswith(f'{sleepy.__qualname__} ({__name__}) blocked the event '
                                      f'loop for 0.1')
    else:
        assert reported == []  # no timing at all outside debug mode
