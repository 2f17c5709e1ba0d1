"""Limits, timeouts and shutdown of real server processes, on both event loops.

Short versions of the measurements in ``bench/resilience.py`` (slowloris, graceful shutdown
under load, a killed worker): the bounds here are generous, the figures are in the bench.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from tests.apps.harness import (
    ServerProcess,
    children_of,
    fetch,
    fetch_text,
    needs_uvloop,
    trickle,
)
from tests.server.test_running import run_basic, stopped_pids, stops_cleanly

LOOPS = ['asyncio', pytest.param('uvloop', marks=needs_uvloop)]




def accepted(pid: int, port: int) -> int:
    """Established TCP connections to ``port`` that process ``pid`` has accepted (Linux)."""
    inodes = set()
    for fd in Path(f'/proc/{pid}/fd').iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith('socket:['):
            inodes.add(link[8:-1])
    count = 0
    for table in ('tcp', 'tcp6'):
        for line in Path(f'/proc/{pid}/net/{table}').read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(':', 1)[1], 16)
            count += local_port == port and fields[3] == '01' and fields[9] in inodes
    return count


async def request(host: str, port: int, target: str, timeout: float = 15.0) -> bytes:
    """One GET over a new raw connection; what the server sends until it closes."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f'GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n'.encode())
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


async def address(server: ServerProcess) -> tuple[str, int]:
    url = await server.url('/')
    host, port = url[len('http://'):-1].split(':')
    return host, int(port)


# -- max_connections ------------------------------------------------------------------------------

@pytest.mark.parametrize('loop', LOOPS)
async def test_max_connections_stops_accepting_and_resumes(procs, loop):
    server = run_basic(procs, loop=loop, max_connections=2)
    host, port = await address(server)
    busy = [asyncio.ensure_future(request(host, port, '/slow?seconds=1.5')) for _ in range(2)]
    await asyncio.sleep(0.5)
    assert accepted(server.pid, port) == 2
    started = time.monotonic()
    queued = [asyncio.ensure_future(request(host, port, '/')) for _ in range(3)]
    await asyncio.sleep(0.5)
    # Not accepted: the three wait in the listen backlog, the worker holds two connections.
    assert accepted(server.pid, port) == 2
    assert not any(task.done() for task in queued)
    for answer in await asyncio.gather(*busy, *queued):
        assert answer.startswith(b'HTTP/1.1 200 OK\r\n')
    assert time.monotonic() - started > 0.5  # answered once the slow ones were done
    assert await fetch_text(await server.url('/')) == 'Hello from tests.apps.basic'
    await stops_cleanly(server)


# -- slow clients ---------------------------------------------------------------------------------

@pytest.mark.parametrize('loop', LOOPS)
async def test_slowloris_does_not_stop_a_normal_client(procs, loop):
    """200 connections trickle a head a byte a second: a normal client is still served, and
    the slow ones are cut off once their grace period is over."""
    server = run_basic(procs, loop=loop, min_data_rate_grace=2, access_log=False)
    host, port = await address(server)
    head = b'GET / HTTP/1.1\r\nHost: t\r\nX-Padding: ' + b'x' * 50

    slow = [asyncio.ensure_future(trickle(host, port, head)) for _ in range(200)]
    await asyncio.sleep(1.0)
    url = await server.url('/')
    latencies = []
    for _ in range(20):
        started = time.monotonic()
        assert await fetch_text(url) == 'Hello from tests.apps.basic'
        latencies.append(time.monotonic() - started)
    assert max(latencies) < 2.0, latencies  # generous: the bench measures p99 < 100 ms
    answers = await asyncio.gather(*slow)
    assert all(answer.startswith(b'HTTP/1.1 408 Request Timeout\r\n') for answer in answers)
    await stops_cleanly(server)


# -- graceful shutdown ----------------------------------------------------------------------------

@pytest.mark.parametrize('worker_num', [1, pytest.param(2, marks=pytest.mark.slow)])
async def test_graceful_shutdown_under_load_drops_no_received_request(procs, worker_num):
    server = run_basic(procs, worker_num=worker_num, access_log=False)
    await server.serving(count=worker_num)
    host, port = await address(server)
    in_flight = [asyncio.ensure_future(request(host, port, '/slow?seconds=1'))
                 for _ in range(50)]
    await asyncio.sleep(0.5)  # every request is in its handler
    server.send(signal.SIGTERM)
    answers = await asyncio.gather(*in_flight)
    assert all(answer.startswith(b'HTTP/1.1 200 OK\r\n') for answer in answers)
    assert all(answer.endswith(b'slow done after 1 s') for answer in answers)
    await stops_cleanly(server, None)


async def test_a_second_signal_stops_at_once_and_cleanly(procs, stop_dir):
    server = run_basic(procs, stop_dir)
    url = await server.url('/slow?seconds=30')
    in_flight = asyncio.ensure_future(fetch(url, timeout=15))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    server.send(signal.SIGTERM)
    await server.wait_for('stopping gracefully')
    server.send(signal.SIGTERM)
    status, _, _ = await in_flight
    assert status == 503  # cancelled before it answered
    await stops_cleanly(server, None)
    assert time.monotonic() - started < 5
    assert 'received SIGTERM again: stopping now' in server.stderr
    assert stopped_pids(stop_dir) == {server.pid}  # the hooks still ran


@pytest.mark.parametrize('worker_num', [1, pytest.param(2, marks=pytest.mark.slow)])
async def test_signals_during_teardown_do_not_kill_the_process(procs, stop_dir, worker_num):
    for delay in (0.0, 0.005, 0.02):
        server = run_basic(procs, stop_dir, worker_num=worker_num)
        await server.serving(count=worker_num)
        workers = set(children_of(server.pid)) if worker_num > 1 else {server.pid}
        server.send(signal.SIGTERM)
        await asyncio.sleep(delay)
        try:
            server.send(signal.SIGTERM)
        except ProcessLookupError:
            pass  # already gone
        await stops_cleanly(server, None)
        assert workers <= stopped_pids(stop_dir)


# -- a killed worker ------------------------------------------------------------------------------

@pytest.mark.slow
async def test_a_killed_worker_is_replaced_quickly_and_the_other_keeps_serving(procs):
    server = run_basic(procs, worker_num=2, access_log=False)
    await server.serving(count=2)
    url = await server.url('/pid')
    await asyncio.sleep(1.2)  # past the minimum uptime: no respawn delay
    victim, survivor = sorted(children_of(server.pid))
    killed = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    for _ in range(20):
        assert int(await fetch_text(url)) != victim  # new connections go to the survivor
    await server.wait_for(r'serving on http', count=3, timeout=10)
    respawn = time.monotonic() - killed
    assert respawn < 5, respawn  # the bench measures well under a second
    await stops_cleanly(server)


# -- reload ---------------------------------------------------------------------------------------

RELOAD_APP = '''
from tremolo import Tremolo

app = Tremolo()


@app.route('/')
async def index(**server):
    return 'version {version}'


if __name__ == '__main__':
    app.run('127.0.0.1', 0, reload=True)
'''


@pytest.mark.slow
async def test_reload_keeps_the_port_chosen_for_port_0(procs, tmp_path):
    source = tmp_path / 'reloaded_zero.py'
    source.write_text(RELOAD_APP.format(version=1))
    server = procs.script(source, cwd=tmp_path)
    first = (await server.serving())[0]
    before = source.stat().st_mtime
    source.write_text(RELOAD_APP.format(version=2))
    os.utime(source, (before + 2, before + 2))
    addresses = await server.serving(count=2)
    assert addresses[1] == first
    deadline = time.monotonic() + 10
    url = f'http://{first[0]}:{first[1]}/'
    while (status := await fetch(url))[1] != 'version 2':
        assert status[0] == 200 and time.monotonic() < deadline
        await asyncio.sleep(0.1)
    await stops_cleanly(server)
