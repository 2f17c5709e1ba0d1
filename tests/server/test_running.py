"""How Tremolo runs: ``app.run`` in real processes, on real sockets.

Worker processes, respawning, graceful stops on SIGTERM/SIGINT, extra listeners, event loops,
reloading, the access log and startup errors. Every server runs in its own process group and
is killed when its test ends (:class:`tests.apps.harness.Processes`); most listen on port 0 and
their address is read from the 'serving on' line they log.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import textwrap
import time
from pathlib import Path
from typing import Optional

import aiohttp
import pytest

from tests.apps.harness import (
    REPO_ROOT,
    Processes,
    ServerProcess,
    child_env,
    children_of,
    fetch,
    fetch_text,
    free_port,
    free_ports,
    needs_uvloop,
    refused,
)

RUN_BASIC = REPO_ROOT / 'tests' / 'apps' / 'run_basic.py'




def run_basic(procs: Processes, stop_dir: Optional[Path] = None, **options) -> ServerProcess:
    """``app.run(**options)`` of tests.apps.basic in a new process."""
    extra = {'TREMOLO_TEST_STOP_DIR': str(stop_dir)} if stop_dir is not None else {}
    return procs.script(RUN_BASIC, json.dumps(options), env=child_env(**extra))


def stopped_pids(stop_dir: Path) -> set[int]:
    return {int(path.name.split('-')[1]) for path in stop_dir.iterdir()}


async def pids_seen(url: str, want: int, attempts: int = 200) -> set[int]:
    """Worker pids answering ``url`` over new connections, until ``want`` different ones."""
    seen: set[int] = set()
    for _ in range(attempts):
        seen.add(int(await fetch_text(url)))
        if len(seen) >= want:
            break
    return seen


async def stops_cleanly(server: ServerProcess, signum: Optional[int] = signal.SIGTERM,
                        group: bool = False) -> None:
    """Send ``signum`` (unless ``None``: sent already); the server must exit with 0 and leave
    no process behind."""
    if signum is not None and group:
        os.killpg(server.pid, signum)  # what Ctrl-C in a terminal does
    elif signum is not None:
        server.send(signum)
    assert await server.wait_exit() == 0, server.describe()
    deadline = time.monotonic() + 5
    while server.group_alive():
        assert time.monotonic() < deadline, f'workers left running\n{server.describe()}'
        await asyncio.sleep(0.05)
    assert 'Traceback' not in server.stderr, server.describe()


# -- one process ----------------------------------------------------------------------------------

async def test_run_serves_in_the_calling_process(procs, stop_dir):
    server = run_basic(procs, stop_dir)
    url = await server.url('/pid')
    assert await fetch_text(url) == str(server.pid)
    assert children_of(server.pid) == []
    await stops_cleanly(server)
    assert stopped_pids(stop_dir) == {server.pid}


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT], ids=['SIGTERM', 'SIGINT'])
async def test_signal_stops_one_worker_gracefully(procs, stop_dir, signum):
    server = run_basic(procs, stop_dir)
    await fetch_text(await server.url('/'))
    await stops_cleanly(server, signum)
    assert f'received {signal.Signals(signum).name}: stopping gracefully' in server.stderr
    assert stopped_pids(stop_dir) == {server.pid}


# -- several worker processes ---------------------------------------------------------------------

@pytest.mark.slow
async def test_two_workers_serve_and_a_killed_one_is_replaced(procs, stop_dir):
    server = run_basic(procs, stop_dir, worker_num=2)
    await server.serving(count=2)
    await server.wait_for(r'started 2 workers')
    url = await server.url('/pid')
    workers = set(children_of(server.pid))
    assert len(workers) == 2
    # SO_REUSEPORT spreads new connections over both workers (by a hash of the client port).
    assert await pids_seen(url, want=2) == workers
    assert server.pid not in workers

    victim, survivor = sorted(workers)
    os.kill(victim, signal.SIGKILL)
    await server.wait_for(rf'worker \d \(pid {victim}\) exited with code -9')
    # Every request is still answered: by the survivor, then also by the replacement.
    for _ in range(5):
        assert int(await fetch_text(url)) != victim
    await server.wait_for(r'serving on http', count=3, timeout=10)  # the replacement
    deadline = time.monotonic() + 10
    seen: set[int] = set()
    while not (seen - workers):
        assert time.monotonic() < deadline, f'no new worker answered: {seen}'
        seen.add(int(await fetch_text(url)))
    replacement = (seen - workers).pop()
    assert set(children_of(server.pid)) == {survivor, replacement}

    await stops_cleanly(server, signal.SIGTERM)
    # on_worker_stop ran in each worker that was stopped (not in the killed one).
    assert stopped_pids(stop_dir) == {survivor, replacement}


@pytest.mark.slow
@pytest.mark.parametrize(('signum', 'group'), [
    (signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGINT, True),
], ids=['SIGTERM', 'SIGINT', 'SIGINT-to-group'])
async def test_signal_stops_all_workers_gracefully(procs, stop_dir, signum, group):
    server = run_basic(procs, stop_dir, worker_num=2)
    await server.serving(count=2)
    await server.wait_for(r'started 2 workers')
    workers = set(children_of(server.pid))
    assert len(workers) == 2
    await fetch_text(await server.url('/'))
    await stops_cleanly(server, signum, group=group)
    assert f'received {signal.Signals(signum).name}: stopping the workers' in server.stderr
    assert stopped_pids(stop_dir) == workers
    assert 'exited with code' not in server.stderr  # no worker replaced while stopping


@pytest.mark.slow
async def test_worker_failing_at_startup_stops_the_supervisor(procs, tmp_path):
    """A worker that cannot start is not replaced forever: the server stops with an error."""
    script = tmp_path / 'failing_start.py'
    script.write_text(textwrap.dedent('''
        from tremolo import Tremolo

        app = Tremolo()


        @app.on_worker_start
        async def connect_database(**server):
            raise ConnectionError('the database is down')


        app.run('127.0.0.1', 0, worker_num=2)
    '''))
    server = procs.script(script, cwd=tmp_path)
    code = await server.wait_exit(timeout=15)
    assert code != 0
    assert 'the database is down' in server.stderr
    assert 'failed to start' in server.stderr
    assert server.stderr.count('starting a new one') == 0
    assert not server.group_alive()


# -- graceful shutdown ----------------------------------------------------------------------------

@pytest.mark.parametrize('worker_num', [1, pytest.param(2, marks=pytest.mark.slow)])
async def test_request_in_flight_completes_and_new_connections_are_refused(
    procs, stop_dir, worker_num
):
    server = run_basic(procs, stop_dir, worker_num=worker_num)
    await server.serving(count=worker_num)
    # Long enough for the checks below to run while it is answered, on a busy machine too.
    url = await server.url('/slow?seconds=3')
    in_flight = asyncio.ensure_future(fetch(url, timeout=15))
    await asyncio.sleep(0.4)  # the request is in the handler's sleep
    assert not in_flight.done()
    server.send(signal.SIGTERM)
    # New connections are refused while the request in flight is still being answered.
    assert await refused(await server.url('/'), timeout=5)
    assert not in_flight.done()
    status, text, headers = await in_flight
    assert (status, text) == (200, 'slow done after 3 s')
    assert headers.get('Connection', '').lower() == 'close'
    await stops_cleanly(server, None)
    assert len(stopped_pids(stop_dir)) == worker_num


async def test_graceful_shutdown_timeout_cuts_slow_requests(procs, stop_dir):
    server = run_basic(procs, stop_dir, graceful_shutdown_timeout=0.5)
    url = await server.url('/slow?seconds=30')
    in_flight = asyncio.ensure_future(fetch(url, timeout=15))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    server.send(signal.SIGTERM)
    # Its handler is cancelled; nothing was sent yet, so it is answered 503.
    status, _, headers = await in_flight
    assert status == 503 and headers['Connection'] == 'close'
    await stops_cleanly(server, None)
    assert time.monotonic() - started < 5
    assert stopped_pids(stop_dir) == {server.pid}  # the hooks still ran


# -- listening ------------------------------------------------------------------------------------

@pytest.mark.parametrize('worker_num', [1, pytest.param(2, marks=pytest.mark.slow)])
async def test_listen_on_extra_ports_and_a_unix_socket(procs, tmp_path, worker_num):
    extra, other = free_ports(2)  # see free_port() for the small race
    sock = str(tmp_path / 'x.sock')
    server = run_basic(procs, worker_num=worker_num,
                       listen=[extra, f'127.0.0.1:{other}', sock])
    addresses = await server.serving(count=4 * worker_num)
    main = next(a for a in addresses if isinstance(a, tuple) and a[1] not in (extra, other))
    assert set(addresses) == {main, ('127.0.0.1', extra), ('127.0.0.1', other), sock}
    for port in (main[1], extra, other):
        assert await fetch_text(f'http://127.0.0.1:{port}/') == 'Hello from tests.apps.basic'
    assert await fetch_text('http://localhost/', unix=sock) == 'Hello from tests.apps.basic'
    assert os.path.exists(sock)
    await stops_cleanly(server)
    assert not os.path.exists(sock)  # the socket file is removed when the server stops


@pytest.mark.parametrize('workers', [1, 2])
async def test_busy_port_is_one_line_and_status_1(procs, workers):
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = run_basic(procs, port=port, worker_num=workers)
        assert await server.wait_exit() == 1
    lines = server.stderr.strip().splitlines()
    assert len(lines) == 1, server.stderr
    assert lines[0].endswith(f'ERROR tremolo: cannot listen on 127.0.0.1:{port}: address '
                             f'already in use (is another server listening there?)')


async def test_busy_extra_address_is_named(procs):
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        extra = taken.getsockname()[1]
        server = run_basic(procs, listen=[extra])
        assert await server.wait_exit() == 1
    assert f'cannot listen on 127.0.0.1:{extra}: address already in use' in server.stderr
    assert 'Traceback' not in server.stderr and 'serving on' not in server.stderr


async def test_live_unix_socket_is_not_taken_over(procs, tmp_path):
    sock = str(tmp_path / 'busy.sock')
    first = run_basic(procs, listen=[sock])
    await first.serving(count=2)
    second = run_basic(procs, listen=[sock])
    assert await second.wait_exit() == 1
    assert (f'cannot listen on unix:{sock}: a server is already listening on this UNIX socket'
            in second.stderr)
    assert 'Traceback' not in second.stderr
    assert await fetch_text('http://localhost/pid', unix=sock) == str(first.pid)
    await stops_cleanly(first)


# -- event loops ----------------------------------------------------------------------------------

async def test_loop_asyncio(procs):
    server = run_basic(procs, loop='asyncio')
    assert (await fetch_text(await server.url('/loop'))).startswith('asyncio.')
    await stops_cleanly(server)


async def test_loop_auto_is_asyncio_by_default(procs):
    server = run_basic(procs)
    assert (await fetch_text(await server.url('/loop'))).startswith('asyncio.')
    await stops_cleanly(server)


@pytest.mark.parametrize('options', [
    {'loop': 'uvloop'},
    {'uvloop_policy': True},  # the seed README's snippet, then app.run(...)
    pytest.param({'loop': 'uvloop', 'worker_num': 2}, marks=pytest.mark.slow),
    pytest.param({'uvloop_policy': True, 'worker_num': 2}, marks=pytest.mark.slow),
], ids=['loop=uvloop', 'uvloop-policy', 'loop=uvloop-2-workers', 'uvloop-policy-2-workers'])
@needs_uvloop
async def test_uvloop(procs, options):
    server = run_basic(procs, **options)
    workers = options.get('worker_num', 1)
    await server.serving(count=workers)
    url = await server.url('/loop')
    for _ in range(4 * workers):
        assert (await fetch_text(url)).startswith('uvloop.')
    await stops_cleanly(server)


async def test_loop_uvloop_without_uvloop_fails_before_serving(procs, tmp_path):
    script = tmp_path / 'no_uvloop.py'
    script.write_text(textwrap.dedent('''
        import sys

        sys.modules['uvloop'] = None  # as if uvloop were not installed

        from tests.apps.basic import app

        app.run('127.0.0.1', 0, worker_num=2, loop='uvloop')
    '''))
    server = procs.script(script, cwd=tmp_path)
    assert await server.wait_exit() != 0
    assert "loop='uvloop' needs uvloop: pip install uvloop" in server.stderr
    assert 'serving on' not in server.stderr
    # Once, from the main process: not once per (respawned) worker.
    assert server.stderr.count("RuntimeError: loop='uvloop' needs uvloop") == 1


# -- reloading ------------------------------------------------------------------------------------

RELOAD_APP = '''
import os

from tremolo import Tremolo

app = Tremolo()


@app.route('/')
async def index(**server):
    return 'version {version}'


@app.route('/pid')
async def pid(**server):
    return str(os.getpid())


if __name__ == '__main__':
    app.run('127.0.0.1', {port}, reload=True)
'''


@pytest.mark.slow
async def test_reload_serves_the_changed_source(procs, tmp_path):
    port = free_port()  # fixed: the restarted child must come back on the same port
    source = tmp_path / 'reloaded.py'
    source.write_text(RELOAD_APP.format(version=1, port=port))
    server = procs.script(source, cwd=tmp_path)
    await server.wait_for(r'reloader watching')
    await server.serving()
    url = f'http://127.0.0.1:{port}'
    assert await fetch_text(url + '/') == 'version 1'
    first_child = int(await fetch_text(url + '/pid'))
    assert first_child != server.pid and children_of(server.pid) == [first_child]

    before = source.stat().st_mtime
    source.write_text(RELOAD_APP.format(version=2, port=port))
    os.utime(source, (before + 2, before + 2))  # a visible change even on coarse clocks
    deadline = time.monotonic() + 15
    while True:
        try:
            if await fetch_text(url + '/', timeout=2) == 'version 2':
                break
        except (aiohttp.ClientError, asyncio.TimeoutError, AssertionError):
            pass  # restarting
        assert time.monotonic() < deadline, server.describe()
        await asyncio.sleep(0.1)
    assert 'reloaded.py changed: restarting' in server.stderr
    second_child = int(await fetch_text(url + '/pid'))
    assert second_child != first_child
    assert children_of(server.pid) == [second_child]

    # Stopping the reloader (only it) stops the server it runs.
    await stops_cleanly(server, signal.SIGTERM)


# -- logging --------------------------------------------------------------------------------------

@pytest.mark.parametrize('access_log', [True, False])
async def test_access_log(procs, access_log):
    options = {} if access_log else {'access_log': False}
    server = run_basic(procs, **options)
    await fetch_text(await server.url('/pid?x=1'))
    status, _, _ = await fetch(await server.url('/missing'))
    assert status == 404
    if access_log:
        await server.wait_for(r'tremolo\.access: ', count=2)
    await stops_cleanly(server)
    lines = [line for line in server.stderr.splitlines() if 'tremolo.access' in line]
    if not access_log:
        assert lines == []
        return
    assert len(lines) == 2
    assert f'[{server.pid}] INFO tremolo.access: 127.0.0.1:' in lines[0]
    assert lines[0].endswith(f'"GET /pid?x=1 HTTP/1.1" 200 {len(str(server.pid))}')
    assert '"GET /missing HTTP/1.1" 404 ' in lines[1]
    assert server.stdout == ''  # every log line goes to stderr


async def test_log_level_is_the_server_loggers_and_access_log_is_separate(procs):
    port = free_port()  # nothing logs the address at this level: see free_port() for the race
    server = run_basic(procs, port=port, log_level='warning')
    url = f'http://127.0.0.1:{port}/'
    deadline = time.monotonic() + 15
    while True:
        try:
            await fetch_text(url, timeout=2)
            break
        except aiohttp.ClientConnectorError:
            assert server.process.poll() is None, server.describe()
            assert time.monotonic() < deadline, server.describe()
            await asyncio.sleep(0.05)
    await server.wait_for(r'INFO tremolo\.access: ')
    await stops_cleanly(server)
    assert 'INFO tremolo:' not in server.stderr  # no 'serving on', no 'received SIGTERM'


# -- startup errors -------------------------------------------------------------------------------

BAD_PARAMETER_APP = '''
from tremolo import Tremolo

app = Tremolo()


@app.route('/users/{{user_id}}')
async def show_user(user_id, database, **server):
    return 'never'


app.run('127.0.0.1', {port}, worker_num={workers})
'''

DUPLICATE_AFTER_MOUNT_APP = '''
from tremolo import Tremolo

api = Tremolo()


@api.route('/users')
async def list_api_users(**server):
    return 'api'


app = Tremolo()


@app.route('/api/users')
async def list_users(**server):
    return 'app'


app.mount('/api', api)  # both answer GET /api/users: found when app.run compiles the app
app.run('127.0.0.1', {port}, worker_num={workers})
'''


@pytest.mark.parametrize('workers', [1, 2])
@pytest.mark.parametrize(('source', 'expected'), [
    (BAD_PARAMETER_APP, ["show_user (route '/users/{user_id}')",
                         "nothing can supply parameter 'database'"]),
    (DUPLICATE_AFTER_MOUNT_APP, ['duplicate route: GET /api/users',
                                 "handler list_api_users for route '/users'"]),
], ids=['unknown-parameter', 'duplicate-after-mount'])
async def test_registration_mistake_fails_before_binding(procs, tmp_path, source, expected,
                                                         workers):
    # The port is taken: had the server bound it before checking the application, the error
    # would be 'cannot listen on ...: address already in use'.
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        script = tmp_path / 'mistake.py'
        script.write_text(source.format(port=port, workers=workers))
        server = procs.script(script, cwd=tmp_path)
        assert await server.wait_exit() != 0
    err = server.stderr
    assert 'RegistrationError' in err
    for text in expected:
        assert text in err
    assert 'cannot listen' not in err and 'already in use' not in err
    assert 'serving on' not in err and 'started' not in err
    assert not server.group_alive()
