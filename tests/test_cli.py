"""``python -m tremolo module:app``: real processes on real sockets.

Servers are given ``--port 0`` and their address is read from the 'serving on' line of their
log, except where the test is about the port given on the command line (see
:func:`tests.apps.harness.free_port` for the small race that implies).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess

import pytest

from tests.apps.harness import (
    PYTHON,
    REPO_ROOT,
    child_env,
    fetch,
    fetch_text,
    free_port,
)
from tremolo import __version__
from tremolo.options import Options

APP = 'tests.apps.basic:app'



def run_cli(*args: str, timeout: float = 20.0, cwd=REPO_ROOT,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tremolo ARGS`` to completion (for commands that do not serve)."""
    return subprocess.run(
        [PYTHON, '-m', 'tremolo', *args], cwd=cwd, env=env or child_env(), text=True,
        capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )


async def test_serves_on_the_given_port_and_logs_it_to_stderr(procs):
    port = free_port()
    server = procs.cli(APP, '--port', str(port))
    await server.wait_for(rf'serving on http://127\.0\.0\.1:{port}\b')
    assert await fetch_text(f'http://127.0.0.1:{port}/') == 'Hello from tests.apps.basic'
    assert 'serving on' not in server.stdout  # logs go to stderr
    server.send(signal.SIGTERM)
    assert await server.wait_exit() == 0


async def test_port_zero_picks_a_free_port_and_logs_it(procs):
    server = procs.cli(APP, '--port', '0', '--host', '127.0.0.1')
    [(host, port)] = await server.serving()
    assert host == '127.0.0.1' and port != 0
    assert await fetch_text(await server.url('/')) == 'Hello from tests.apps.basic'
    server.send(signal.SIGINT)
    assert await server.wait_exit() == 0


async def test_flags_reach_the_server(procs, tmp_path):
    sock = str(tmp_path / 'cli.sock')
    server = procs.cli(APP, '--port', '0', '--loop', 'asyncio', '--listen', sock,
                       '--server-name', 'FromTheCli', '--no-access-log')
    addresses = await server.serving(count=2)
    assert sock in addresses
    status, text, headers = await fetch(await server.url('/loop'))
    assert status == 200 and text.startswith('asyncio.')
    assert headers['Server'] == 'FromTheCli'
    assert await fetch_text('http://localhost/pid', unix=sock) == str(server.pid)
    server.send(signal.SIGTERM)
    assert await server.wait_exit() == 0
    assert 'tremolo.access' not in server.stderr


def test_help_lists_every_option():
    result = run_cli('--help')
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for field in dataclasses.fields(Options):
        if not field.metadata.get('cli', True):
            continue
        flag = '--' + field.name.replace('_', '-')
        assert flag in out, f'{flag} missing from --help'
        if field.type == 'bool':
            assert '--no-' + field.name.replace('_', '-') in out
    for flag in ('--no-access-log', '--ssl-certfile', '--ssl-keyfile', '--version', 'app'):
        assert flag in out


def test_version():
    result = run_cli('--version')
    assert result.returncode == 0
    assert __version__ in result.stdout


@pytest.mark.parametrize(('args', 'message'), [
    (['--loop', 'fast'], "argument --loop: invalid choice: 'fast'"),
    (['--log-level', 'loud'], 'argument --log-level: invalid choice'),
    (['--port', 'eighty'], "argument --port: invalid int value: 'eighty'"),
    (['--port', '70000'], "option 'port' must be between 0 and 65535, not 70000"),
    (['--worker-num', '0'], "option 'worker_num' must be at least 1"),
    (['--graceful-shutdown-timeout', '-1'], "'graceful_shutdown_timeout' must be positive"),
    (['--listen', 'not:an:address'], "cannot read the address 'not:an:address'"),
    (['--no-such-flag'], 'unrecognized arguments: --no-such-flag'),
    (['--download-rate', '-5'], "option 'download_rate' must be at least 0, not -5"),
    (['--rate-scope', 'planet'], "argument --rate-scope: invalid choice: 'planet'"),
], ids=lambda value: value if isinstance(value, str) else ' '.join(value))
def test_bad_option_value_is_a_usage_error(args, message):
    result = run_cli(APP, '--port', '0', *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert 'usage: python -m tremolo' in result.stderr
    assert 'Traceback' not in result.stderr


@pytest.mark.parametrize(('spec', 'message'), [
    ('tests.apps.no_such_module:app', "cannot import module 'tests.apps.no_such_module'"),
    ('no_such_package.module:app', "cannot import module 'no_such_package.module'"),
    ('tests.apps.basic:no_such_app', "module 'tests.apps.basic' has no attribute "
                                     "'no_such_app'"),
    ('tests.apps.basic:index', 'not a Tremolo application'),
    (':app', "cannot read the application ':app'"),
])
def test_bad_application_is_a_clear_error(spec, message):
    result = run_cli(spec, '--port', '0')
    assert result.returncode != 0
    assert message in result.stderr
    assert 'Traceback' not in result.stderr
    assert 'serving on' not in result.stderr


def test_missing_application_argument():
    result = run_cli()
    assert result.returncode == 2
    assert 'the following arguments are required: app' in result.stderr


def test_key_file_without_certificate():
    result = run_cli(APP, '--port', '0', '--ssl-keyfile', 'key.pem')
    assert result.returncode != 0
    assert '--ssl-keyfile (TREMOLO_SSL_KEYFILE) needs --ssl-certfile' in result.stderr


def test_error_inside_the_module_keeps_its_traceback(tmp_path):
    """Only a *missing* module is a one-line error: a broken one shows where it broke."""
    (tmp_path / 'broken_app.py').write_text('import no_such_dependency_of_the_app\n')
    result = subprocess.run(
        [PYTHON, '-m', 'tremolo', 'broken_app:app', '--port', '0'], cwd=tmp_path,
        env=child_env(), text=True, capture_output=True, timeout=20, stdin=subprocess.DEVNULL,
    )
    assert result.returncode != 0
    assert 'Traceback' in result.stderr
    assert "No module named 'no_such_dependency_of_the_app'" in result.stderr


async def test_working_directory_is_importable(procs, tmp_path):
    """``python -m tremolo hello:app`` finds ``hello.py`` in the working directory."""
    (tmp_path / 'hello_cwd.py').write_text(
        'from tremolo import Tremolo\n\napp = Tremolo()\n\n\n'
        "@app.route('/hello')\nasync def hello(**server):\n    return 'from cwd'\n"
    )
    server = procs.cli('hello_cwd', '--port', '0', cwd=tmp_path)  # the attribute defaults to app
    assert await fetch_text(await server.url('/hello')) == 'from cwd'
    server.send(signal.SIGTERM)
    assert await server.wait_exit() == 0


async def test_access_log_on_by_default_and_off_with_the_flag(procs):
    on = procs.cli(APP, '--port', '0')
    off = procs.cli(APP, '--port', '0', '--no-access-log')
    for server in (on, off):
        await fetch_text(await server.url('/pid?from=test'))
    await on.wait_for(r'tremolo\.access: 127\.0\.0\.1:\d+ - "GET /pid\?from=test HTTP/1\.1" 200')
    for server in (on, off):
        server.send(signal.SIGTERM)
        assert await server.wait_exit() == 0
    assert 'tremolo.access' not in off.stderr
    assert on.stderr.count('tremolo.access') == 1


@pytest.mark.slow
async def test_reload_restarts_the_command_on_a_change(procs, tmp_path):
    """``--reload`` re-runs ``python -m tremolo ...`` in a child and restarts it on a change."""
    module = tmp_path / 'reloaded_cli_app.py'
    source = ('from tremolo import Tremolo\n\napp = Tremolo()\n\n\n'
              "@app.route('/')\nasync def index(**server):\n    return 'version {}'\n")
    module.write_text(source.format(1))
    port = free_port()  # fixed: the restarted child must come back on the same port
    server = procs.cli('reloaded_cli_app:app', '--port', str(port), '--reload', cwd=tmp_path)
    await server.wait_for(rf'serving on http://127\.0\.0\.1:{port}\b')
    url = f'http://127.0.0.1:{port}/'
    assert await fetch_text(url) == 'version 1'
    before = module.stat().st_mtime
    module.write_text(source.format(2))
    os.utime(module, (before + 2, before + 2))
    await server.wait_for(rf'serving on http://127\.0\.0\.1:{port}\b', count=2)
    assert await fetch_text(url) == 'version 2'
    server.send(signal.SIGTERM)
    assert await server.wait_exit() == 0
    assert not server.group_alive()


# -- the application as a file ------------------------------------------------------------------

FILE_APP = (
    'from neighbour import GREETING\n'  # a module next to the file, as `python app.py` finds it
    'from tremolo import Tremolo\n\n'
    'app = Tremolo()\nweb = app\n\n\n'
    "@app.route('/')\nasync def index():\n    return GREETING + ' ' + __name__\n"
)


@pytest.fixture
def app_file(tmp_path):
    folder = tmp_path / 'project' / 'site'
    folder.mkdir(parents=True)
    (folder / 'neighbour.py').write_text("GREETING = 'hello from a file'\n")
    (folder / 'site_app.py').write_text(FILE_APP)
    return folder / 'site_app.py'


@pytest.mark.parametrize('spec', ['project/site/site_app.py', 'project/site/site_app.py:web',
                                  'absolute'])
async def test_the_application_may_be_a_file(procs, tmp_path, app_file, spec):
    if spec == 'absolute':
        spec = f'{app_file}:app'
    server = procs.cli(spec, '--port', '0', cwd=tmp_path)
    assert await fetch_text(await server.url('/')) == 'hello from a file site_app'
    server.send(signal.SIGTERM)
    assert await server.wait_exit() == 0


@pytest.mark.parametrize(('spec', 'message'), [
    ('project/site/missing.py', "cannot load the application 'project/site/missing.py': no "
                                "file 'project/site/missing.py'"),
    ('project/site/site_app.py:nope', "file 'project/site/site_app.py' has no attribute "
                                      "'nope'"),
    ('project/site/neighbour.py', "file 'project/site/neighbour.py' has no attribute 'app'"),
])
def test_a_bad_application_file_is_one_line(tmp_path, app_file, spec, message):
    result = run_cli(spec, '--port', '0', cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == f'error: {message}'


# -- environment variables ----------------------------------------------------------------------

async def test_options_from_environment_variables(procs):
    # Variables fill what no flag says; a flag wins (the variable's host is not even local).
    env = child_env(TREMOLO_SERVER_NAME='FromTheEnvironment', TREMOLO_LOOP='asyncio',
                    TREMOLO_ACCESS_LOG='false', TREMOLO_HOST='203.0.113.7',
                    TREMOLO_THREAD_POOL_SIZE='2', TREMOLO_PORT='0')
    server = procs.cli(APP, '--host', '127.0.0.1', env=env)
    [(host, _)] = await server.serving()
    assert host == '127.0.0.1'
    status, text, headers = await fetch(await server.url('/loop'))
    assert status == 200 and text.startswith('asyncio.')
    assert headers['Server'] == 'FromTheEnvironment'
    server.send(signal.SIGTERM)
    assert await server.wait_exit() == 0
    assert 'tremolo.access' not in server.stderr


@pytest.mark.parametrize(('variables', 'message'), [
    ({'TREMOLO_PORT': 'eighty'}, "TREMOLO_PORT: option 'port' must be an integer, not 'eighty'"),
    ({'TREMOLO_WORKER_NUM': '0'}, "TREMOLO_WORKER_NUM: option 'worker_num' must be at least 1"),
    ({'TREMOLO_DEBUG': 'maybe'}, "TREMOLO_DEBUG: option 'debug' must be true or false"),
    ({'TREMOLO_LOOP': 'fast'}, "TREMOLO_LOOP: option 'loop' must be one of"),
    ({'TREMOLO_MAX_BODY_SIZE': '1M'},
     "TREMOLO_MAX_BODY_SIZE: option 'max_body_size' must be an integer, not '1M'"),
    ({'TREMOLO_LISTEN': 'not:an:address'}, "cannot read the address 'not:an:address'"),
], ids=lambda value: value if isinstance(value, str) else ' '.join(value))
def test_a_bad_environment_variable_is_a_usage_error(variables, message):
    result = run_cli(APP, '--port', '0', env=child_env(**variables))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert 'Traceback' not in result.stderr


def test_the_help_names_the_environment_variables():
    result = run_cli('--help')
    assert 'TREMOLO_PORT=8001' in ' '.join(result.stdout.split())
    assert '--thread-pool-size' in result.stdout
