"""Readiness and liveness: answered by the server itself, before the application."""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.apps.harness import fetch
from tests.server.test_running import run_basic, stops_cleanly
from tremolo import Options, Tremolo
from tremolo.testing import TestClient


@pytest.fixture
def guarded_app() -> Tremolo:
    app = Tremolo()

    @app.on_request
    async def deny_everything(**server):
        return 'denied by a middleware'  # health answers never get here

    return app


async def test_ready_and_alive_without_the_application(guarded_app):
    async with TestClient(guarded_app, readiness_path='/ready',
                          liveness_path='/live') as client:
        ready = await client.get('/ready')
        live = await client.get('/live?probe=1')
        head = await client.request('HEAD', '/ready')
        other = await client.get('/')
        post = await client.post('/ready', body=b'x')
    assert (ready.status, ready.text) == (200, 'ready')
    assert ready.header('cache-control') == 'no-store'
    assert (live.status, live.text) == (200, 'alive')
    assert (head.status, head.body, head.header('content-length')) == (200, b'', '5')
    assert other.text == 'denied by a middleware'
    assert (post.status, post.header('allow')) == (405, 'GET, HEAD')
    assert post.header('connection') == 'close'  # its body is never read


async def test_readiness_turns_503_when_the_worker_drains_or_stops(guarded_app):
    async with TestClient(guarded_app, readiness_path='/ready',
                          liveness_path='/live') as client:
        connection = client.connect()
        assert (await connection.request('GET', '/ready')).status == 200
        client.state.draining = True  # a reload or a replacement began
        response = await connection.request('GET', '/ready')
        assert (response.status, response.text) == (503, 'not ready')
        assert (await connection.request('GET', '/live')).status == 200
        client.state.draining = False
        assert (await connection.request('GET', '/ready')).status == 200
        client.state.close_idle()  # the worker stops
        response = await connection.request('GET', '/ready')
        assert response.status == 503 and response.header('connection') == 'close'


async def test_health_answers_keep_the_connection_alive(guarded_app):
    async with TestClient(guarded_app, readiness_path='/ready') as client:
        connection = client.connect()
        for _ in range(3):
            response = await connection.request('GET', '/ready')
            assert response.status == 200 and response.header('connection') is None
        assert not connection.closed


def test_health_paths_are_checked():
    with pytest.raises(ValueError, match="option 'readiness_path' must be a path"):
        Options(readiness_path='ready')
    with pytest.raises(ValueError, match="option 'liveness_path' must be a path"):
        Options(liveness_path='/live?x=1')
    with pytest.raises(ValueError, match='must differ'):
        Options(readiness_path='/h', liveness_path='/h')


@pytest.mark.slow
async def test_readiness_of_a_worker_process_during_a_reload(procs):
    server = run_basic(procs, worker_num=2, readiness_path='/ready')
    await server.serving(count=2)
    url = await server.url('/ready')
    assert (await fetch(url))[:2] == (200, 'ready')
    server.send(signal.SIGHUP)
    await server.wait_for('reloaded: 2 new workers serve')
    await asyncio.sleep(0.2)
    for _ in range(10):  # the new workers are ready
        assert (await fetch(url))[:2] == (200, 'ready')
    await stops_cleanly(server)
