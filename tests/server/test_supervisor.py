"""The supervisor on real processes: signals to the whole process group, reloads on SIGHUP,
workers replaced after max_requests or above max_worker_memory.

Every server runs in its own process group (:class:`tests.apps.harness.Processes`), which is
what a terminal and systemd give it too: ``os.killpg`` is Ctrl-C, or ``systemctl stop`` with
``KillMode=control-group``.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from tests.apps.harness import (
    Processes,
    ServerProcess,
    children_of,
    fetch,
    fetch_text,
    free_port,
    refused,
)
from tests.server.test_running import run_basic, stopped_pids, stops_cleanly

pytestmark = pytest.mark.slow


# -- signals to the process group -----------------------------------------------------------------

@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
async def test_a_signal_to_the_process_group_stops_the_workers_gracefully(procs, stop_dir,
                                                                          signum):
    """Ctrl-C (SIGINT to the group) and systemd's KillMode=control-group (SIGTERM to every
    process): each worker gets the signal itself and its supervisor's order, and counts one
    stop, so the requests in flight still finish."""
    server = run_basic(procs, stop_dir, worker_num=2)
    await server.serving(count=2)
    workers = set(children_of(server.pid))
    url = await server.url('/slow?seconds=2')
    in_flight = [asyncio.ensure_future(fetch(url, timeout=15)) for _ in range(2)]
    await asyncio.sleep(0.5)  # both requests are in their handlers
    os.killpg(server.pid, signum)
    assert await refused(await server.url('/'), timeout=5)  # new connections are refused
    for task in in_flight:
        status, text, _ = await task
        assert (status, text) == (200, 'slow done after 2 s')
    await stops_cleanly(server, None)
    assert 'again' not in server.stderr and 'stopping now' not in server.stderr
    assert stopped_pids(stop_dir) == workers


async def test_a_signal_to_the_process_group_of_the_reloader_stops_gracefully(procs, stop_dir):
    port = free_port()  # the reloaded server must come back on a known port
    server = procs.cli('tests.apps.basic:app', '--port', str(port), '--reload',
                       env=_env(stop_dir))
    await server.wait_for('reloader watching')
    await server.serving()
    url = f'http://127.0.0.1:{port}'
    in_flight = asyncio.ensure_future(fetch(url + '/slow?seconds=2', timeout=15))
    await asyncio.sleep(0.5)
    os.killpg(server.pid, signal.SIGINT)
    status, text, _ = await in_flight
    assert (status, text) == (200, 'slow done after 2 s')
    await stops_cleanly(server, None)
    assert 'stopping now' not in server.stderr


async def test_a_second_signal_to_the_group_stops_at_once(procs, stop_dir):
    server = run_basic(procs, stop_dir, worker_num=2)
    await server.serving(count=2)
    url = await server.url('/slow?seconds=30')
    in_flight = asyncio.ensure_future(fetch(url, timeout=15))
    await asyncio.sleep(0.5)
    started = time.monotonic()
    os.killpg(server.pid, signal.SIGINT)
    await server.wait_for('stopping gracefully')
    os.killpg(server.pid, signal.SIGINT)
    status, _, _ = await in_flight
    assert status == 503  # cancelled before it answered
    await stops_cleanly(server, None)
    assert time.monotonic() - started < 10


# -- reloading on SIGHUP --------------------------------------------------------------------------

RELOADABLE = '''
import os

from tremolo import Tremolo

VERSION = {version!r}

app = Tremolo()


@app.route('/')
async def index(**server):
    return f'version {{VERSION}}'


@app.route('/pid')
async def pid(**server):
    return str(os.getpid())


@app.on_worker_start
async def check(**server):
    if VERSION == 'broken at start':
        raise RuntimeError('this version cannot start')
'''


def write_version(path: Path, version: str) -> None:
    before = path.stat().st_mtime if path.exists() else time.time()
    path.write_text(RELOADABLE.format(version=version))
    os.utime(path, (before + 2, before + 2))  # a new modification time even on coarse clocks


def start_reloadable(procs: Processes, tmp_path: Path, *flags: str) -> ServerProcess:
    write_version(tmp_path / 'reloadable.py', '1')
    return procs.cli('reloadable:app', '--port', '0', *flags, cwd=tmp_path)


async def versions_and_pids(url: str, count: int = 20) -> tuple[set[str], set[int]]:
    versions, pids = set(), set()
    for _ in range(count):
        versions.add(await fetch_text(url + '/'))
        pids.add(int(await fetch_text(url + '/pid')))
    return versions, pids


async def test_sighup_serves_the_new_code_with_new_workers(procs, tmp_path):
    server = start_reloadable(procs, tmp_path, '--worker-num', '2')
    await server.serving(count=2)
    url = (await server.url('/')).rstrip('/')
    old_workers = set(children_of(server.pid))
    assert (await versions_and_pids(url))[0] == {'version 1'}

    write_version(tmp_path / 'reloadable.py', '2')
    server.send(signal.SIGHUP)
    await server.wait_for('reloaded: 2 new workers serve')
    versions, pids = await versions_and_pids(url)
    assert versions == {'version 2'}
    assert not pids & old_workers
    deadline = time.monotonic() + 10
    while set(children_of(server.pid)) & old_workers:  # the old workers stop
        assert time.monotonic() < deadline, server.describe()
        await asyncio.sleep(0.05)
    assert 'received SIGHUP: reloading' in server.stderr
    await stops_cleanly(server)


async def test_a_reload_that_fails_to_import_keeps_the_old_workers(procs, tmp_path):
    server = start_reloadable(procs, tmp_path, '--worker-num', '2')
    await server.serving(count=2)
    url = (await server.url('/')).rstrip('/')
    workers = set(children_of(server.pid))
    path = tmp_path / 'reloadable.py'
    before = path.stat().st_mtime
    path.write_text('def broken(:\n')
    os.utime(path, (before + 2, before + 2))
    server.send(signal.SIGHUP)
    await server.wait_for('reload failed: the application cannot be imported')
    assert 'SyntaxError' in server.stderr
    assert (await versions_and_pids(url))[0] == {'version 1'}
    assert set(children_of(server.pid)) == workers

    # Fixed, it reloads.
    write_version(path, '3')
    server.send(signal.SIGHUP)
    await server.wait_for('reloaded: 2 new workers serve')
    assert (await versions_and_pids(url))[0] == {'version 3'}
    await stops_after_logged_errors(server)


async def test_a_reload_whose_workers_fail_to_start_keeps_the_old_workers(procs, tmp_path):
    server = start_reloadable(procs, tmp_path, '--worker-num', '2')
    await server.serving(count=2)
    url = (await server.url('/')).rstrip('/')
    workers = set(children_of(server.pid))
    write_version(tmp_path / 'reloadable.py', 'broken at start')
    server.send(signal.SIGHUP)
    await server.wait_for('reload failed: worker')
    assert 'this version cannot start' in server.stderr
    assert (await versions_and_pids(url))[0] == {'version 1'}
    deadline = time.monotonic() + 10
    while set(children_of(server.pid)) != workers:  # the failed new ones are gone
        assert time.monotonic() < deadline, server.describe()
        await asyncio.sleep(0.05)
    await stops_after_logged_errors(server)


async def test_no_request_fails_through_reloads_under_load(procs, tmp_path):
    server = start_reloadable(procs, tmp_path, '--worker-num', '2', '--no-access-log')
    await server.serving(count=2)
    url = (await server.url('/')).rstrip('/')
    stop = asyncio.Event()
    answers: list[str] = []
    failures: list[BaseException] = []

    async def client() -> None:
        # Keep-alive connections, as load generators and proxies use them.
        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                try:
                    async with session.get(url + '/') as response:
                        assert response.status == 200
                        answers.append(await response.text())
                except Exception as exc:  # every failure is one
                    failures.append(exc)

    clients = [asyncio.ensure_future(client()) for _ in range(16)]
    for version in ('2', '3'):
        await asyncio.sleep(0.5)
        write_version(tmp_path / 'reloadable.py', version)
        server.send(signal.SIGHUP)
        await server.wait_for('reloaded: 2 new workers serve', count=int(version) - 1)
    await asyncio.sleep(1.0)  # the old workers have stopped meanwhile
    stop.set()
    await asyncio.gather(*clients)
    assert failures == []
    assert answers[-1] == 'version 3' and 'version 1' in answers
    await stops_cleanly(server)


async def test_sighup_replaces_the_workers_of_an_app_run_script(procs, stop_dir):
    """Without the command line's module:app, a reload cannot import the application
    afresh: the workers are replaced with the code already loaded."""
    server = run_basic(procs, stop_dir, worker_num=2)
    await server.serving(count=2)
    workers = set(children_of(server.pid))
    server.send(signal.SIGHUP)
    await server.wait_for('reloaded: 2 new workers serve')
    url = await server.url('/pid')
    deadline = time.monotonic() + 10
    while set(children_of(server.pid)) & workers:
        assert time.monotonic() < deadline, server.describe()
        await asyncio.sleep(0.05)
    assert not {int(await fetch_text(url)) for _ in range(10)} & workers
    assert stopped_pids(stop_dir) == workers  # the old workers stopped gracefully
    await stops_cleanly(server)


async def test_sighup_without_a_supervisor_is_ignored_with_a_warning(procs):
    server = run_basic(procs)
    url = await server.url('/pid')
    server.send(signal.SIGHUP)
    await server.wait_for('received SIGHUP: reloading needs a supervisor')
    assert await fetch_text(url) == str(server.pid)
    await stops_cleanly(server)


async def test_supervise_runs_one_worker_under_a_supervisor_that_reloads(procs):
    server = run_basic(procs, supervise=True)
    await server.serving()
    (worker,) = children_of(server.pid)
    url = await server.url('/pid')
    assert await fetch_text(url) == str(worker)
    server.send(signal.SIGHUP)
    await server.wait_for('reloaded: 1 new workers serve')
    assert int(await fetch_text(url)) != worker
    await stops_cleanly(server)


# -- worker recycling -----------------------------------------------------------------------------

async def test_max_requests_replaces_workers_one_at_a_time(procs):
    server = run_basic(procs, worker_num=2, max_requests=10, max_requests_jitter=5)
    await server.serving(count=2)
    url = await server.url('/pid')
    first = set(children_of(server.pid))
    seen: list[int] = []
    for _ in range(60):
        seen.append(int(await fetch_text(url)))
    await server.wait_for(r'pid \d+ replaces pid \d+ \(max_requests\)', count=2)
    assert set(seen) - first, 'no new worker answered'
    # One at a time: the second replacement starts serving only after the first has
    # replaced its worker (a retiring worker may still be finishing its last exchange).
    lines = server.stderr.splitlines()
    for line in lines:
        assert 'exited with code' not in line
    replaced = [(index, int(match.group(1))) for index, line in enumerate(lines)
                for match in [re.search(r'pid (\d+) replaces pid \d+ \(max_requests\)', line)]
                if match]
    (first_done, _), (_, second) = replaced[:2]
    second_serving = next(index for index, line in enumerate(lines)
                          if f'[{second}]' in line and 'serving on' in line)
    assert second_serving > first_done, server.describe()
    assert 'served' in server.stderr and 'max_requests' in server.stderr
    await stops_cleanly(server)


async def test_max_worker_memory_replaces_a_worker_that_grows(procs):
    server = run_basic(procs, worker_num=2, max_worker_memory=200 * 1024 * 1024)
    await server.serving(count=2)
    grown = int(await fetch_text(await server.url('/grow?mb=300')))
    await server.wait_for(rf'worker \d \(pid {grown}\) uses \d+ MiB, more than '
                          r'max_worker_memory')
    await server.wait_for(r'replaces pid \d+ \(max_worker_memory\)')
    deadline = time.monotonic() + 10
    while grown in children_of(server.pid):
        assert time.monotonic() < deadline, server.describe()
        await asyncio.sleep(0.05)
    await stops_cleanly(server)


async def stops_after_logged_errors(server: ServerProcess) -> None:
    """`stops_cleanly`, for a server that logged the traceback of a failed reload."""
    server.send(signal.SIGTERM)
    assert await server.wait_exit() == 0, server.describe()
    deadline = time.monotonic() + 5
    while server.group_alive():
        assert time.monotonic() < deadline, f'workers left running\n{server.describe()}'
        await asyncio.sleep(0.05)


def _env(stop_dir: Path) -> dict[str, str]:
    from tests.apps.harness import child_env

    return child_env(TREMOLO_TEST_STOP_DIR=str(stop_dir))
