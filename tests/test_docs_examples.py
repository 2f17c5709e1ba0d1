"""The examples of the documentation do what the pages say they do.

Each file under ``examples/`` is included verbatim in a page. Here each one is imported (or,
for the README's examples that open a file or bind fixed ports, executed with just that path or
port substituted) and exercised: in process with :class:`tremolo.testing.TestClient`, and for
the examples about running a server, as a real process on real sockets.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import importlib
import json
import logging
import os
import re
import runpy
import signal
import time
import types
import uuid
from pathlib import Path

import aiohttp
import pytest

import tremolo.server.serve
from tests.apps.harness import (
    PYTHON,
    REPO_ROOT,
    child_env,
    fetch,
    fetch_text,
    free_ports,
)
from tests.apps.redis_server import redis_server  # noqa: F401 - a fixture
from tremolo import Options
from tremolo.testing import TestClient, serve
from tremolo.testing.client import build_request

EXAMPLES = REPO_ROOT / 'examples'
DOCS = REPO_ROOT / 'docs'


def example(name: str) -> types.ModuleType:
    """The module ``examples.NAME``."""
    return importlib.import_module(f'examples.{name}')


def source(name: str) -> str:
    return (EXAMPLES / f'{name}.py').read_text()


def substituted(name: str, *replacements: tuple[str, str]) -> str:
    """The source of an example with each ``(old, new)`` replaced, each exactly once."""
    text = source(name)
    for old, new in replacements:
        assert text.count(old) == 1, f'{old!r} is not in examples/{name}.py exactly once'
        text = text.replace(old, new)
    return text


def module_from(text: str, name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(text, f'<{name}>', 'exec'), module.__dict__)
    return module



def tremolo_messages(caplog, names) -> list[str]:
    """The messages of the ``tremolo`` logger that are among ``names``, in order."""
    return [record.getMessage() for record in caplog.records
            if record.name == 'tremolo' and record.getMessage() in names]


# -- the README's examples ---------------------------------------------------------------------

async def test_hello_world_returns_latin_1():
    app = example('hello').app
    async with TestClient(app) as client:
        response = await client.get('/hello')
        assert response.status == 200
        assert response.body == b'Hello world!'
        assert response.headers['content-type'] == 'text/html; charset=latin-1'
        assert response.headers['content-length'] == '12'
        head = await client.head('/hello')
        assert head.status == 200 and head.body == b''
        assert head.headers['content-length'] == '12'


@pytest.mark.slow
async def test_hello_world_runs_as_a_script(procs, tmp_path):
    script = tmp_path / 'hello.py'
    script.write_text(substituted('hello', ("'0.0.0.0', 8000", "'127.0.0.1', 0")))
    server = procs.script(script, cwd=tmp_path)
    assert await fetch_text(await server.url('/hello')) == 'Hello world!'
    await server.wait_for(r'"GET /hello HTTP/1\.1" 200 12')  # the access log
    server.send(signal.SIGTERM)
    assert await server.wait_exit() == 0


async def test_yield_streams_each_piece():
    async with TestClient(example('streaming').app) as client:
        response = await client.get('/hello')
    assert response.status == 200
    assert response.headers['transfer-encoding'] == 'chunked'
    assert response.chunks == [b'Hello ', b'world!']


@pytest.fixture
def big_data(tmp_path):
    """The README's big-file example, reading a real temporary file instead of its path."""
    data = os.urandom(40_000)
    path = tmp_path / 'big.data'
    path.write_bytes(data)
    text = substituted('streaming', ("'/my/folder/big.data'", repr(str(path))))
    return module_from(text, 'big_data_example').app, data


async def test_big_data_is_sent_one_buffer_at_a_time(big_data):
    app, data = big_data
    async with TestClient(app) as client:
        response = await client.get('/my/url/big.data')
    assert response.status == 200
    assert response.headers['content-type'] == 'application/octet-stream'
    assert response.body == data
    assert [len(chunk) for chunk in response.chunks] == [16384, 16384, 40_000 - 2 * 16384]


async def test_big_data_follows_the_buffer_size_option(big_data):
    app, data = big_data
    async with TestClient(app, buffer_size=4096) as client:
        response = await client.get('/my/url/big.data')
        head = await client.head('/my/url/big.data')
    assert response.body == data
    assert {len(chunk) for chunk in response.chunks[:-1]} == {4096}
    assert len(response.chunks) == 10
    assert head.status == 200 and head.body == b''


@pytest.mark.slow
async def test_workers_share_one_port(procs, tmp_path):
    script = tmp_path / 'workers.py'
    script.write_text(substituted('workers', ("'0.0.0.0', 8000", "'127.0.0.1', 0")))
    server = procs.script(script, cwd=tmp_path)
    addresses = await server.serving(count=2)
    assert len(set(addresses)) == 1  # two workers, one address
    url = await server.url('/')
    pids = {(await fetch_text(url)).split()[-1] for _ in range(4)}
    assert pids and all(pid.isdigit() and int(pid) != server.pid for pid in pids)
    server.send(signal.SIGTERM)
    assert await server.wait_exit() == 0
    assert 'received SIGTERM: stopping the workers' in server.stderr


@pytest.mark.slow
async def test_listen_serves_every_port(procs, tmp_path):
    first, second, main = free_ports(3)
    script = tmp_path / 'listen.py'
    script.write_text(substituted(
        'listen', ('app.listen(8001)', f'app.listen({first})'),
        ('app.listen(8002)', f'app.listen({second})'),
        ("'0.0.0.0', 8000", f"'127.0.0.1', {main}"),
    ))
    server = procs.script(script, cwd=tmp_path)
    assert len(await server.serving(count=3)) == 3
    for port in (main, first, second):
        assert await fetch_text(f'http://127.0.0.1:{port}/') == f'You reached port {port}\n'
    server.send(signal.SIGTERM)
    assert await server.wait_exit() == 0


@pytest.mark.slow
async def test_a_dispatcher_of_its_own_is_served(procs, tmp_path):
    script = tmp_path / 'dispatcher.py'
    script.write_text(substituted('dispatcher', ("port=8000", "port=0")))
    server = procs.script(script, cwd=tmp_path)
    url = await server.url('/anything')
    assert await fetch_text(url) == 'GET /anything: request 1, 0 bytes of body\n'
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=b'x' * 5000) as response:
            assert response.headers['Content-Type'] == 'text/plain; charset=utf-8'
            assert await response.text() == 'POST /anything: request 2, 5000 bytes of body\n'
    server.send(signal.SIGTERM)
    assert await server.wait_exit() == 0


@pytest.mark.slow
async def test_uvloop_policy_is_honoured(procs, tmp_path):
    try:
        importlib.import_module('uvloop')
    except ImportError:  # stand in for uvloop: a policy whose loop class is uvloop.Loop
        (tmp_path / 'uvloop.py').write_text(
            'import asyncio\n\n\n'
            'class Loop(asyncio.SelectorEventLoop):\n'
            '    pass\n\n\n'
            'class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):\n'
            '    def new_event_loop(self):\n'
            '        return Loop()\n'
        )
    script = tmp_path / 'with_uvloop.py'
    script.write_text(substituted('with_uvloop', ("'127.0.0.1', 8000", "'127.0.0.1', 0")))
    server = procs.script(script, cwd=tmp_path, env=child_env(
        PYTHONPATH=f'{tmp_path}{os.pathsep}{REPO_ROOT}'
    ))
    assert await fetch_text(await server.url('/')) == 'Running on uvloop.Loop\n'
    server.send(signal.SIGTERM)
    assert await server.wait_exit() == 0


def run_as_main(monkeypatch, name: str) -> list[Options]:
    """Run ``examples/NAME.py`` as a script, catching the options it serves with."""
    served: list[Options] = []
    monkeypatch.setattr(tremolo.server.serve, 'serve',
                        lambda options, make_dispatcher, reimport=None: served.append(options))
    runpy.run_path(str(EXAMPLES / f'{name}.py'), run_name='__main__')
    assert len(served) == 1
    return served


def test_run_calls_of_the_examples_are_valid(monkeypatch):
    [hello] = run_as_main(monkeypatch, 'hello')
    assert (hello.host, hello.port, hello.debug, hello.log_level) == ('0.0.0.0', 8000, True,
                                                                       'debug')
    [workers] = run_as_main(monkeypatch, 'workers')
    assert (workers.host, workers.port, workers.worker_num) == ('0.0.0.0', 8000, 2)
    [listen] = run_as_main(monkeypatch, 'listen')
    assert listen.listen == [8001, 8002] and listen.port == 8000
    [options] = run_as_main(monkeypatch, 'options')
    assert (options.worker_num, options.max_body_size, options.access_log) == (
        4, 1024 * 1024, False)
    [unix] = run_as_main(monkeypatch, 'unix_socket')
    assert unix.listen == ['/run/tremolo/app.sock'] and unix.worker_num == 4
    [proxied] = run_as_main(monkeypatch, 'behind_proxy')
    assert proxied.trusted_proxies == ['unix', '127.0.0.1']
    assert proxied.listen == ['/run/tremolo/app.sock']
    [limits] = run_as_main(monkeypatch, 'limits')
    assert (limits.max_connections, limits.max_connections_per_ip, limits.handler_timeout,
            limits.min_data_rate, limits.graceful_shutdown_timeout) == (10_000, 100, 60, 240, 30)


def test_operations_example_runs_with_valid_options(monkeypatch):
    [operations] = run_as_main(monkeypatch, 'operations')
    assert (operations.worker_num, operations.access_log_format) == (4, 'json')
    assert (operations.readiness_path, operations.liveness_path) == ('/ready', '/live')
    assert operations.supervised and operations.max_worker_memory == 512 * 1024 * 1024


async def test_operations_example_serves_metrics_and_health():
    from prometheus_client.parser import text_string_to_metric_families

    async with TestClient(example('operations').app, readiness_path='/ready') as client:
        assert (await client.get('/orders/3')).json() == {'order': 3}
        assert (await client.get('/ready')).text == 'ready'
        text = (await client.get('/metrics')).text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    [sample] = [s for s in families['tremolo_http_requests'].samples
                if s.labels.get('route') == '/orders/{id:int}']
    assert sample.value == 1 and sample.labels == {'route': '/orders/{id:int}',
                                                   'method': 'GET', 'status': '200'}


async def test_tracing_example_makes_a_span_per_request():
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    tracing = example('tracing')
    exporter = InMemorySpanExporter()  # next to the example's console exporter
    tracing.provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with TestClient(tracing.app) as client:
        assert (await client.get('/orders/5')).json() == {'order': 5}
    names = [span.name for span in exporter.get_finished_spans()]
    assert names == ['load order', 'GET /orders/{id:int}']


def test_logging_json_example_configures_the_access_log(tmp_path, monkeypatch):
    import logging

    from tremolo.server.logs import apply_log_config

    monkeypatch.chdir(tmp_path)  # its access.log is relative
    loggers = {name: logging.getLogger(name) for name in ('tremolo', 'tremolo.access')}
    saved = {name: (lg.handlers[:], lg.level, lg.propagate) for name, lg in loggers.items()}
    try:
        apply_log_config(str(EXAMPLES / 'logging.json'))
        access = loggers['tremolo.access']
        assert not access.propagate and access.level == logging.INFO
        assert access.handlers[0].baseFilename == str(tmp_path / 'access.log')
    finally:
        for name, (handlers, level, propagate) in saved.items():
            for handler in loggers[name].handlers:
                if handler not in handlers:
                    handler.close()
            loggers[name].handlers[:] = handlers
            loggers[name].setLevel(level)
            loggers[name].propagate = propagate


async def test_limits_example_cancels_a_handler_that_runs_too_long():
    async with TestClient(example('limits').app, handler_timeout=0.01) as client:
        assert (await client.get('/')).text == 'Hello!'
        connection = client.connect()
        connection.send(b'GET /report HTTP/1.1\r\nHost: t\r\n\r\n')
        await asyncio.sleep(0.03)
        client.state.sweep()  # what the server does every second
        response = await connection.read_response()
    assert (response.status, response.text) == (503, 'Service Unavailable')


async def test_deployment_examples_in_process():
    async with TestClient(example('workers').app) as client:
        workers = await client.get('/')
    async with TestClient(example('listen').app) as client:
        listen = await client.get('/')  # the test client's server address is port 8000
    async with TestClient(example('unix_socket').app) as client:
        proxied = await client.get('/', headers={'X-Forwarded-For': '203.0.113.7'})
    async with TestClient(example('logging_config').app) as client:
        hello = await client.get('/hello')
    assert workers.text == f'Served by the worker with pid {os.getpid()}\n'
    assert listen.text == 'You reached port 8000\n'
    assert proxied.text == "Hello 203.0.113.7 (via ('127.0.0.1', 8000))\n"
    assert hello.text == 'Hello world!'


async def test_behind_proxy_example_trusts_only_its_proxy():
    app = example('behind_proxy').app
    headers = {'X-Forwarded-For': '6.6.6.6, 203.0.113.7', 'X-Forwarded-Proto': 'https',
               'X-Forwarded-Host': 'example.com'}
    async with TestClient(app, trusted_proxies=['unix', '127.0.0.1']) as client:
        proxied = (await client.get('/', headers=headers)).json()
        direct = client.connect(peer=('198.51.100.1', 5000))
        spoofed = (await direct.request('GET', '/', headers=headers)).json()
        await direct.close()
    assert proxied == {'client': ['203.0.113.7', 0], 'scheme': 'https',
                       'url': 'https://example.com/', 'proxy': ['127.0.0.1', 40000]}
    assert spoofed['client'] == ['198.51.100.1', 5000] and spoofed['scheme'] == 'http'


def test_systemd_unit_runs_a_valid_command_line():
    unit = (EXAMPLES / 'tremolo.service').read_text()
    [command] = re.findall(r'^ExecStart=(.*)$', unit, re.M)
    words = command.split()
    assert words[1:3] == ['-m', 'tremolo']
    from tremolo.cli import build_parser, options_from_args

    options = Options.from_kwargs(**options_from_args(build_parser().parse_args(words[3:])))
    assert options.listen == ['/run/tremolo/app.sock']
    assert options.trusted_proxies == ['unix'] and options.worker_num == 4
    assert re.search(r'^RuntimeDirectory=tremolo$', unit, re.M)
    assert re.search(r'^ExecReload=/bin/kill -HUP \$MAINPID$', unit, re.M)


# -- handlers and streaming --------------------------------------------------------------------

async def test_results_table():
    async with TestClient(example('handlers').app) as client:
        bytes_ = await client.get('/bytes')
        text = await client.get('/text')
        latin = await client.get('/latin')
        json_ = await client.get('/json')
        list_ = await client.get('/list')
        nothing = await client.get('/nothing')
    assert (bytes_.body, bytes_.headers['content-length']) == (b'raw bytes', '9')
    assert text.body == 'Grüße'.encode() and text.text == 'Grüße'
    assert text.headers['content-type'] == 'text/html; charset=utf-8'
    assert latin.body == 'Grüße'.encode('latin-1') and latin.text == 'Grüße'
    assert latin.headers['content-type'] == 'text/html; charset=latin-1'
    assert json_.json() == {'name': 'Tremolo', 'streaming': True}
    assert json_.headers['content-type'] == 'application/json'
    assert list_.json() == [1, 2, 3] and list_.headers['content-type'] == 'application/json'
    assert (nothing.status, nothing.body, nothing.headers['content-length']) == (200, b'', '0')


async def test_streaming_handlers():
    async with TestClient(example('handlers').app) as client:
        countdown = await client.get('/countdown')
        lines = await client.get('/lines')
        manual = await client.get('/manual')
    assert countdown.chunks == [b'3...\n', b'2...\n', b'1...\n', b'liftoff!\n']
    assert countdown.headers['cache-control'] == 'no-store'
    assert countdown.headers['content-type'] == 'text/plain; charset=utf-8'
    assert lines.chunks == [b'line 0\n', b'line 1\n', b'line 2\n']
    assert manual.status == 202
    assert manual.chunks == [b'first, ', b'second, ', b'last\n']
    assert manual.headers['content-type'] == 'text/plain; charset=utf-8'


async def test_sync_handler_runs_in_a_thread():
    async with TestClient(example('handlers').app) as client:
        response = await client.get('/blocking')
    assert response.text == 'GET /blocking done in a thread\n'


async def test_head_sends_the_head_only():
    async with TestClient(example('handlers').app) as client:
        whole = await client.head('/bytes')
        streamed = await client.head('/countdown')
    assert (whole.status, whole.body, whole.headers['content-length']) == (200, b'', '9')
    assert (streamed.status, streamed.body) == (200, b'')
    assert streamed.headers['cache-control'] == 'no-store'


async def test_request_and_response_helpers():
    async with TestClient(example('handlers').app) as client:
        response = await client.get(
            '/visits?tag=a&tag=b', headers={'Cookie': 'visits=4', 'User-Agent': 'curl/8'}
        )
    assert response.json() == {
        'visits': 5, 'method': 'GET', 'path': '/visits', 'tags': ['a', 'b'],
        'user_agent': 'curl/8', 'url': 'http://testserver/visits?tag=a&tag=b',
        'client': '127.0.0.1',
    }
    assert response.cookies == {'visits': '5'}
    assert 'Max-Age=3600; Path=/; HttpOnly; SameSite=Lax' in response.headers['set-cookie']


async def test_reading_the_request_body():
    multipart = (
        b'--XyZ\r\nContent-Disposition: form-data; name="title"\r\n\r\nNotes\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="attachment"; filename="a.txt"\r\n'
        b'Content-Type: text/plain\r\n\r\nfile content\r\n--XyZ--\r\n'
    )
    async with TestClient(example('request_body').app) as client:
        echo = await client.post('/echo', body=b'\x00\x01 binary')
        upload = await client.post('/upload', body=b'x' * 1_000_000, chunked=True)
        read_json = await client.post('/json', json={'a': [1, 2]})
        bad_json = await client.post('/json', body='{not json')
        text = await client.post('/text', body='Grüße'.encode('latin-1'),
                                 headers={'Content-Type': 'text/plain; charset=latin-1'})
        form = await client.post('/form', body='name=Ada&tag=x&tag=y', headers={
            'Content-Type': 'application/x-www-form-urlencoded'})
        files = await client.post('/form', body=multipart, headers={
            'Content-Type': 'multipart/form-data; boundary=XyZ'})
        no_form = await client.post('/form', body='plain', headers={'Content-Type': 'text/plain'})
    assert echo.body == b'\x00\x01 binary'
    assert echo.headers['content-type'] == 'application/octet-stream'
    assert upload.json() == {'received': 1_000_000}
    assert read_json.json() == {'you sent': {'a': [1, 2]}}
    assert bad_json.status == 400
    assert text.text == '5 characters'
    assert form.json() == {'fields': {'name': 'Ada', 'tag': 'x'}, 'tags': ['x', 'y'], 'files': {}}
    assert files.json() == {'fields': {'title': 'Notes'}, 'tags': [],
                            'files': {'attachment': [['a.txt', 12]]}}
    assert no_form.status == 415


async def test_route_body_limit():
    async with TestClient(example('request_body').app) as client:
        small = await client.post('/comment', body=b'x' * 1024)
        big = await client.post('/comment', body=b'x' * 1025)
        big_streamed = await client.post('/comment', body=b'x' * 2000, chunked=True)
        over_server_limit = await client.post('/echo', body=b'x' * (10 * 1024 * 1024 + 1))
    assert small.text == 'Thanks for 1024 bytes of comment'
    assert big.status == 413 and big_streamed.status == 413
    assert over_server_limit.status == 413


# -- uploads -----------------------------------------------------------------------------------

def multipart_body(boundary: str, *parts: tuple[str, str | None, bytes]) -> bytes:
    out = b''
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename else '')
        out += f'--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n'.encode()
        out += content + b'\r\n'
    return out + f'--{boundary}--\r\n'.encode()


async def test_upload_to_disk(monkeypatch, tmp_path):
    module = example('upload_to_disk')
    monkeypatch.setattr(module, 'UPLOAD_DIR', tmp_path / 'uploads')
    content = os.urandom(3 * 1024 * 1024) + b'\r\n--not-the-boundary\r\n'
    body = multipart_body('b0undary', ('title', None, 'Grüße'.encode()),
                          ('file', '../../etc/passwd', content))
    headers = {'Content-Type': 'multipart/form-data; boundary=b0undary'}
    async with TestClient(module.app) as client:
        upload = await client.post('/upload', body=body, headers=headers, chunked=True)
        checksum = await client.post('/checksum', body=body, headers=headers)
        broken = await client.post('/upload', body=body[:-100], headers=headers)
    result = upload.json()
    assert result['fields'] == {'title': 'Grüße'}
    [saved] = result['files']
    assert (saved['field'], saved['filename'], saved['size']) == (
        'file', '../../etc/passwd', len(content))
    assert (tmp_path / 'uploads' / saved['stored_as']).read_bytes() == content
    assert checksum.json()['file'] == {'size': len(content),
                                       'sha256': hashlib.sha256(content).hexdigest()}
    assert broken.status == 400
    assert len(list((tmp_path / 'uploads').iterdir())) == 1  # the partial file was removed


# -- server-sent events ------------------------------------------------------------------------

async def test_sse_notifications_in_process():
    module = example('sse_notifications')
    async with TestClient(module.app) as client:
        connection = client.connect()
        connection.send(build_request('GET', '/events'))
        head = await connection.receive()
        assert b'text/event-stream; charset=utf-8' in head and b'retry: 3000\n\n' in head
        first = (await client.post('/notify', json='hello')).json()['id']
        event = await connection.receive()
        assert f'event: notification\nid: {first}\ndata: hello\n\n'.encode() in event
        await connection.close()
        for _ in range(100):  # the handler is cancelled, and unsubscribes
            if module.broadcast.subscribers('notifications') == 1:  # the history's own
                break
            await asyncio.sleep(0.01)
        assert module.broadcast.subscribers('notifications') == 1
        second = (await client.post('/notify', json={'n': 2})).json()['id']
        # A client that reconnects after the first event gets the one it missed.
        again = client.connect()
        again.send(build_request('GET', '/events', headers={'Last-Event-ID': first}))
        received = b''
        while f'id: {second}'.encode() not in received:
            received += await again.receive()
        assert f'event: notification\nid: {second}\ndata: {{"n":2}}\n\n'.encode() in received
        assert f'id: {first}\n'.encode() not in received
        countdown = await client.get('/countdown')
        page = await client.get('/')
    assert countdown.body == (b'event: tick\ndata: 3\n\nevent: tick\ndata: 2\n\n'
                              b'event: tick\ndata: 1\n\nevent: done\ndata: liftoff\n\n')
    assert b"new EventSource('/events')" in page.body


async def test_sse_notifications_over_a_socket():
    module = example('sse_notifications')
    async with serve(module.app) as server, aiohttp.ClientSession() as session:
        async with session.get(server.url + '/events') as events:
            assert await events.content.readline() == b'retry: 3000\n'
            assert await events.content.readline() == b'\n'
            for message in ('first', 'second'):
                async with session.post(server.url + '/notify', json=message) as response:
                    event_id = (await response.json())['id']
                lines = [await events.content.readline() for _ in range(4)]
                assert lines == [b'event: notification\n', f'id: {event_id}\n'.encode(),
                                 f'data: {message}\n'.encode(), b'\n']


# -- routing -----------------------------------------------------------------------------------

async def test_static_and_parameter_routes():
    order_id = uuid.uuid4()
    async with TestClient(example('routing').app) as client:
        assert (await client.get('/')).text == 'Home\n'
        assert (await client.get('/about')).text == 'About\n'
        assert (await client.get('/about/')).status == 404
        assert (await client.get('/user/Ada%20Lovelace')).text == 'Hello, Ada Lovelace\n'
        assert (await client.get('/item/42')).json() == {'item_id': 42}
        assert (await client.get('/item/abc')).status == 404
        assert (await client.get('/scale/1.25')).json() == {'doubled': 2.5}
        assert (await client.get(f'/order/{order_id.hex}')).json() == {'order': str(order_id)}
        assert (await client.get('/files/docs/a/b.md')).json() == {'file': 'docs/a/b.md'}
        assert (await client.get('/archive/2024/05')).json() == {'year': '2024', 'month': '05'}
        assert (await client.get('/archive/24/05')).status == 404


async def test_methods_405_and_head():
    async with TestClient(example('routing').app) as client:
        listed = await client.get('/articles')
        created = await client.post('/articles', json={'title': 'Streams'})
        refused = await client.put('/articles')
        deleted = await client.delete('/articles/3')
        head = await client.head('/articles')
        view_refused = await client.patch('/books/1')
    assert listed.json() == {'articles': []}
    assert (created.status, created.json()) == (201, {'created': 'Streams'})
    assert refused.status == 405 and refused.headers['allow'] == 'GET, HEAD, POST'
    assert (deleted.status, deleted.body) == (204, b'')
    assert (head.status, head.body) == (200, b'')
    assert view_refused.status == 405
    assert view_refused.headers['allow'] == 'DELETE, GET, HEAD, PUT'


async def test_class_based_view():
    async with TestClient(example('routing').app) as client:
        got = await client.get('/books/7')
        put = await client.put('/books/7', json={'title': 'Flow'})
        deleted = await client.delete('/books/7')
    assert got.json() == {'id': 7, 'title': 'Book 7'}
    assert put.json() == {'id': 7, 'title': 'Flow'}
    assert deleted.status == 204


async def test_mount_scopes_its_middleware():
    async with TestClient(example('routing').app) as client:
        refused = await client.get('/admin/dashboard')
        allowed = await client.get('/admin/dashboard', headers={'X-Role': 'admin'})
        elsewhere = await client.get('/about')
    assert (refused.status, refused.text) == (403, 'Admins only\n')
    assert (allowed.status, allowed.text) == (200, 'Admin dashboard\n')
    assert elsewhere.status == 200


async def test_url_for():
    app = example('routing').app
    async with TestClient(app) as client:
        links = (await client.get('/links')).json()
    assert links == {
        'about': '/about', 'user': '/user/Ada%20Lovelace', 'file': '/files/docs/guide.md',
        'book': '/books/7', 'dashboard': '/admin/dashboard',
    }
    with pytest.raises(KeyError):
        app.url_for('nowhere')
    with pytest.raises(KeyError):
        app.url_for('user')  # a parameter is missing


# -- injection ---------------------------------------------------------------------------------

async def test_server_names_and_path_parameters():
    async with TestClient(example('injection').app) as client:
        whoami = await client.get('/whoami/ada')
        everything = await client.get('/everything/ada')
    assert whoami.json() == {
        'username': 'ada', 'path': '/whoami/ada', 'app': 'tremolo',
        'worker_globals': ['sessions_closed'], 'max_body_size': 10 * 1024 * 1024,
    }
    assert whoami.headers['x-loop'].endswith('EventLoop')
    assert everything.json() == ['app', 'context', 'globals', 'logger', 'loop', 'request',
                                 'response', 'telemetry', 'username', 'websocket']
    page = (DOCS / 'injection.md').read_text()
    assert json.dumps(everything.json(), separators=(',', ':')) in page


async def test_providers_by_name_and_type_with_cleanup():
    async with TestClient(example('injection').app) as client:
        anonymous = await client.get('/orders')
        before = await client.get('/sessions-closed')
        orders = await client.get('/orders', headers={'Authorization': 'Bearer ada'})
        after = await client.get('/sessions-closed')
    assert anonymous.status == 401 and anonymous.headers['www-authenticate'] == 'Bearer'
    assert before.json() == {'closed': 0}  # the provider was never called for the 401
    assert orders.json() == {'user': 'ada', 'orders': [{'sql': 'orders of ada'}]}
    assert after.json() == {'closed': 1}


async def test_route_options_from_defaults_and_decorator():
    async with TestClient(example('injection').app) as client:
        report = await client.get('/report.csv')
        created = await client.post('/items', json={'name': 'pen'})
    assert report.headers['content-type'] == 'text/csv; charset=utf-8'
    assert report.text == 'month,sales\n2024-01,42\n'
    assert (created.status, created.json()) == (201, {'created': {'name': 'pen'}})


def test_registration_error_names_the_handler_and_route(capsys):
    runpy.run_path(str(EXAMPLES / 'registration_errors.py'))
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("profile (route '/profile'): nothing can supply parameter 'user'")
    assert printed in (DOCS / 'injection.md').read_text()


# -- middleware --------------------------------------------------------------------------------

def documented_orders() -> dict[str, list[str]]:
    """The ordering tables of the middleware page: request line to the calls, in order."""
    page = (DOCS / 'middleware.md').read_text()
    tables = {}
    for match in re.finditer(r'<!-- order: (.+?) -->\n((?:\|.*\n)+)', page):
        rows = match.group(2).strip().splitlines()[2:]
        tables[match.group(1)] = [row.split('|')[2].strip().strip('`') for row in rows]
    return tables


HOOK_NAMES = {'authenticate', 'start_timer', 'Cors.on_request', 'Cors.on_response',
              'add_server_timing', 'add_user_header', 'items', 'about'}


async def test_middleware_order_matches_the_documented_tables(caplog):
    caplog.set_level(logging.INFO, logger='tremolo')
    tables = documented_orders()
    assert set(tables) == {'GET /api/items', 'OPTIONS /api/items', 'GET /about'}
    async with TestClient(example('middleware').app) as client:
        for request_line, calls in tables.items():
            caplog.clear()
            method, path = request_line.split()
            await client.request(method, path)
            assert tremolo_messages(caplog, HOOK_NAMES) == calls, request_line


async def test_middleware_effects_and_short_circuits(caplog):
    caplog.set_level(logging.INFO, logger='tremolo')
    async with TestClient(example('middleware').app) as client:
        items = await client.get('/api/items', headers={'X-User': 'ada'})
        preflight = await client.options('/api/items')
        about = await client.get('/about')
        caplog.clear()
        mallory = await client.get('/about', headers={'X-User': 'mallory'})
    assert items.json() == {'items': ['a', 'b']}
    assert items.headers['x-user'] == 'ada'
    assert items.headers['access-control-allow-origin'] == 'https://example.com'
    assert items.headers['server-timing'].startswith('app;dur=')
    assert (preflight.status, preflight.body) == (204, b'')
    assert preflight.headers['access-control-allow-methods'] == 'GET, POST'
    assert 'access-control-allow-origin' not in about.headers
    assert (mallory.status, mallory.text) == (403, 'Go away\n')
    assert 'server-timing' not in mallory.headers and mallory.headers['x-user'] == 'mallory'
    assert tremolo_messages(caplog, HOOK_NAMES) == [
        'authenticate', 'add_server_timing', 'add_user_header']


async def test_gzip_response_filter():
    accept = {'Accept-Encoding': 'gzip, br'}
    async with TestClient(example('filters').app) as client:
        article = await client.get('/article', headers=accept)
        feed = await client.get('/feed', headers=accept)
        plain = await client.get('/article')
        head = await client.head('/article', headers=accept)
    assert article.headers['content-encoding'] == 'gzip'
    assert article.headers['vary'] == 'Accept-Encoding'
    assert int(article.headers['content-length']) == len(article.body) < 1700
    assert gzip.decompress(article.body) == b'Tremolo streams. ' * 100
    assert len(feed.chunks) > 50  # still streamed, piece by piece
    assert gzip.decompress(feed.body) == ''.join(f'entry {n}\n' for n in range(100)).encode()
    assert 'content-encoding' not in plain.headers and len(plain.body) == 1700
    assert head.body == b'' and head.headers['content-length'] == article.headers[
        'content-length']


async def test_gunzip_request_filter():
    gzipped = {'Content-Encoding': 'gzip'}
    async with TestClient(example('filters').app) as client:
        zipped = await client.post('/notes', body=gzip.compress(b'hello'), headers=gzipped)
        plain = await client.post('/notes', body=b'hello')
        broken = await client.post('/notes', body=b'not gzip', headers=gzipped)
    assert zipped.json() == plain.json() == {'note': 'hello'}
    assert (broken.status, broken.text) == (400, 'the body is not valid gzip')


async def test_default_headers_example():
    app = example('default_headers').app
    async with TestClient(app, trusted_proxies=['127.0.0.1']) as client:
        catalog = await client.get('/catalog')
        basket = await client.get('/basket', headers={'X-Forwarded-Proto': 'https'})
        missing = await client.get('/missing')
        embed = await client.get('/embed')
    assert catalog.json() == {'items': ['tea', 'coffee']}
    assert catalog.header('cache-control') == 'public, max-age=300'
    assert basket.header('cache-control') is None
    assert catalog.header('strict-transport-security') is None
    assert basket.header('strict-transport-security') == 'max-age=31536000'
    for response in (catalog, basket, missing, embed):
        assert response.header('x-content-type-options') == 'nosniff'
    assert [response.header('x-served') for response in (catalog, basket, missing, embed)] == [
        'req-1', 'req-2', 'req-3', 'req-4']
    assert missing.status == 404 and missing.header('vary') == 'Accept-Language'
    assert embed.header('cache-control') == 'no-store'
    assert embed.header('x-frame-options') == 'ALLOWALL'
    assert embed.header('vary') == 'Accept-Language, Cookie'


async def test_pay_as_you_go_example():
    app = example('pay_as_you_go').app
    async with TestClient(app) as client:
        listed = await client.get('/notes')
        refused = await client.post('/notes', body=b'note', headers={'Content-Type': 'text/plain'})
        posted = await client.post('/notes', json={'note': 1})
        first = await client.get('/pages/a')
        cookie = first.header('set-cookie').split(';')[0]
        second = await client.get('/pages/b', headers={'Cookie': cookie})
        cookie = second.header('set-cookie').split(';')[0]
        again = await client.get('/pages/a', headers={'Cookie': cookie})
        stranger = await client.get('/admin')
        staff = await client.get('/admin', headers={'X-Role': 'staff'})
        public = await client.get('/pages/c', headers={'X-Role': 'visitor'})
    assert (stranger.status, stranger.text) == (403, 'staff only')
    assert staff.text == 'the admin page' and public.text == 'page c'
    assert listed.json() == {'notes': []} and posted.json() == {'note': 1}
    assert (refused.status, refused.text) == (415, 'send JSON')
    assert cookie == 'visited=a.b' and first.header('set-cookie').startswith('visited=a;')
    assert again.text == 'page a' and again.header('set-cookie') is None


# -- hooks and extensions ----------------------------------------------------------------------

async def test_worker_and_connection_hooks(caplog):
    caplog.set_level(logging.INFO, logger='tremolo')
    async with TestClient(example('hooks').app) as client:
        assert 'pool of 10 opened' in caplog.messages
        connection = client.connect()
        answers = [(await connection.request('GET', '/visit')).json() for _ in range(3)]
        await connection.close()
    assert answers == [{'pool_size': 10, 'served_on_this_connection': n} for n in (1, 2, 3)]
    assert '127.0.0.1 connected' in caplog.messages
    assert '127.0.0.1 leaves after 3 requests' in caplog.messages
    assert caplog.messages[-1] == 'pool closed'


async def test_extension(caplog):
    module = example('extension')
    caplog.set_level(logging.INFO, logger='tremolo')
    assert module.stats.name == 'request-stats' and module.stats.path == '/_stats'
    async with TestClient(module.app) as client:
        assert (await client.get('/')).text == 'Hello\n'
        assert (await client.get('/nowhere')).status == 404
        assert (await client.get('/_stats')).json() == {'200': 1, '404': 1}
        assert (await client.get('/_stats')).json() == {'200': 2, '404': 1}
    assert 'request-stats: 4 responses' in caplog.messages
    page = (DOCS / 'extensions.md').read_text()
    assert '{"200":1,"404":1}' in page and '{"200":2,"404":1}' in page


# -- errors ------------------------------------------------------------------------------------

async def test_http_exceptions_and_redirects():
    async with TestClient(example('errors').app) as client:
        found = await client.get('/books/1')
        missing = await client.get('/books/9')
        unknown = await client.get('/nowhere')
        vague = await client.get('/search')
        busy = await client.get('/search?q=dune')
        moved = await client.get('/old-books/2')
        login = await client.get('/login')
    assert found.json() == {'id': 1, 'title': 'Dune'}
    assert (missing.status, missing.json()) == (404, {'error': 'no book 9', 'path': '/books/9'})
    assert (unknown.status, unknown.json()) == (404, {'error': 'Not Found', 'path': '/nowhere'})
    assert (vague.status, vague.text) == (400, 'say what you are looking for')
    assert vague.headers['content-type'] == 'text/plain; charset=utf-8'
    assert (busy.status, busy.text, busy.headers['retry-after']) == (429, 'slow down', '3')
    assert (moved.status, moved.headers['location'], moved.body) == (301, '/books/2', b'')
    assert (login.status, login.headers['location']) == (302, '/books/1')


async def test_error_handler_by_class_and_hidden_internals(caplog):
    async with TestClient(example('errors').app) as client:
        out = await client.get('/buy/2')
        crash = await client.get('/crash')
    assert (out.status, out.json()) == (409, {'error': 'Solaris is out of stock'})
    assert (crash.status, crash.body) == (500, b'Internal Server Error')
    assert any('hunter2' in str(record.exc_info[1]) for record in caplog.records
               if record.exc_info)  # logged for the developer...


async def test_debug_shows_the_traceback(caplog):
    async with TestClient(example('errors').app, debug=True) as client:
        crash = await client.get('/crash')
    assert crash.status == 500
    assert crash.text.startswith('Traceback') and 'hunter2' in crash.text


# -- configuration -----------------------------------------------------------------------------

async def test_route_and_request_options():
    async with TestClient(example('options').app) as client:
        upload = await client.post('/upload', body=b'x' * (11 * 1024 * 1024), chunked=True)
        export = await client.get('/export.csv')
        download = await client.get('/downloads/report.pdf')
        effective = await client.get('/effective')
    assert upload.json() == {'received': 11 * 1024 * 1024}  # above the server's 10 MiB
    assert export.headers['content-type'] == 'text/csv; charset=utf-8'
    assert export.text == 'id,name\n1,Ada\n'
    assert download.json() == {'name': 'report.pdf', 'buffer_size': 256 * 1024}
    page = (DOCS / 'configuration.md').read_text()
    documented = re.search(r'```json\n(.*?)\n```', page, re.S)
    assert documented is not None
    assert effective.json() == json.loads(documented.group(1))


async def test_server_options_reach_the_request():
    async with TestClient(example('options').app, max_body_size=1024) as client:
        effective = (await client.get('/effective')).json()
        upload = await client.post('/upload', body=b'x' * 2048)
    assert effective['max_body_size'] == 1024
    assert upload.status == 200  # the route's own limit wins


# -- testing -----------------------------------------------------------------------------------

async def test_testing_examples():
    module = example('testing')
    await module.test_hello()
    await module.test_keep_alive()


@pytest.mark.slow
async def test_testing_example_over_a_real_socket():
    await example('testing').test_hello_over_a_real_socket()


# -- deployment --------------------------------------------------------------------------------

@pytest.mark.slow
async def test_unix_socket_behind_a_proxy(procs, tmp_path):
    sock = Path(os.path.realpath('/tmp')) / f'tremolo-docs-{uuid.uuid4().hex[:8]}.sock'
    script = tmp_path / 'unix_socket.py'
    script.write_text(substituted(
        'unix_socket', ("'/run/tremolo/app.sock'", repr(str(sock))),
        ("'127.0.0.1', 8000, worker_num=4", "'127.0.0.1', 0, worker_num=2"),
    ))
    server = procs.script(script, cwd=tmp_path)
    try:
        await server.wait_for(r'serving on unix:', count=2)
        connector = aiohttp.UnixConnector(path=str(sock), force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            headers = {'X-Forwarded-For': '203.0.113.7'}
            async with session.get('http://tremolo/', headers=headers) as response:
                assert await response.text() == f'Hello 203.0.113.7 (via {sock})\n'
        assert (await fetch(await server.url('/')))[0] == 200
        await server.wait_for(r'- "GET / HTTP/1\.1" 200')  # a UNIX socket client is '-'
        server.send(signal.SIGTERM)
        assert await server.wait_exit() == 0
    finally:
        if sock.exists():
            sock.unlink()


@pytest.mark.slow
async def test_access_log_in_a_file_of_its_own(procs, tmp_path):
    script = tmp_path / 'logging_config.py'
    script.write_text(substituted('logging_config', ("'127.0.0.1', 8000", "'127.0.0.1', 0")))
    server = procs.script(script, cwd=tmp_path)
    assert await fetch_text(await server.url('/hello')) == 'Hello world!'
    server.send(signal.SIGTERM)
    assert await server.wait_exit() == 0
    access = (tmp_path / 'access.log').read_text()
    assert re.search(r'127\.0\.0\.1:\d+ - "GET /hello HTTP/1\.1" 200 12$', access, re.M)
    assert 'serving on' in server.stderr and 'GET /hello' not in server.stderr


@pytest.mark.slow
async def test_command_line_serves_an_example(procs):
    server = procs.start([PYTHON, '-m', 'tremolo', 'examples.hello:app', '--port', '0',
                          '--no-access-log'], cwd=REPO_ROOT)
    assert await fetch_text(await server.url('/hello')) == 'Hello world!'
    assert 'GET /hello' not in server.stderr
    server.send(signal.SIGINT)
    assert await server.wait_exit() == 0


# -- the demo of the README --------------------------------------------------------------------

async def test_demo_answers_the_readme_urls():
    async with TestClient(example('demo').app) as client:
        hello = await client.get('/hello')
        user = await client.get('/user/42?greeting=Hi')
        echo = await client.post('/echo', body='some data')
        countdown = await client.get('/countdown')
    assert hello.text == 'Hello world!\n'
    # The header says what it measures: the time to the first byte, not the 2.5 s stream.
    timing = countdown.headers['server-timing']
    assert timing.startswith('app;desc="to the first byte";dur=')
    assert float(timing.rpartition('dur=')[2]) < 2500
    assert user.json() == {'id': 42, 'greeting': 'Hi'}
    assert echo.body == b'some data'


# -- switching protocols -----------------------------------------------------------------------

async def test_upgrade_example_echoes_in_upper_case():
    app = example('upgrade').app
    async with TestClient(app) as client:
        plain = await client.get('/echo')
        assert plain.status == 426 and plain.header('upgrade') == 'echo'
        connection = client.connect()
        connection.send(b'GET /echo HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n'
                        b'Upgrade: echo\r\n\r\n')
        head = await connection.receive()
        assert head.startswith(b'HTTP/1.1 101 Switching Protocols\r\n')
        connection.send(b'hello')
        assert await connection.receive() == b'HELLO'
        connection.send_eof()
        assert await connection.read_all() == b''
        assert connection.closed


# -- serving files -----------------------------------------------------------------------------

async def test_files_example_sends_and_offers_downloads():
    csv = (EXAMPLES / '_site' / 'report.csv').read_bytes()
    async with TestClient(example('files').app) as client:
        report = await client.get('/report.csv')
        assert report.body == csv and report.header('content-type') == 'text/csv; charset=utf-8'
        again = await client.get('/report.csv', headers={'If-None-Match': report.header('etag')})
        assert again.status == 304
        part = await client.get('/report.csv', headers={'Range': 'bytes=0-3'})
        assert part.status == 206 and part.body == b'year'
        download = await client.get('/download/latest')
        assert download.body == csv and download.header('cache-control') == 'no-store'
        assert download.header('content-disposition') == (
            'attachment; filename="report-latest.csv"')
        assert (await client.get('/download/..%2fapp.py')).status == 404


async def test_static_site_example(caplog):
    caplog.set_level(logging.INFO, logger='tremolo.static')
    async with TestClient(example('static_site').app) as client:
        home = await client.get('/')
        assert home.status == 302 and home.header('location') == '/static/'
        index = await client.get('/static/')
        assert b'Served by Tremolo' in index.body
        assert index.header('cache-control') == 'public, max-age=3600'
        css = await client.get('/assets/site.css')
        assert css.header('content-type') == 'text/css; charset=utf-8'
        assert css.header('cache-control') == 'public, max-age=31536000, immutable'
        assert css.body == (await client.get('/static/css/site.css')).body
        assert (await client.get('/static/%2e%2e/files.py')).status == 404
    assert any('refused GET /static/%2e%2e/files.py' in m for m in caplog.messages)
    page = (DOCS / 'files.md').read_text()
    assert 'refused GET /static/%2e%2e/secret from 203.0.113.9 (empty or dot segment)' in page


# -- bandwidth control -------------------------------------------------------------------------

async def test_bandwidth_example():
    module = example('bandwidth')
    async with TestClient(module.app) as client:
        started = time.monotonic()
        video = await client.get('/downloads/video')
        video_seconds = time.monotonic() - started
        started = time.monotonic()
        upload = await client.post('/uploads', body=b'u' * (128 * 1024))
        upload_seconds = time.monotonic() - started
        started = time.monotonic()
        pair = await asyncio.gather(*(
            client.connect(peer=('10.1.1.1', port)).request('GET', '/mirror/iso')
            for port in (1, 2)))
        mirror_seconds = time.monotonic() - started
        started = time.monotonic()
        premium = await client.get('/reports/q3?plan=premium')
        premium_seconds = time.monotonic() - started
        started = time.monotonic()
        basic = await client.get('/reports/q3')
        basic_seconds = time.monotonic() - started
    assert len(video.body) == 1024 * 1024 and 1.5 < video_seconds < 10   # 1 MiB at 512 KiB/s
    assert upload.json() == {'received': 128 * 1024} and 0.3 < upload_seconds < 5
    assert [len(r.body) for r in pair] == [256 * 1024] * 2 and 0.35 < mirror_seconds < 5
    assert len(premium.body) == len(basic.body) == 64 * 1024
    assert premium_seconds < 0.3 < basic_seconds < 5


async def test_websocket_chat_example_broadcasts():
    app = example('websocket_chat').app
    async with TestClient(app) as client:
        assert 'WebSocket' in (await client.get('/')).text
        ann = await client.websocket('/chat?name=ann', subprotocols=('chat.v1',))
        assert ann.subprotocol == 'chat.v1'
        assert await ann.receive() == 'ann joined'
        bob = await client.websocket('/chat?name=bob')
        assert await bob.receive() == 'bob joined'
        assert await ann.receive() == 'bob joined'
        await bob.send('hello')
        assert await ann.receive() == 'bob: hello'
        assert await bob.receive() == 'bob: hello'
        await bob.close()
        assert await ann.receive() == 'bob left'


async def test_websocket_chat_example_over_sockets():
    from tremolo.testing import serve

    app = example('websocket_chat').app
    async with serve(app) as server, aiohttp.ClientSession() as session:
        url = server.url.replace('http://', 'ws://') + '/chat?name='
        async with session.ws_connect(url + 'ann', compress=15) as ann:
            assert (await ann.receive()).data == 'ann joined'
            async with session.ws_connect(url + 'bob') as bob:
                assert (await bob.receive()).data == 'bob joined'
                assert (await ann.receive()).data == 'bob joined'
                await ann.send_str('hi all')
                assert (await bob.receive()).data == 'ann: hi all'
                assert (await ann.receive()).data == 'ann: hi all'
            assert (await ann.receive()).data == 'bob left'


async def test_websocket_stream_example_hashes_and_reports():
    import hashlib

    from tremolo.http.websocket import BINARY, CONTINUATION

    data = [os.urandom(100_000) for _ in range(5)]
    async with TestClient(example('websocket_stream').app) as client:
        ws = await client.websocket('/digest')
        for i, piece in enumerate(data):
            ws.send_frame(BINARY if i == 0 else CONTINUATION, piece, fin=i == len(data) - 1)
        digest = hashlib.sha256(b''.join(data)).hexdigest()
        assert await ws.receive() == f'500000 bytes\nsha256 {digest}\n'


async def test_websocket_testing_example_passes():
    await example('websocket_testing').test_chat()


async def test_typed_example():
    async with TestClient(example('typed').app) as client:
        shown = await client.get('/books/1', headers={'X-Reader': 'ada'})
        missing = await client.get('/books/99')
        words = await client.get('/books/2/words')
        added = await client.post('/books', json={'title': 'The Dispossessed'})
        again = await client.get(added.header('location'))
    assert shown.json() == {'id': 1, 'title': 'Dune', 'reader': 'ada'}
    assert (missing.status, missing.text) == (404, 'no book 99')
    assert words.chunks == [b'Solaris\n'] and words.header('x-book') == '2'
    assert added.status == 201 and added.json() == {'id': 3}
    assert again.json() == {'id': 3, 'title': 'The Dispossessed', 'reader': 'anonymous'}


# -- scaling out --------------------------------------------------------------------------------

async def test_scaling_example_shares_budgets_rates_and_messages_through_redis(
        redis_server, monkeypatch):  # noqa: F811 - the fixture
    monkeypatch.setenv('REDIS_URL', redis_server.url)
    module = module_from(source('scaling'), 'scaling_example')
    MiB = 1024 * 1024
    async with TestClient(module.app) as client:
        started = time.monotonic()
        download = await client.get('/files/report')  # 1 MiB at 2 MiB/s for this client
        seconds = time.monotonic() - started
        assert len(download.body) == MiB and 0.35 < seconds < 3, seconds
        assert (await client.post('/admin/download-rate', body=b'1000')).status == 403
        changed = await client.post('/admin/download-rate', body=str(200 * MiB).encode(),
                                    headers={'x-admin-token': 'secret'})
        assert changed.json() == {'download_rate': 200 * MiB}
        stored = redis_server.command('HGET', 'shop:bandwidth:{downloads:download}:rate', 'rate')
        assert str(200 * MiB).encode() in stored  # where every host reads it
        listener = client.connect()
        listener.send(build_request('GET', '/announcements'))
        assert b'text/event-stream' in await listener.receive()  # subscribed
        assert (await client.post('/announce', body=b'sale at noon')).text == 'sent\n'
        received = b''
        while b'data: sale at noon' not in received:
            received += await listener.receive()
        await listener.close()


async def test_shared_stores_example_gives_one_quota_and_one_session_to_two_hosts(
        redis_server, monkeypatch):  # noqa: F811 - the fixture
    monkeypatch.setenv('REDIS_URL', redis_server.url)
    monkeypatch.setenv('SECRET_KEY', 'one key for every host')
    # Two hosts: the same program twice, sharing one Redis.
    hosts = [module_from(source('shared_stores'), f'shared_stores_{n}').app for n in (1, 2)]
    async with TestClient(hosts[0]) as one, TestClient(hosts[1]) as other:
        wrong = {'user': 'ada', 'password': 'no'}
        tries = [await (one, other)[n % 2].post('/login', form=wrong) for n in range(6)]
        assert [t.status for t in tries] == [403] * 5 + [429]  # 5 a minute, on both hosts
        redis_server.command('FLUSHALL')  # a minute later
        login = await one.post('/login', form={'user': 'ada', 'password': 'secret'})
        cookie = login.header('set-cookie').split(';')[0]
        me = await other.get('/me', headers={'Cookie': cookie})
        api = [await (one, other)[n % 2].get('/api/orders', headers={'X-API-Key': 'k1'})
               for n in range(2)]
    assert login.text == 'logged in' and me.json() == {'user': 'ada'}
    fields = [a.header_list for a in api]
    assert [[v for k, v in f if k == 'RateLimit' and v.startswith('"api"')][0].split(';')[1]
            for f in fields] == ['r=999', 'r=998']  # one count for the key on both hosts
    assert ('RateLimit-Policy', '"api";q=1000;w=3600') in fields[0]
    keys = redis_server.command('KEYS', '*').decode()
    assert 'tremolo:ratelimit:window:api:*:h:k1' in keys and 'tremolo:session:' in keys


# -- the middleware library ----------------------------------------------------------------------

async def test_library_stack_example_installs_everything_in_order():
    app = example('library_stack').app
    async with TestClient(app, trusted_proxies=['127.0.0.1']) as client:
        plain = await client.get('/', headers={'Host': 'example.com'})
        response = await client.get('/', headers={
            'Host': 'www.example.com', 'X-Forwarded-Proto': 'https',
            'X-Request-ID': 'doc-1', 'Origin': 'https://app.example.com'})
        refused = await client.get('/', headers={'Host': 'evil.test'})
    assert plain.status == 308 and plain.header('location') == 'https://example.com/'
    assert response.status == 200 and response.text == 'visit 1 (request doc-1)\n'
    assert response.header('access-control-allow-origin') == 'https://app.example.com'
    assert response.header('strict-transport-security').startswith('max-age=')
    assert 'Secure' in response.header('set-cookie')
    assert response.header('ratelimit-policy') == '"ratelimit";q=100;w=60'
    assert refused.status == 400


async def test_compressed_responses_example():
    import zlib

    app = example('compressed_responses').app
    rows = gzip.compress(b'\n'.join(b'x' * 20 for _ in range(1000)))
    async with TestClient(app) as client:
        report = await client.get('/report', headers={'Accept-Encoding': 'gzip'})
        ticks = await client.get('/ticks', headers={'Accept-Encoding': 'gzip'})
        export = await client.get('/export', headers={'Accept-Encoding': 'gzip'})
        imported = await client.post('/import', body=rows, headers={'Content-Encoding': 'gzip'})
    assert report.header('content-encoding') == 'gzip'
    assert json.loads(gzip.decompress(report.body))['rows'][999] == {'id': 999, 'status': 'ok'}
    decompressor = zlib.decompressobj(31)
    events = [decompressor.decompress(chunk) for chunk in ticks.chunks]
    assert events[:3] == [b'data: {"tick":%d}\n\n' % n for n in range(3)]
    assert export.header('content-type') == 'application/x-ndjson'
    assert gzip.decompress(export.body).count(b'\n') == 1000
    assert imported.json() == {'lines': 999}


async def test_cors_example():
    app = example('cors').app
    async with TestClient(app) as client:
        preflight = await client.options('/api/items', headers={
            'Origin': 'http://localhost:5173', 'Access-Control-Request-Method': 'POST',
            'Access-Control-Request-Headers': 'authorization'})
        response = await client.get('/api/items', headers={'Origin': 'https://app.example.com'})
    assert preflight.status == 204 and preflight.header('access-control-max-age') == '3600'
    assert preflight.header('access-control-allow-credentials') == 'true'
    assert response.header('access-control-expose-headers') == 'X-Total-Count'
    assert response.json() == [{'id': 1}, {'id': 2}]


async def test_security_example():
    app = example('security').app
    async with TestClient(app, trusted_proxies=['127.0.0.1']) as client:
        redirected = await client.get('/?a=1', headers={'Host': 'shop.example.com'})
        secure = await client.get('/', headers={'Host': 'example.com',
                                                'X-Forwarded-Proto': 'https'})
        unknown = await client.get('/', headers={'Host': 'example.org'})
    assert redirected.status == 308
    assert redirected.header('location') == 'https://shop.example.com/?a=1'
    assert secure.text == '<h1>Secure</h1>'
    assert secure.header('strict-transport-security') == 'max-age=63072000; includeSubDomains'
    assert secure.header('x-frame-options') == 'DENY'
    assert "frame-ancestors 'none'" in secure.header('content-security-policy')
    assert unknown.status == 400


async def test_request_id_example(caplog):
    module = example('request_id')
    caplog.set_level(logging.WARNING, logger='shop')
    async with TestClient(module.app) as client:
        response = await client.get('/orders/7', headers={'X-Request-ID': 'abc-123'})
    assert response.json() == {'order': '7', 'request': 'abc-123'}
    [record] = [r for r in caplog.records if r.name == 'shop']
    assert module.handler.format(record) == 'WARNING [abc-123] shop: order 7 looked up'


async def test_rate_limit_example():
    app = example('rate_limit').app
    async with TestClient(app) as client:
        logins = [(await client.post('/login')).status for _ in range(6)]
        health = [(await client.get('/health')).status for _ in range(70)]
        api = await client.get('/api/data', headers={'X-API-Key': 'k1'})
    assert logins == [200] * 5 + [429]
    assert health == [200] * 70
    assert api.header_list.count(('RateLimit-Policy', '"api";q=1000;w=3600')) == 1
    assert ('RateLimit-Policy', '"ratelimit";q=60;w=60') in api.header_list


async def test_sessions_example(tmp_path, monkeypatch):
    monkeypatch.setenv('SESSIONS_DIR', str(tmp_path))
    module = module_from(source('sessions'), 'sessions_example')
    async with TestClient(module.shop) as client:
        first = await client.post('/cart/apple')
        cookie = first.header('set-cookie').split(';')[0]
        second = await client.post('/cart/pear', headers={'Cookie': cookie})
    assert second.json() == {'cart': ['apple', 'pear']}
    async with TestClient(module.app) as client:
        wrong = await client.post('/login', form={'user': 'ada', 'password': 'guess'})
        login = await client.post('/login', form={'user': 'ada', 'password': 'secret'})
        cookie = login.header('set-cookie').split(';')[0]
        me = await client.get('/me', headers={'Cookie': cookie})
        await client.post('/logout', headers={'Cookie': cookie})
        after = await client.get('/me', headers={'Cookie': cookie})
    assert wrong.status == 403
    assert me.json() == {'user': 'ada'} and after.json() == {'user': None}
    assert os.listdir(tmp_path) == []  # logged out: the file is gone


async def test_csrf_example():
    app = example('csrf').app
    async with TestClient(app) as client:
        page = await client.get('/profile')
        token = re.search(r'value="([^"]+)"', page.text).group(1)
        cookie = page.header('set-cookie').split(';')[0]
        saved = await client.post('/profile', headers={'Cookie': cookie},
                                  form={'csrf_token': token, 'name': 'Ada'})
        forged = await client.post('/profile', headers={'Cookie': cookie},
                                   form={'name': 'Mallory'})
        webhook = await client.post('/webhooks/payment', body=b'{}')
    assert saved.text == 'saved Ada'
    assert forged.status == 403 and 'CSRF' in forged.text
    assert webhook.text == 'received'


async def test_background_tasks_example(caplog):
    module = example('background_tasks')
    caplog.set_level(logging.INFO, logger='signup')
    async with TestClient(module.app) as client:
        response = await client.post('/signup', form={'email': 'ada@example.com'})
        assert response.text == 'Welcome! Check your mail.'
        assert module.sent == []  # answered before the mail went out
    # Leaving the client stopped the worker, which waited for the tasks.
    assert module.sent == ['ada@example.com']
    assert any(r.getMessage() == 'audit: signup ada@example.com' for r in caplog.records)
# -- ASGI applications ---------------------------------------------------------------------------

async def test_asgi_raw_example_in_process_and_from_the_command_line(procs):
    async with TestClient(example('asgi_raw').app) as client:
        assert (await client.get('/')).text == 'Hello, world!'
        assert (await client.get('/Tremolo')).text == 'Hello, Tremolo!'
    server = procs.cli('examples.asgi_raw:app', '--port', '0', '--no-access-log')
    assert await fetch_text(await server.url('/you')) == 'Hello, you!'
    server.send(signal.SIGTERM)
    assert await server.wait_exit() == 0


async def test_asgi_raw_example_runs_as_a_script(procs, tmp_path):
    script = tmp_path / 'asgi_raw.py'
    script.write_text(substituted('asgi_raw', ("port=8000", "port=0")))
    server = procs.script(script, cwd=tmp_path)
    assert await fetch_text(await server.url('/')) == 'Hello, world!'
    server.send(signal.SIGTERM)
    assert await server.wait_exit() == 0


async def test_asgi_fastapi_example():
    pytest.importorskip('fastapi', reason='FastAPI is a CPython-only test extra')
    async with TestClient(example('asgi_fastapi').app) as client:
        response = await client.get('/items/5?q=x')
        assert response.json() == {'item_id': 5, 'q': 'x'}
        websocket = await client.websocket('/echo')
        await websocket.send('ping')
        assert await websocket.receive() == 'ping'


def test_asgi_fastapi_example_runs_with_workers(monkeypatch):
    pytest.importorskip('fastapi', reason='FastAPI is a CPython-only test extra')
    served = []
    monkeypatch.setattr(tremolo.server.serve, 'serve',
                        lambda options, factory, reimport=None: served.append(options))
    runpy.run_path(str(EXAMPLES / 'asgi_fastapi.py'), run_name='__main__')
    assert served[0].worker_num == 4 and served[0].host == '0.0.0.0'


async def test_asgi_starlette_example():
    pytest.importorskip('starlette', reason='Starlette is a CPython-only test extra')
    async with TestClient(example('asgi_starlette').app) as client:
        assert (await client.get('/')).text == '0 visits before this one'
        response = await client.get('/conf')
        assert response.body == (EXAMPLES / 'nginx.conf').read_bytes()


async def test_asgi_mount_example():
    pytest.importorskip('starlette', reason='Starlette is a CPython-only test extra')
    async with TestClient(example('asgi_mount').app) as client:
        assert (await client.get('/')).text == 'the new application'
        refused = await client.get('/legacy/users')
        assert (refused.status, refused.text) == (401, 'a token is needed')
        answer = await client.get('/legacy/users', headers={'Authorization': 'Bearer secret'})
        assert answer.json() == {'path': '/legacy/users', 'root_path': '/legacy'}


async def test_asgi_extensions_example():
    async with TestClient(example('asgi_extensions').app, lifespan='off') as client:
        page = await client.get('/page')
        assert page.interim == [103] and page.status == 200
        assert (await client.get('/file')).body == (EXAMPLES / 'nginx.conf').read_bytes()
        checked = await client.get('/checked')
    body = b'first piece, second piece'
    assert checked.body == body
    assert checked.trailers == {b'x-sha256': hashlib.sha256(body).hexdigest().encode()}
