"""The access log: formats, fields parsed one by one, JSON lines, requests cut short, and
logging configured from a file."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import textwrap
import time

import pytest

from tests.apps.harness import fetch
from tests.server.test_running import run_basic, stops_cleanly
from tremolo import Options, Tremolo
from tremolo.access_log import FIELDS, PRESETS
from tremolo.testing import TestClient


@pytest.fixture
def log_app() -> Tremolo:
    app = Tremolo()

    @app.on_request
    async def identify(request, context, **server):
        if request.headers.get('x-user'):
            context.user = request.headers['x-user']

    @app.route('/users/{id:int}')
    async def user(id, response, **server):
        response.set_header('X-Request-ID', 'rid-42')
        response.set_header('X-Cache', 'miss')
        return f'user {id}'

    @app.post('/upload')
    async def upload(request, **server):
        return str(len(await request.body()))

    @app.route('/stream')
    async def stream(**server):
        yield b'a' * 100
        await asyncio.sleep(0.3)
        yield b'b' * 100

    @app.route('/wait')
    async def wait(**server):
        await asyncio.sleep(0.3)
        return 'late'

    @app.route('/events')
    async def events(sse, **server):
        await sse.send('one')
        await asyncio.sleep(30)

    return app


def access_lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == 'tremolo.access']


async def test_every_field_of_a_template(log_app, caplog):
    template = ' | '.join(f'{{{name}}}' for name in FIELDS) + (
        ' | {request_header:Accept} | {response_header:X-Cache} | {request_header:X-None}')
    caplog.set_level(logging.INFO, 'tremolo.access')
    credentials = base64.b64encode(b'ada:secret').decode()
    async with TestClient(log_app, access_log=True, access_log_format=template) as client:
        before = time.time()
        await client.get('/users/7?full=1', headers={
            'Referer': 'https://example.com/', 'User-Agent': 'test "agent"',
            'Authorization': f'Basic {credentials}', 'Accept': 'text/plain'})
    (line,) = access_lines(caplog)
    values = dict(zip([*FIELDS, 'accept', 'x-cache', 'x-none'], line.split(' | ')))
    assert values['client'] == '127.0.0.1:40000'
    assert values['client_host'] == values['remote_addr'] == '127.0.0.1'
    assert values['user'] == 'ada'  # from the Basic credentials
    started = time.strptime(values['time'], '%d/%b/%Y:%H:%M:%S %z')
    assert abs(time.mktime(started) - before) < 5
    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d',
                        values['time_iso'])
    assert (values['method'], values['target'], values['path'], values['query']) == (
        'GET', '/users/7?full=1', '/users/7', 'full=1')
    assert values['protocol'] == 'HTTP/1.1'
    assert values['request_line'] == 'GET /users/7?full=1 HTTP/1.1'
    assert values['route'] == '/users/{id:int}'
    assert (values['status'], values['response_bytes'], values['request_bytes']) == (
        '200', '6', '0')
    assert 0 < float(values['duration']) < 1
    assert float(values['duration_ms']) == pytest.approx(float(values['duration']) * 1000,
                                                         abs=0.01)
    assert int(values['duration_us']) == pytest.approx(float(values['duration']) * 1e6, abs=10)
    assert values['complete'] == 'true'
    assert values['referer'] == 'https://example.com/'
    assert values['user_agent'] == 'test \\x22agent\\x22'  # a quote cannot end a field
    assert values['request_id'] == 'rid-42'
    assert values['pid'] == str(os.getpid())
    assert (values['accept'], values['x-cache'], values['x-none']) == ('text/plain', 'miss', '-')


async def test_json_lines(log_app, caplog):
    caplog.set_level(logging.INFO, 'tremolo.access')
    async with TestClient(log_app, access_log=True, access_log_format='json') as client:
        await client.post('/upload', body=b'x' * 300, headers={'X-User': 'grace',
                                                                'X-Request-ID': 'abc'})
        await client.get('/nowhere')
    first, second = (json.loads(line) for line in access_lines(caplog))
    assert list(first) == ['time', 'client', 'remote_addr', 'user', 'method', 'target', 'path',
                           'query', 'protocol', 'route', 'status', 'request_bytes',
                           'response_bytes', 'duration_ms', 'complete', 'referer',
                           'user_agent', 'request_id', 'pid']
    assert first['user'] == 'grace'  # context.user, set by a middleware
    assert (first['method'], first['route'], first['status']) == ('POST', '/upload', 200)
    assert (first['request_bytes'], first['response_bytes']) == (300, 3)
    assert first['request_id'] == 'abc' and first['complete'] is True
    assert first['query'] is None and first['referer'] is None
    assert isinstance(first['duration_ms'], float) and first['pid'] == os.getpid()
    assert (second['status'], second['route']) == (404, None)


@pytest.mark.parametrize('preset', sorted(PRESETS))
async def test_presets(log_app, caplog, preset):
    caplog.set_level(logging.INFO, 'tremolo.access')
    async with TestClient(log_app, access_log=True, access_log_format=preset) as client:
        await client.get('/users/1', headers={'User-Agent': 'ua', 'Referer': 'r'})
    (line,) = access_lines(caplog)
    if preset == 'default':
        assert line == '127.0.0.1:40000 - "GET /users/1 HTTP/1.1" 200 6'
    else:
        assert re.fullmatch(r'127\.0\.0\.1 - - \[[^\]]+\] "GET /users/1 HTTP/1\.1" 200 6'
                            + (' "r" "ua"' if preset == 'combined' else ''), line), line


async def test_requests_cut_short_are_logged_with_the_bytes_sent(log_app, caplog):
    caplog.set_level(logging.INFO, 'tremolo.access')
    fmt = '{path} {status} {response_bytes} {complete}'
    async with TestClient(log_app, access_log=True, access_log_format=fmt) as client:
        streaming = client.connect()
        streaming.send(b'GET /stream HTTP/1.1\r\nHost: t\r\n\r\n')
        await streaming.receive()
        await streaming.close()  # mid-stream
        events = client.connect()
        events.send(b'GET /events HTTP/1.1\r\nHost: t\r\n\r\n')
        await events.receive()
        events.send_eof()  # an event stream closed by its client
        waiting = client.connect()
        waiting.send(b'GET /wait HTTP/1.1\r\nHost: t\r\n\r\n')
        await asyncio.sleep(0.05)
        await waiting.close()  # before any answer
        await asyncio.sleep(0.5)
    lines = sorted(access_lines(caplog))
    assert lines[0].startswith('/events 200 ') and lines[0].endswith(' false')
    assert int(lines[0].split()[2]) > 0
    assert lines[1:] == ['/stream 200 100 false', '/wait 200 4 false']


def test_a_bad_format_is_an_error_naming_the_option():
    with pytest.raises(ValueError, match=r"option 'access_log_format': unknown field \{nope\}"):
        Options(access_log_format='{client} {nope}')
    with pytest.raises(ValueError, match='conversions are not supported'):
        Options(access_log_format='{client!r}')
    with pytest.raises(ValueError, match='needs a header name'):
        Options(access_log_format='{request_header}')
    with pytest.raises(ValueError, match='neither a preset'):
        Options(access_log_format='fancy')
    with pytest.raises(ValueError, match="option 'log_config': no such file"):
        Options(log_config='/nonexistent/logging.json')
    with pytest.raises(ValueError, match="option 'log_config'.*not a .json"):
        Options(log_config='logging.yaml')


CONFIGS = {
    'json': json.dumps({
        'version': 1,
        'formatters': {'plain': {'format': 'ACCESS %(message)s'}},
        'handlers': {'file': {'class': 'logging.FileHandler', 'filename': '{log}',
                              'formatter': 'plain'}},
        'loggers': {'tremolo.access': {'handlers': ['file'], 'level': 'INFO',
                                       'propagate': False}},
    }),
    'toml': textwrap.dedent('''
        version = 1
        [formatters.plain]
        format = "ACCESS %(message)s"
        [handlers.file]
        class = "logging.FileHandler"
        filename = "{log}"
        formatter = "plain"
        [loggers."tremolo.access"]
        handlers = ["file"]
        level = "INFO"
        propagate = false
    '''),
    'ini': textwrap.dedent('''
        [loggers]
        keys = root,access
        [handlers]
        keys = file
        [formatters]
        keys = plain
        [logger_root]
        handlers =
        [logger_access]
        qualname = tremolo.access
        handlers = file
        level = INFO
        propagate = 0
        [handler_file]
        class = FileHandler
        args = ('{log}',)
        formatter = plain
        [formatter_plain]
        format = ACCESS %(message)s
    '''),
}


@pytest.mark.parametrize('kind', sorted(CONFIGS))
async def test_log_config_files(procs, tmp_path, kind):
    if kind == 'toml':
        try:
            import tomllib  # noqa: F401
        except ImportError:
            pytest.importorskip('tomli')
    log = tmp_path / 'access.log'
    config = tmp_path / f'logging.{kind}'
    config.write_text(CONFIGS[kind].replace('{log}', str(log)))
    server = run_basic(procs, log_config=str(config), access_log_format='json')
    status, _, _ = await fetch(await server.url('/pid'))
    assert status == 200
    await stops_cleanly(server)
    (line,) = log.read_text().splitlines()
    assert line.startswith('ACCESS {')
    assert json.loads(line[len('ACCESS '):])['path'] == '/pid'
    assert 'tremolo.access' not in server.stderr  # the file's handler, not the default one
    assert 'serving on' in server.stderr


async def test_a_log_config_that_cannot_be_applied_stops_the_server(procs, tmp_path):
    config = tmp_path / 'broken.json'
    config.write_text('{"version": 1, "handlers": {"x": {"class": "no.such.Handler"}}}')
    server = run_basic(procs, log_config=str(config))
    assert await server.wait_exit() != 0
    assert "option 'log_config': cannot configure logging from" in server.stderr
