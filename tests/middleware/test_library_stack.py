"""The middleware library together: every piece installed at its default priority, and what
must pass through them untouched (HEAD, ranges, WebSocket upgrades, event streams), in process
and over real sockets."""

from __future__ import annotations

import asyncio
import gzip
import logging
import time
import zlib

import aiohttp
import pytest
from tremolo.extensions.background import BackgroundTasks
from tremolo.extensions.sessions import Sessions
from tremolo.middleware.bandwidth import BandwidthLimiter, Pacer
from tremolo.middleware.compression import Compression
from tremolo.middleware.cors import CORS
from tremolo.middleware.csrf import CSRF
from tremolo.middleware.ratelimit import RateLimiter
from tremolo.middleware.request_id import RequestID
from tremolo.middleware.security import SecurityHeaders, TrustedHosts

from tremolo import Tremolo
from tremolo.testing import TestClient, serve

SECRET = 'stack-test-secret-key-0123456789'
ORIGIN = 'https://app.example'
KiB = 1024


def full_stack(app: Tremolo, rate: str = '1000/minute') -> Tremolo:
    app.install(RequestID())
    app.install(TrustedHosts(['testserver', '127.0.0.1', 'localhost']))
    app.install(Compression())
    app.install(SecurityHeaders())
    app.install(RateLimiter(rate))
    app.install(CORS([ORIGIN], allow_credentials=True))
    app.install(Sessions(SECRET))
    app.install(CSRF(SECRET))
    app.install(BackgroundTasks())
    return app


@pytest.fixture
def stack(tmp_path):
    app = full_stack(Tremolo())
    path = tmp_path / 'page.html'
    path.write_text('<p>static</p>' * 200)

    @app.route('/')
    async def index(session):
        return f'visits: {session.get("visits", 0)}'

    @app.route('/page')
    async def page(response, **server):
        return await response.sendfile(path)

    @app.route('/form')
    async def form(session, csrf_token):
        session['seen_form'] = True
        return csrf_token

    @app.post('/save')
    async def save(request, session):
        session['saved'] = (await request.form())['value']
        return 'saved'

    @app.route('/boom')
    async def boom(**server):
        raise RuntimeError('hidden')

    @app.route('/echo')
    async def echo(websocket):
        await websocket.accept()
        async for message in websocket:
            await websocket.send(message)

    @app.route('/events')
    async def events(sse):
        for number in range(3):
            await sse.send({'n': number}, id=str(number))

    return app


async def test_every_header_on_one_response(stack):
    async with TestClient(stack) as client:
        response = await client.get('/', headers={'Origin': ORIGIN, 'Accept-Encoding': 'gzip'})
    assert response.status == 200 and response.text == 'visits: 0'
    for name in ('x-request-id', 'x-content-type-options', 'access-control-allow-origin',
                 'ratelimit', 'ratelimit-policy'):
        assert response.header(name), name
    assert response.header('vary') == 'Origin, Accept-Encoding'
    assert response.header('set-cookie') is None  # an empty session read: nothing saved


@pytest.mark.parametrize('path, status', [('/nowhere', 404), ('/boom', 500)])
async def test_errors_carry_cors_security_and_request_id(stack, path, status):
    async with TestClient(stack) as client:
        response = await client.get(path, headers={'Origin': ORIGIN})
    assert response.status == status and b'hidden' not in response.body
    assert response.header('access-control-allow-origin') == ORIGIN
    assert response.header('x-content-type-options') == 'nosniff'
    assert response.header('x-request-id')


async def test_429_carries_cors_and_the_request_id():
    app = full_stack(Tremolo(), rate='1/minute')

    @app.route('/')
    async def index(**server):
        return 'ok'

    async with TestClient(app) as client:
        await client.get('/')
        refused = await client.get('/', headers={'Origin': ORIGIN, 'X-Request-ID': 'r-429'})
    assert refused.status == 429
    assert refused.header('access-control-allow-origin') == ORIGIN
    assert refused.header('x-request-id') == 'r-429' and refused.header('retry-after')


async def test_sessions_and_csrf_together(stack):
    async with TestClient(stack) as client:
        form = await client.get('/form')
        cookies = '; '.join(value.split(';')[0] for name, value in form.header_list
                            if name.lower() == 'set-cookie')
        assert 'session=' in cookies and 'csrftoken=' in cookies
        refused = await client.post('/save', headers={'Cookie': cookies},
                                    form={'value': 'forged'})
        saved = await client.post('/save', headers={'Cookie': cookies},
                                  form={'value': 'kept', 'csrf_token': form.text})
    assert refused.status == 403
    assert refused.header('set-cookie') is None  # the refused request changed nothing
    assert saved.status == 200
    [session_cookie] = [value for name, value in saved.header_list
                        if name.lower() == 'set-cookie' and value.startswith('session=')]
    assert session_cookie


async def test_head_and_ranges_pass_through(stack):
    async with TestClient(stack) as client:
        head = await client.head('/page', headers={'Accept-Encoding': 'gzip'})
        ranged = await client.get('/page', headers={'Accept-Encoding': 'gzip',
                                                    'Range': 'bytes=0-8'})
        whole = await client.get('/page', headers={'Accept-Encoding': 'gzip'})
    assert head.status == 200 and head.body == b''
    assert head.header('content-length') == str(len('<p>static</p>') * 200)
    assert head.header('x-request-id') and head.header('content-encoding') is None
    assert ranged.status == 206 and ranged.body == b'<p>static'
    assert ranged.header('content-encoding') is None
    assert whole.header('content-encoding') == 'gzip'
    assert gzip.decompress(whole.body) == b'<p>static</p>' * 200


async def test_a_websocket_upgrade_passes_through(stack):
    async with TestClient(stack) as client:
        websocket = await client.websocket('/echo', headers={'Origin': ORIGIN})
        await websocket.send('hello')
        assert await websocket.receive() == 'hello'
        await websocket.close()


async def test_an_event_stream_is_compressed_event_by_event(stack):
    async with TestClient(stack) as client:
        response = await client.get('/events', headers={'Accept-Encoding': 'gzip'})
    assert response.header('content-encoding') == 'gzip'
    decompressor = zlib.decompressobj(31)
    events = [decompressor.decompress(chunk) for chunk in response.chunks]
    assert events[:3] == [b'id: %d\ndata: {"n":%d}\n\n' % (n, n) for n in range(3)]


async def test_compression_runs_inside_the_bandwidth_limiter():
    app = Tremolo()
    app.install(Compression())
    app.install(BandwidthLimiter(download_rate=64 * KiB, scope='worker'))
    body = b'{"value": 12345}\n' * 60000  # 1 MiB, very compressible
    seen_filters = []

    @app.route('/data')
    async def data(response, **server):
        response_filters = response.filters
        seen_filters.append(response_filters)
        return body

    async with TestClient(app) as client:
        started = time.monotonic()
        response = await client.get('/data', headers={'Accept-Encoding': 'gzip'})
        seconds = time.monotonic() - started
    assert gzip.decompress(response.body) == body
    # What is paced is the few KiB of compressed bytes (16 s for the plain MiB at this rate).
    assert seconds < 5
    [filters] = seen_filters
    assert isinstance(filters[-1], Pacer) and len(filters) == 2  # compression, then pacing


async def test_a_compressed_event_stream_through_the_limiter_over_real_sockets():
    app = Tremolo()
    app.install(Compression())
    app.install(BandwidthLimiter(download_rate=256 * KiB))
    release = asyncio.Event()

    @app.route('/events')
    async def events(sse):
        await sse.send('first')
        await release.wait()
        await sse.send('second')

    async with serve(app) as server:
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            async with session.get(server.url + '/events',
                                   headers={'Accept-Encoding': 'gzip'}) as response:
                assert response.headers['Content-Encoding'] == 'gzip'
                assert response.headers['Content-Type'].startswith('text/event-stream')
                decompressor = zlib.decompressobj(31)
                first = await asyncio.wait_for(response.content.readany(), 5)
                assert decompressor.decompress(first) == b'data: first\n\n'
                release.set()
                assert decompressor.decompress(await response.read()) == b'data: second\n\n'


async def test_the_access_log_has_the_id_over_real_sockets(stack, caplog):
    caplog.set_level(logging.INFO, logger='tremolo.access')
    async with serve(stack, access_log=True) as server:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + '/',
                                   headers={'X-Request-ID': 'over-the-wire'}) as response:
                assert response.headers['X-Request-ID'] == 'over-the-wire'
    lines = [record.getMessage() for record in caplog.records if record.name == 'tremolo.access']
    assert any(line.endswith(' id=over-the-wire') for line in lines)
    assert all(record.request_id == 'over-the-wire' for record in caplog.records
               if record.name == 'tremolo.access')


async def test_the_full_stack_over_real_sockets(stack):
    async with serve(stack) as server:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as session:
            async with session.get(server.url + '/form', headers={'Origin': ORIGIN}) as response:
                assert response.status == 200
                assert response.headers['Access-Control-Allow-Origin'] == ORIGIN
                token = await response.text()
            async with session.post(server.url + '/save',
                                    data={'value': 'wire', 'csrf_token': token}) as response:
                assert response.status == 200
            async with session.get(server.url + '/page') as response:
                # aiohttp offers what it can decode (zstd and br when their libraries are
                # installed) and decodes what it gets.
                assert response.headers['Content-Encoding'] in ('gzip', 'br', 'zstd')
                assert await response.text() == '<p>static</p>' * 200
            async with session.ws_connect(server.url + '/echo') as websocket:
                await websocket.send_str('over the wire')
                assert (await websocket.receive()).data == 'over the wire'


async def test_a_compressed_event_stream_still_gets_its_keepalive_comments():
    app = Tremolo()
    app.install(Compression())

    @app.route('/quiet')
    async def quiet(sse):
        await sse.send('hello')
        await asyncio.sleep(0.35)  # silence: keep-alive comments fill it
        await sse.send('bye')

    async with TestClient(app, sse_keepalive=0.1) as client:
        response = await client.get('/quiet', headers={'Accept-Encoding': 'gzip'})
    assert response.header('content-encoding') == 'gzip'
    body = gzip.decompress(response.body)
    assert body.startswith(b'data: hello\n\n') and body.endswith(b'data: bye\n\n')
    assert body.count(b': keep-alive\n\n') >= 2
