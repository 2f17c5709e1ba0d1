"""Background tasks: after the response, in order, without holding the connection; errors
logged; dropped when the response was not completed; awaited by a graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import aiohttp
import pytest
from tremolo.extensions.background import Background, BackgroundTasks
from tremolo.middleware.request_id import RequestID

from tremolo import Tremolo
from tremolo.testing import TestClient, serve


@pytest.fixture
def tasks():
    return BackgroundTasks()


def make_app(tasks, events):
    app = Tremolo()
    app.install(RequestID())
    app.install(tasks)
    release = asyncio.Event()

    async def record(name, response=None):
        events.append((name, response.finished if response is not None else None))

    def blocking(name):
        time.sleep(0.01)
        events.append((name, threading.current_thread() is threading.main_thread()))

    async def wait_for_release():
        await release.wait()
        events.append(('released', None))

    async def fail():
        raise ValueError('the task failed')

    @app.route('/')
    async def index(background, response):
        background.add(record, 'first', response)
        background.add(blocking, 'second')
        background.add(record, name='third')
        events.append(('handler', None))
        return 'done'

    @app.route('/slow')
    async def slow(background):
        background.add(wait_for_release)
        return 'answered before the task ends'

    @app.route('/failing')
    async def failing(background):
        background.add(fail)
        background.add(record, 'after the failure')
        return 'ok'

    @app.route('/stream')
    async def stream(background):
        background.add(record, 'streamed')
        for _ in range(64):  # 1 MiB: more than a client that reads nothing lets through
            yield 'x' * 16384

    app.release = release
    return app


async def test_tasks_run_after_the_response_in_order(tasks):
    events = []
    async with TestClient(make_app(tasks, events)) as client:
        response = await client.get('/')
        assert response.text == 'done'
        for _ in range(100):
            if len(events) == 4:
                break
            await asyncio.sleep(0.01)
    assert events == [('handler', None), ('first', True), ('second', False), ('third', None)]


async def test_the_connection_is_free_while_a_task_runs(tasks):
    events = []
    app = make_app(tasks, events)
    async with TestClient(app) as client:
        connection = client.connect()
        first = await connection.request('GET', '/slow')
        # The task waits; the same connection answers the next request meanwhile.
        second = await connection.request('GET', '/')
        assert first.text == 'answered before the task ends' and second.text == 'done'
        assert len(tasks.running) >= 1
        app.release.set()
        await asyncio.sleep(0.05)
    assert ('released', None) in events


async def test_errors_are_logged_with_the_request_id_and_the_next_task_runs(tasks, caplog):
    events = []
    caplog.set_level(logging.ERROR, logger='tremolo.background')
    async with TestClient(make_app(tasks, events)) as client:
        await client.get('/failing', headers={'X-Request-ID': 'bg-1'})
        await asyncio.sleep(0.05)
    [record] = [r for r in caplog.records if r.name == 'tremolo.background']
    assert 'background task' in record.getMessage() and 'fail' in record.getMessage()
    assert record.request_id == 'bg-1'
    assert ('after the failure', None) in events


async def test_tasks_are_dropped_when_the_response_is_not_completed(tasks):
    events = []
    async with TestClient(make_app(tasks, events)) as client:
        connection = client.connect(write_buffer_limit=1024)  # a client that reads nothing
        connection.send(b'GET /stream HTTP/1.1\r\nHost: t\r\n\r\n')
        await asyncio.sleep(0.05)
        await connection.close()  # gone mid-stream
        await asyncio.sleep(0.05)
        assert not tasks.running
    assert 'streamed' not in [name for name, _ in events]


async def test_a_graceful_shutdown_waits_for_the_tasks(tasks):
    events = []
    app = make_app(tasks, events)
    async with TestClient(app) as client:
        await client.get('/slow')
        asyncio.get_running_loop().call_later(0.1, app.release.set)
        started = time.monotonic()
    # Leaving the client stops the worker: its close waited for the task.
    assert ('released', None) in events
    assert time.monotonic() - started >= 0.09


async def test_the_wait_is_bounded_and_late_tasks_are_cancelled(caplog):
    events = []
    tasks = BackgroundTasks(shutdown_timeout=0.05)
    app = make_app(tasks, events)
    caplog.set_level(logging.WARNING, logger='tremolo.background')
    async with TestClient(app) as client:
        await client.get('/slow')
    assert ('released', None) not in events
    assert not tasks.running
    assert any('cancelled' in record.getMessage() for record in caplog.records)


async def test_the_shutdown_timeout_option_bounds_the_wait(tasks):
    events = []
    app = make_app(tasks, events)
    started = time.monotonic()
    async with TestClient(app, graceful_shutdown_timeout=0.1) as client:
        await client.get('/slow')
    assert 0.09 <= time.monotonic() - started < 5
    assert ('released', None) not in events


def test_add_refuses_what_it_cannot_run():
    background = Background()

    async def job():
        return None

    coroutine = job()
    with pytest.raises(TypeError, match='not a coroutine'):
        background.add(coroutine)
    with pytest.raises(TypeError, match='takes a function'):
        background.add(42)
    background.add(job)
    assert len(background) == 1
    background.clear()
    assert len(background) == 0
    with pytest.raises(ValueError, match='shutdown_timeout'):
        BackgroundTasks(shutdown_timeout=-1)


async def test_over_real_sockets(tasks):
    events = []
    app = make_app(tasks, events)
    async with serve(app) as server:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + '/') as response:
                assert await response.text() == 'done'
        for _ in range(100):
            if len(events) == 4:
                break
            await asyncio.sleep(0.01)
    assert [name for name, _ in events] == ['handler', 'first', 'second', 'third']
