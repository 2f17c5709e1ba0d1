"""The examples of the seed README, run verbatim as programs on real sockets.

The snippets below are copied character for character from the README the project grew from
(``seed/000_381b65fd992b4a7d.txt`` beside the design brief). Each test writes a program made of
them to a temporary directory and runs it the way the README says (``python3 hello.py``), with
the interpreter of this test run.

Only one kind of change is made: the README's fixed ports (8000, 8001, 8002) are replaced by
ports that were free a moment ago, because a fixed port collides with whatever else runs on the
machine (``make run``, another test run, another project) and would make these tests flaky or
hit the wrong server. Each replacement is checked to change exactly one occurrence, so nothing
else in a snippet can change unnoticed. The README binds ``0.0.0.0``; the tests keep it and
connect to 127.0.0.1. The one path in the README, ``/my/folder/big.data``, is replaced by a
temporary file in the same way.
"""

from __future__ import annotations

import ast
import os
import signal
import socket
import time

import aiohttp
import pytest

from tests.apps.harness import PYTHON, Processes, ServerProcess, fetch, free_port, needs_uvloop

# -- the README, verbatim -------------------------------------------------------------------------

STREAM_HELLO = """\
@app.route('/hello')
async def hello_world(**server):
    yield b'Hello '
    yield b'world!'
"""

BIG_DATA = """\
@app.route('/my/url/big.data')
async def my_big_data(content_type='application/octet-stream', **server):
    buffer_size = server['context'].options['buffer_size']

    with open('/my/folder/big.data', 'rb') as f:
        chunk = True

        while chunk:
            chunk = f.read(buffer_size)
            yield chunk
"""

HELLO_PY = """\
from tremolo import Tremolo

app = Tremolo()

@app.route('/hello')
async def hello_world(**server):
    return 'Hello world!', 'latin-1'

if __name__ == '__main__':
    app.run('0.0.0.0', 8000, debug=True)
"""

WORKERS = """\
app.run('0.0.0.0', 8000, worker_num=2)
"""

LISTEN = """\
app.listen(8001)
app.listen(8002)

app.run('0.0.0.0', 8000)
"""

UVLOOP = """\
import asyncio
import uvloop
asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
"""

# The hello world example without its ``if __name__ == '__main__':`` block: the application
# that the Misc snippets (which call app.run / app.listen on it) are appended to.
HELLO_APP = HELLO_PY[:HELLO_PY.index("if __name__ == '__main__':")]

# Not from the README: a route added after the verbatim code to see which event loop serves.
LOOP_ROUTE = """
@app.route('/loop')
async def loop_module(loop, **server):
    return type(loop).__module__
"""


def substitute(source: str, old: str, new: object) -> str:
    """Replace the one occurrence of ``old`` (a port or a path) in ``source``."""
    assert source.count(old) == 1, f'{old!r} is not in the snippet exactly once'
    return source.replace(old, str(new))


def free_ports(count: int) -> list[int]:
    """Distinct ports that were free a moment ago on every interface (see free_port)."""
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port('0.0.0.0'))
    return sorted(ports)



def run_program(procs: Processes, tmp_path, name: str, source: str) -> ServerProcess:
    """Save ``source`` as ``name`` and run ``python3 name`` in its directory."""
    ast.parse(source)  # the composed program is valid Python
    path = tmp_path / name
    path.write_text(source)
    return procs.start([PYTHON, name], cwd=tmp_path, name=name.replace('.py', ''))


async def get(port: int, path: str, **kwargs) -> tuple[int, str, dict[str, str]]:
    return await fetch(f'http://127.0.0.1:{port}{path}', **kwargs)


async def stop(server: ServerProcess) -> None:
    server.send(signal.SIGINT)  # Ctrl-C, the way a README user stops it
    assert await server.wait_exit() == 0, server.describe()
    assert 'Traceback' not in server.stderr, server.describe()


# -- the tests ------------------------------------------------------------------------------------

async def test_hello_py(procs, tmp_path):
    [port] = free_ports(1)
    server = run_program(procs, tmp_path, 'hello.py', substitute(HELLO_PY, '8000', port))
    await server.wait_for(rf'serving on http://0\.0\.0\.0:{port}\b')
    status, text, headers = await get(port, '/hello')
    assert (status, text) == (200, 'Hello world!')
    assert headers['Content-Type'] == 'text/html; charset=latin-1'
    assert headers['Content-Length'] == '12'
    # debug=True: the server logs at DEBUG level, e.g. why it rejected a malformed request.
    with socket.create_connection(('127.0.0.1', port), timeout=10) as sock:
        sock.sendall(b'NOT HTTP AT ALL\r\n\r\n')
        assert sock.recv(100).startswith(b'HTTP/1.1 400 ')
    await server.wait_for(r'DEBUG tremolo: rejected a request from')
    await stop(server)


async def test_hello_py_without_debug_hides_debug_logs(procs, tmp_path):
    """The counterpart of the test above: without ``debug=True`` the rejection is not
    logged (so the DEBUG line above is what ``debug=True`` changed)."""
    [port] = free_ports(1)
    source = substitute(substitute(HELLO_PY, '8000', port), ', debug=True', '')
    server = run_program(procs, tmp_path, 'hello.py', source)
    await server.wait_for(rf'serving on http://0\.0\.0\.0:{port}\b')
    with socket.create_connection(('127.0.0.1', port), timeout=10) as sock:
        sock.sendall(b'NOT HTTP AT ALL\r\n\r\n')
        assert sock.recv(100).startswith(b'HTTP/1.1 400 ')
    await stop(server)
    assert 'DEBUG' not in server.stderr


async def test_streaming_examples(procs, tmp_path):
    [port] = free_ports(1)
    data = os.urandom(300_000)  # many buffer_size chunks, and a partial last one
    (tmp_path / 'big.data').write_bytes(data)
    source = (
        'from tremolo import Tremolo\n\napp = Tremolo()\n\n'
        + STREAM_HELLO + '\n'
        + substitute(BIG_DATA, '/my/folder/big.data', tmp_path / 'big.data')
        + f"\napp.run('127.0.0.1', {port})\n"
    )
    server = run_program(procs, tmp_path, 'stream.py', source)
    await server.wait_for(rf'serving on http://127\.0\.0\.1:{port}\b')
    status, text, headers = await get(port, '/hello')
    assert (status, text) == (200, 'Hello world!')
    async with aiohttp.ClientSession() as session:
        async with session.get(f'http://127.0.0.1:{port}/my/url/big.data') as response:
            assert response.status == 200
            assert response.headers['Content-Type'] == 'application/octet-stream'
            assert await response.read() == data
    await stop(server)


@pytest.mark.slow
async def test_worker_num_2(procs, tmp_path):
    [port] = free_ports(1)
    source = HELLO_APP + 'import os\n' + (
        "\n@app.route('/pid')\nasync def pid(**server):\n    return str(os.getpid())\n\n"
    ) + substitute(WORKERS, '8000', port)
    server = run_program(procs, tmp_path, 'workers.py', source)
    await server.wait_for(rf'serving on http://0\.0\.0\.0:{port}\b', count=2)
    status, text, _ = await get(port, '/hello')
    assert (status, text) == (200, 'Hello world!')
    pids: set[str] = set()
    deadline = time.monotonic() + 10
    while len(pids) < 2:  # new connections are spread over both workers
        assert time.monotonic() < deadline, pids
        status, text, _ = await get(port, '/pid')
        assert status == 200
        pids.add(text)
    assert str(server.pid) not in pids
    await stop(server)


async def test_listen_on_several_ports(procs, tmp_path):
    main, first, second = free_ports(3)
    snippet = substitute(LISTEN, '8001', first)
    snippet = substitute(snippet, '8002', second)
    snippet = substitute(snippet, '8000', main)
    server = run_program(procs, tmp_path, 'ports.py', HELLO_APP + snippet)
    for port in (main, first, second):
        await server.wait_for(rf'serving on http://0\.0\.0\.0:{port}\b')
        status, text, _ = await get(port, '/hello')
        assert (status, text) == (200, 'Hello world!')
    await stop(server)


@needs_uvloop
async def test_uvloop_policy(procs, tmp_path):
    [port] = free_ports(1)
    # The uvloop snippet first, then the hello world example with a route added before its
    # ``if __name__ == '__main__':`` block.
    main_block = HELLO_PY[len(HELLO_APP):]
    source = UVLOOP + '\n' + HELLO_APP + LOOP_ROUTE + '\n' + substitute(main_block, '8000', port)
    server = run_program(procs, tmp_path, 'fast.py', source)
    await server.wait_for(rf'serving on http://0\.0\.0\.0:{port}\b')
    status, text, _ = await get(port, '/hello')
    assert (status, text) == (200, 'Hello world!')
    status, text, _ = await get(port, '/loop')
    assert (status, text) == (200, 'uvloop')
    await stop(server)
