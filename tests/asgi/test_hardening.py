"""The server's limits, timeouts and shutdown, through the ASGI dispatcher: a raw ASGI
application (tests.apps.asgi_basic) served by ``python -m tremolo`` in a process of its own.

The same checks as tests/server/test_resilience.py and tests/server/test_limits.py: nothing of
the server's hardening depends on which dispatcher serves the application.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Optional

import aiohttp
import pytest

from tests.apps.harness import (
    ServerProcess,
    child_env,
    fetch,
    fetch_text,
    needs_uvloop,
    trickle,
)
from tests.server.test_resilience import accepted, address, request
from tests.server.test_running import stopped_pids, stops_cleanly

LOOPS = ['asyncio', pytest.param('uvloop', marks=needs_uvloop)]
APP = 'tests.apps.asgi_basic:app'


def run_asgi(procs, stop_dir: Optional[Path] = None, *args: str, **env: str) -> ServerProcess:
    """``python -m tremolo tests.apps.asgi_basic:app --port 0 ARGS`` in a new process."""
    if stop_dir is not None:
        env['TREMOLO_TEST_STOP_DIR'] = str(stop_dir)
    return procs.cli(APP, '--port', '0', '--no-access-log', *args, env=child_env(**env))


@pytest.mark.parametrize('loop', LOOPS)
async def test_an_asgi_module_is_served_on_the_event_loop_asked_for(procs, loop):
    server = run_asgi(procs, None, '--loop', loop)
    assert await fetch_text(await server.url('/')) == 'Hello from tests.apps.basic'
    kind = await fetch_text(await server.url('/loop'))
    assert kind.startswith('uvloop') if loop == 'uvloop' else kind.startswith('asyncio')
    await stops_cleanly(server)


async def test_the_interface_can_be_forced(procs):
    server = run_asgi(procs, None, '--interface', 'asgi')
    assert await fetch_text(await server.url('/')) == 'Hello from tests.apps.basic'
    await stops_cleanly(server)
    refused = run_asgi(procs, None, '--interface', 'tremolo')
    assert await refused.wait_exit() != 0
    assert "interface='tremolo' needs a Tremolo application" in refused.stderr


async def test_a_failed_lifespan_startup_stops_the_server_with_the_apps_message(procs):
    server = run_asgi(procs, None, TREMOLO_TEST_FAIL_STARTUP='the database is down')
    assert await server.wait_exit() == 1
    assert 'the database is down' in server.stderr
    assert 'Traceback' not in server.stderr and 'serving on' not in server.stderr


@pytest.mark.parametrize('loop', LOOPS)
async def test_slowloris_does_not_stop_a_normal_client(procs, loop):
    server = run_asgi(procs, None, '--loop', loop, '--min-data-rate-grace', '2')
    host, port = await address(server)
    head = b'GET / HTTP/1.1\r\nHost: t\r\nX-Padding: ' + b'x' * 50

    slow = [asyncio.ensure_future(trickle(host, port, head)) for _ in range(100)]
    await asyncio.sleep(1.0)
    url = await server.url('/')
    for _ in range(10):
        started = time.monotonic()
        assert await fetch_text(url) == 'Hello from tests.apps.basic'
        assert time.monotonic() - started < 2.0  # generous: the bench measures it
    answers = await asyncio.gather(*slow)
    assert all(answer.startswith(b'HTTP/1.1 408 Request Timeout\r\n') for answer in answers)
    await stops_cleanly(server)


async def test_limits_and_timeouts_apply(procs):
    server = run_asgi(procs, None, '--max-body-size', '1000', '--max-header-count', '10',
                      '--body-timeout', '1', '--handler-timeout', '3')
    host, port = await address(server)
    base = f'http://{host}:{port}'
    async with aiohttp.ClientSession() as session:
        async with session.post(base + '/upload', data=b'x' * 500) as response:
            assert (response.status, await response.text()) == (200, '500')
        async with session.post(base + '/upload', data=b'x' * 5000) as response:
            assert response.status == 413
        headers = {f'X-{n}': 'v' for n in range(20)}
        async with session.get(base + '/', headers=headers) as response:
            assert response.status == 431
        async with session.get(base + '/slow?seconds=8') as response:
            assert response.status == 503  # handler_timeout cancelled the application
    # A body that stops arriving: 408 once the body timeout passes.
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b'POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc')
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith(b'HTTP/1.1 408 Request Timeout\r\n')
    await stops_cleanly(server)


async def test_max_connections_stops_accepting_and_resumes(procs):
    server = run_asgi(procs, None, '--max-connections', '2')
    host, port = await address(server)
    busy = [asyncio.ensure_future(request(host, port, '/slow?seconds=1.5')) for _ in range(2)]
    await asyncio.sleep(0.5)
    queued = [asyncio.ensure_future(request(host, port, '/')) for _ in range(3)]
    await asyncio.sleep(0.5)
    assert accepted(server.pid, port) == 2
    assert not any(task.done() for task in queued)
    for answer in await asyncio.gather(*busy, *queued):
        assert answer.startswith(b'HTTP/1.1 200 OK\r\n')
    await stops_cleanly(server)


@pytest.mark.parametrize('worker_num', [1, pytest.param(2, marks=pytest.mark.slow)])
async def test_graceful_shutdown_under_load_drops_no_request_and_runs_the_lifespan(
        procs, stop_dir, worker_num):
    server = run_asgi(procs, stop_dir, '--worker-num', str(worker_num))
    await server.serving(count=worker_num)
    host, port = await address(server)
    in_flight = [asyncio.ensure_future(request(host, port, '/slow?seconds=1'))
                 for _ in range(30)]
    await asyncio.sleep(0.5)
    server.send(signal.SIGTERM)
    answers = await asyncio.gather(*in_flight)
    assert all(answer.endswith(b'slow done after 1 s') for answer in answers)
    await stops_cleanly(server, None)
    assert len(stopped_pids(stop_dir)) == worker_num  # each worker's lifespan shutdown ran


async def test_a_second_signal_stops_at_once(procs, stop_dir):
    server = run_asgi(procs, stop_dir)
    url = await server.url('/slow?seconds=30')
    in_flight = asyncio.ensure_future(fetch(url, timeout=15))
    await asyncio.sleep(0.3)
    server.send(signal.SIGTERM)
    await server.wait_for('stopping gracefully')
    server.send(signal.SIGTERM)
    status, _, _ = await in_flight
    assert status == 503
    await stops_cleanly(server, None)
    assert stopped_pids(stop_dir) == {server.pid}


@pytest.mark.parametrize('loop', LOOPS)
async def test_a_framework_app_from_the_command_line(procs, loop):
    """Starlette through the command line, on both loops: uvloop has no zero-copy sendfile,
    so pathsend falls back to reading the file."""
    pytest.importorskip('starlette', reason='Starlette is a CPython-only test extra')
    from tests.asgi.frameworks.common import FILE_DATA, PIECES

    server = procs.cli('tests.asgi.frameworks.starlette_app:app', '--port', '0', '--loop', loop,
                       '--no-access-log', env=child_env())
    base = (await server.url('/'))[:-1]
    async with aiohttp.ClientSession() as session:
        async with session.get(base + '/file') as response:
            assert await response.read() == FILE_DATA
        async with session.get(base + '/stream') as response:
            assert await response.read() == b''.join(PIECES)
        async with session.get(base + '/state') as response:
            assert await response.text() == 'yes'
    await stops_cleanly(server)
