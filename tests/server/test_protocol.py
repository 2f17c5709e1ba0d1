"""The protocol on an in-memory transport: keep-alive, pipelining, errors, timeouts, flow."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tremolo import Tremolo
from tremolo.server.protocol import IDLE_LINGER
from tremolo.testing import TestClient


@pytest.fixture
def echo_app(app):
    @app.route('/')
    async def index(request):
        return f'{request.method} {request.path}'

    @app.route('/slow')
    async def slow():
        await asyncio.sleep(0.05)
        return 'slow'

    @app.route('/echo', methods=['POST'])
    async def echo(request):
        return await request.body()

    return app


async def test_keep_alive_serves_several_requests(echo_app):
    async with TestClient(echo_app) as client:
        connection = client.connect()
        for _ in range(3):
            response = await connection.request('GET', '/')
            assert response.text == 'GET /'
            assert response.header('connection') is None
        assert not connection.closed
        assert connection.protocol.connection.requests == 3


async def test_connection_close_is_honoured(echo_app):
    async with TestClient(echo_app) as client:
        connection = client.connect()
        response = await connection.request('GET', '/', headers={'Connection': 'close'})
        assert response.header('connection') == 'close'
        await asyncio.sleep(0)
        assert connection.closed


async def test_http10_keep_alive(echo_app):
    async with TestClient(echo_app) as client:
        connection = client.connect()
        connection.send(b'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n')
        response = await connection.read_response()
        assert response.header('connection') == 'keep-alive'
        connection.send(b'GET / HTTP/1.0\r\n\r\n')
        response = await connection.read_response()
        assert response.header('connection') == 'close'
        await asyncio.sleep(0)
        assert connection.closed


async def test_pipelined_requests_are_answered_in_order(echo_app):
    async with TestClient(echo_app) as client:
        connection = client.connect()
        connection.send(
            b'GET /slow HTTP/1.1\r\nHost: t\r\n\r\n'
            b'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello'
            b'GET /third HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n'
        )
        bodies = [(await connection.read_response()).text for _ in range(4)]
    assert bodies == ['slow', 'hello', 'Not Found', 'GET /']


async def test_leading_empty_lines_are_ignored(echo_app):
    async with TestClient(echo_app) as client:
        connection = client.connect()
        connection.send(b'\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n')
        assert (await connection.read_response()).text == 'GET /'


@pytest.mark.parametrize('raw, status', [
    (b'GET / HTTP/1.1\r\n\r\n', 400),
    (b'GET / HTTP/2.0\r\nHost: t\r\n\r\n', 505),
    (b'GET /\x01 HTTP/1.1\r\nHost: t\r\n\r\n', 400),
    (b'GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n', 400),
    (b'GET / HTTP/1.1\nHost: t\n\n', 400),
    (b'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n',
     400),
    (b'POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 501),
    (b'GET /' + b'a' * 9000 + b' HTTP/1.1\r\nHost: t\r\n\r\n', 414),
    (b'GET / HTTP/1.1\r\nHost: t\r\nX: ' + b'a' * 20000 + b'\r\n\r\n', 431),
    (b'GET / HTTP/1.1\r\nHost: t\r\nExpect: magic\r\n\r\n', 417),
    (b'GET /#fragment HTTP/1.1\r\nHost: t\r\n\r\n', 400),  # RFC 9112 §3.2
])
async def test_malformed_requests_get_their_status_and_a_close(echo_app, raw, status):
    async with TestClient(echo_app) as client:
        connection = client.connect()
        # What follows a rejected request must never be read as another request.
        connection.send(raw + b'GET / HTTP/1.1\r\nHost: t\r\n\r\n')
        data = await connection.read_all()
    assert data.startswith(b'HTTP/1.1 %d ' % status)
    assert b'Connection: close\r\n' in data
    assert data.count(b'HTTP/1.1') == 1
    assert connection.closed


async def test_bad_chunked_body_is_a_400_and_closes(echo_app):
    async with TestClient(echo_app) as client:
        connection = client.connect()
        connection.send(b'POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n'
                        b'zz\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n')
        data = await connection.read_all()
    assert data.startswith(b'HTTP/1.1 400 ')
    assert data.count(b'HTTP/1.1') == 1


async def test_head_timeout_is_a_408(echo_app):
    async with TestClient(echo_app, header_timeout=0.01) as client:
        connection = client.connect()
        connection.send(b'GET / HTTP/1.1\r\nHost:')
        await asyncio.sleep(0.03)
        client.state.sweep()
        data = await connection.read_all()
    assert data.startswith(b'HTTP/1.1 408 Request Timeout')


async def test_idle_keep_alive_connection_is_closed_silently(echo_app):
    async with TestClient(echo_app, keepalive_timeout=0.01) as client:
        connection = client.connect()
        await connection.request('GET', '/')
        client.state.sweep()
        assert not connection.closed
        await asyncio.sleep(0.03)
        client.state.sweep()
        assert await connection.read_all() == b''
        assert connection.closed


async def test_half_closed_client_still_gets_its_answers(echo_app):
    async with TestClient(echo_app) as client:
        connection = client.connect()
        connection.send(b'GET /slow HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n')
        connection.send_eof()
        data = await connection.read_all()
    assert data.count(b'HTTP/1.1 200 OK') == 2
    assert data.endswith(b'GET /')


@pytest.mark.parametrize('how', ['close', 'half-close'])
async def test_client_leaving_mid_body_is_not_a_server_error(echo_app, caplog, how):
    # Whether the connection is gone before the handler notices (a closed socket; TLS, where
    # the end of input closes the transport) or still open (a half-close), the handler's read
    # fails with ClientDisconnected and nothing is logged above debug.
    caplog.set_level(logging.DEBUG, 'tremolo')
    ended: asyncio.Queue[str] = asyncio.Queue()

    @echo_app.post('/upload')
    async def upload(request):
        try:
            await request.body()
        except BaseException as exc:
            ended.put_nowait(type(exc).__name__)
            raise

    async with TestClient(echo_app) as client:
        connection = client.connect()
        connection.send(b'POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc')
        await asyncio.sleep(0.01)
        if how == 'close':
            await connection.close()
        else:
            connection.send_eof()
        assert await asyncio.wait_for(ended.get(), 5) == 'ClientDisconnected'
        assert (await client.get('/')).text == 'GET /'  # the protocol finished the exchange
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert any('the client went away' in r.getMessage() for r in caplog.records)


async def test_slow_client_makes_the_handler_wait(app):
    progress = []

    @app.route('/')
    async def index():
        for number in range(40):
            progress.append(number)
            yield b'x' * 65536

    async with TestClient(app) as client:
        connection = client.connect(write_buffer_limit=65536)
        connection.send(b'GET / HTTP/1.1\r\nHost: t\r\n\r\n')
        await asyncio.sleep(0.02)
        # The handler is parked on drain, not producing into memory: what it made so far is
        # bounded by the bytes held for one flush plus the transport's buffer.
        assert len(progress) < 10
        response = await connection.read_response()
    assert len(response.body) == 40 * 65536 and len(progress) == 40


async def test_writer_sees_a_disconnect(app):
    outcome = asyncio.get_running_loop().create_future()

    @app.route('/')
    async def index(response):
        try:
            while True:
                await response.write(b'x' * 1000)
        except ConnectionError as exc:
            outcome.set_result(type(exc).__name__)

    async with TestClient(app) as client:
        connection = client.connect(write_buffer_limit=2000)
        connection.send(b'GET / HTTP/1.1\r\nHost: t\r\n\r\n')
        await connection.receive()
        await connection.close()
        assert await asyncio.wait_for(outcome, 2) == 'ClientDisconnected'


async def test_pipelined_bytes_above_the_limit_pause_reading(app):
    release = asyncio.Event()

    @app.route('/')
    async def index():
        await release.wait()
        return 'ok'

    async with TestClient(app, max_pipelined_bytes=100) as client:
        connection = client.connect()
        connection.send(b'GET / HTTP/1.1\r\nHost: t\r\n\r\n')
        await asyncio.sleep(0)
        connection.send(b'GET / HTTP/1.1\r\nHost: t\r\n\r\n' * 10)
        assert not connection.transport.reading
        release.set()
        for _ in range(11):
            assert (await connection.read_response()).text == 'ok'
        assert connection.transport.reading


async def test_upgrade_hands_the_connection_over(app):
    @app.route('/echo')
    async def upgrade(request, response):
        if request.head.upgrade != b'echo':
            return 'plain GET still works'
        stream = await response.upgrade('echo')
        while True:
            data = await stream.read()
            if not data:
                break
            stream.write(data.upper())
            await stream.drain()

    async with TestClient(app) as client:
        assert (await client.get('/echo')).text == 'plain GET still works'
        connection = client.connect()
        connection.send(b'GET /echo HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n'
                        b'Upgrade: echo\r\n\r\nearly')
        data = b''
        while b'EARLY' not in data:
            data += await connection.receive()
        assert data.startswith(b'HTTP/1.1 101 Switching Protocols\r\n')
        assert b'Upgrade: echo\r\nConnection: Upgrade\r\n' in data
        assert b'Content-Type' not in data and b'Transfer-Encoding' not in data
        connection.send(b'more')
        assert await connection.receive() == b'MORE'
        connection.send_eof()
        await connection.read_all()
        assert connection.closed


async def test_shutdown_closes_idle_and_finishes_busy(app):
    release = asyncio.Event()

    @app.route('/wait')
    async def wait():
        await release.wait()
        return 'done'

    @app.route('/')
    async def index():
        return 'ok'

    async with TestClient(app) as client:
        idle = client.connect()
        await idle.request('GET', '/')
        busy = client.connect()
        busy.send(b'GET /wait HTTP/1.1\r\nHost: t\r\n\r\n')
        await asyncio.sleep(0)
        client.state.close_idle()
        await asyncio.sleep(0)
        # The idle connection gets IDLE_LINGER seconds for a last request, then closes.
        assert not idle.closed and not busy.closed
        await asyncio.sleep(IDLE_LINGER + 0.1)
        assert idle.closed and not busy.closed
        release.set()
        response = await busy.read_response()
        assert response.text == 'done' and response.header('connection') == 'close'
        await asyncio.sleep(0)
        assert busy.closed


async def test_a_request_sent_as_the_server_stops_is_answered_and_the_connection_closed(app):
    """A keep-alive client may send its next request just as the server stops: the request
    is answered (with Connection: close) rather than met by a reset connection."""

    @app.route('/')
    async def index():
        return 'ok'

    async with TestClient(app) as client:
        connection = client.connect()
        await connection.request('GET', '/')
        client.state.close_idle()
        await asyncio.sleep(0.05)
        response = await connection.request('GET', '/')
        assert response.text == 'ok' and response.header('connection') == 'close'
        await asyncio.sleep(0)
        assert connection.closed


async def test_a_response_that_promised_keep_alive_before_the_stop_gets_one_last_request(app):
    """A response whose head went out (keep-alive) before the server began to stop: when it
    ends, the client may already be sending its next request, so that request is answered
    (with Connection: close) rather than met by a closed connection."""
    release = asyncio.Event()

    @app.route('/stream')
    async def stream():
        yield 'head sent, '
        await release.wait()
        yield 'then the end'

    @app.route('/')
    async def index():
        return 'ok'

    async with TestClient(app) as client:
        connection = client.connect()
        connection.send(b'GET /stream HTTP/1.1\r\nHost: t\r\n\r\n')
        data = b''
        while b'head sent' not in data:
            data += await connection.receive()
        assert b'Connection: close' not in data  # keep-alive was promised
        client.state.close_idle()  # the server begins to stop
        release.set()
        while not data.endswith(b'0\r\n\r\n'):
            data += await connection.receive()
        await asyncio.sleep(0.05)
        assert not connection.closed  # the client may be sending its next request
        response = await connection.request('GET', '/')
        assert response.text == 'ok' and response.header('connection') == 'close'
        await asyncio.sleep(0)
        assert connection.closed

    async with TestClient(app) as client:  # no next request: closed once the linger is over
        connection = client.connect()
        release.clear()
        connection.send(b'GET /stream HTTP/1.1\r\nHost: t\r\n\r\n')
        data = b''
        while b'head sent' not in data:
            data += await connection.receive()
        client.state.close_idle()
        release.set()
        await asyncio.sleep(IDLE_LINGER + 0.2)
        assert connection.closed


async def test_server_and_date_headers(app):
    @app.route('/')
    async def index():
        return ''

    async with TestClient(app, server_name='') as client:
        response = await client.get('/')
    assert response.header('server') is None
    assert response.header('date').endswith(' GMT')
    async with TestClient(app) as client:
        assert (await client.get('/')).header('server') == 'Tremolo'


async def test_thousands_of_pipelined_requests_do_not_recurse(app):
    @app.route('/')
    async def index():
        return 'ok'

    async with TestClient(app, max_pipelined_bytes=1_000_000) as client:
        connection = client.connect()
        connection.send(b'GET / HTTP/1.1\r\nHost: t\r\n\r\n' * 5000)
        data = b''
        while data.count(b'HTTP/1.1 200 OK') < 5000:
            data += await connection.receive()
    assert data.count(b'\r\n\r\nok') == 5000


async def test_whole_body_read_after_backpressure_paused_reading(app):
    release = asyncio.Event()

    @app.route('/', methods=['POST'])
    async def index(request):
        await release.wait()  # not reading yet: the body buffer fills, reading pauses
        return str(len(await request.body()))

    async with TestClient(app, body_buffer_size=10) as client:
        connection = client.connect()
        connection.send(b'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 40\r\n\r\n' + b'x' * 20)
        assert not connection.transport.reading
        connection.send(b'y' * 20)  # held by the transport, delivered on resume
        release.set()
        assert (await connection.read_response()).text == '40'


async def test_trailers_are_bounded_by_the_head_limits():
    app = Tremolo()

    @app.post('/sum')
    async def total(request):
        body = await request.body()
        return {'size': len(body), 'trailers': len(request.trailers)}

    def chunked(trailer_count):
        trailers = b''.join(b'X-T%d: v\r\n' % n for n in range(trailer_count))
        return (b'POST /sum HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n'
                b'5\r\nhello\r\n0\r\n' + trailers + b'\r\n')

    async def send(client, data):
        connection = client.connect()
        connection.send(data)
        try:
            return await connection.read_response()
        finally:
            await connection.close()

    async with TestClient(app, max_header_count=3, max_header_size=4096) as client:
        fine = await send(client, chunked(3))
        too_many = await send(client, chunked(4))
        too_big = await send(
            client, b'POST /sum HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n'
            b'0\r\nX-Big: ' + b'b' * 5000 + b'\r\n\r\n')
    assert fine.status == 200 and fine.json() == {'size': 5, 'trailers': 3}
    assert too_many.status == 431
    assert too_big.status == 431
