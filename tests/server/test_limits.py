"""Connection limits and timeouts, in process: the sweep is called by hand, with tiny timeouts.

`ServerState.sweep` runs once a second in a server; here each test calls it when it wants the
deadlines checked, so nothing depends on the clock but the generous sleeps below.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from tremolo import Tremolo
from tremolo.testing import TestClient

HELLO = b'GET / HTTP/1.1\r\nHost: t\r\n\r\n'


@pytest.fixture
def limits_app(app):
    @app.route('/')
    async def index():
        return 'ok'

    @app.route('/echo', methods=['POST'])
    async def echo(request):
        return await request.body()

    @app.route('/sleep')
    async def sleep(request):
        await asyncio.sleep(float(request.query.get('s', '10')))
        return 'slept'

    @app.route('/stream')
    async def stream():
        yield b'started'
        await asyncio.sleep(10)
        yield b'never'

    return app


# -- max_connections ------------------------------------------------------------------------------

async def test_connections_above_max_connections_wait_unread_for_a_free_slot(limits_app):
    async with TestClient(limits_app, max_connections=2) as client:
        first, second = client.connect(), client.connect()
        assert client.state.full and not client.state.accepting
        third = client.connect()  # accepted by the event loop past the limit: it waits
        third.send(HELLO)
        assert not third.transport.reading
        assert len(client.state.connections) == 2 and list(client.state.waiting) == [
            third.protocol]
        assert (await first.request('GET', '/')).text == 'ok'
        await first.close()  # a slot frees: the waiting connection is read and answered
        assert (await third.read_response()).text == 'ok'
        assert third.transport.reading and not client.state.accepting
        await second.close()
        assert client.state.accepting  # below the limit: accepting again


async def test_a_waiting_connection_that_goes_away_is_forgotten(limits_app):
    async with TestClient(limits_app, max_connections=1) as client:
        first = client.connect()
        waiting = client.connect()
        await waiting.close()
        assert not client.state.waiting
        await first.close()
        assert client.state.accepting and not client.state.connections


async def test_at_the_limit_idle_keep_alive_connections_make_room(limits_app):
    async with TestClient(limits_app, max_connections=2) as client:
        idle, busy = client.connect(), client.connect()
        await idle.request('GET', '/')
        busy.send(b'GET /sleep?s=0.2 HTTP/1.1\r\nHost: t\r\n\r\n')
        waiting = client.connect()
        waiting.send(HELLO)
        client.state.sweep()  # the idle one is closed at once, not after keepalive_timeout
        await asyncio.sleep(0)
        assert idle.closed and not busy.closed
        assert (await waiting.read_response()).text == 'ok'
        assert (await busy.read_response()).text == 'slept'


async def test_without_a_limit_idle_connections_stay(limits_app):
    async with TestClient(limits_app) as client:
        idle = client.connect()
        await idle.request('GET', '/')
        client.state.sweep()
        assert not idle.closed and client.state.accepting


# -- max_connections_per_ip -----------------------------------------------------------------------

async def test_connections_above_the_per_address_limit_are_answered_503(limits_app, caplog):
    async with TestClient(limits_app, max_connections_per_ip=2) as client:
        a1 = client.connect(peer=('10.0.0.1', 1))
        a2 = client.connect(peer=('10.0.0.1', 2))
        other = client.connect(peer=('10.0.0.2', 1))
        with caplog.at_level(logging.DEBUG, logger='tremolo'):
            a3 = client.connect(peer=('10.0.0.1', 3))
            a3.send(HELLO)
            data = await a3.read_all()
        assert data.startswith(b'HTTP/1.1 503 Service Unavailable\r\n')
        assert b'Connection: close\r\n' in data
        assert 'refusing a connection from 10.0.0.1: 2 connections' in caplog.text
        for connection in (a1, a2, other):
            assert (await connection.request('GET', '/')).text == 'ok'
        await a1.close()
        a4 = client.connect(peer=('10.0.0.1', 4))  # a slot of 10.0.0.1 was freed
        assert (await a4.request('GET', '/')).text == 'ok'


async def test_unix_socket_clients_have_no_address_to_limit(limits_app):
    async with TestClient(limits_app, max_connections_per_ip=1) as client:
        connections = [client.connect(peer=None) for _ in range(3)]
        for connection in connections:
            assert (await connection.request('GET', '/')).text == 'ok'


# -- request head: header_timeout and the minimum data rate ---------------------------------------

async def test_first_request_is_due_within_header_timeout_of_the_connection(limits_app):
    async with TestClient(limits_app, header_timeout=0.01, keepalive_timeout=60) as client:
        silent = client.connect()
        await asyncio.sleep(0.03)
        client.state.sweep()
        assert await silent.read_all() == b''  # nothing came: closed without an answer


async def test_between_requests_keep_alive_applies_until_the_first_byte(limits_app):
    async with TestClient(limits_app, header_timeout=0.05, keepalive_timeout=60) as client:
        connection = client.connect()
        await connection.request('GET', '/')
        await asyncio.sleep(0.08)
        client.state.sweep()
        assert not connection.closed  # idle, within keepalive_timeout
        connection.send(b'GET / HT')
        client.state.sweep()
        assert not connection.closed
        await asyncio.sleep(0.08)
        client.state.sweep()
        assert (await connection.read_all()).startswith(b'HTTP/1.1 408 Request Timeout')


async def test_slowloris_head_is_cut_off_by_the_minimum_rate(limits_app):
    async with TestClient(limits_app, min_data_rate=1000, min_data_rate_grace=0.05) as client:
        slow = client.connect()
        fast = client.connect()
        for byte in b'GET / HTTP/1.1\r\nHo':
            slow.send(bytes([byte]))
        await asyncio.sleep(0.1)
        fast.send(b'GET / HT')  # just started: within its grace period
        client.state.sweep()
        data = await slow.read_all()
        assert data.startswith(b'HTTP/1.1 408 Request Timeout\r\n')
        assert not fast.closed
        fast.send(b'TP/1.1\r\nHost: t\r\n\r\n')
        assert (await fast.read_response()).text == 'ok'


async def test_min_data_rate_zero_turns_the_check_off(limits_app):
    async with TestClient(limits_app, min_data_rate=0, min_data_rate_grace=0) as client:
        slow = client.connect()
        slow.send(b'GET / HT')
        await asyncio.sleep(0.02)
        client.state.sweep()
        assert not slow.closed


# -- request body: the minimum data rate ----------------------------------------------------------

async def test_slow_post_is_answered_408_and_closed(limits_app):
    async with TestClient(limits_app, min_data_rate=1000, min_data_rate_grace=0.05) as client:
        connection = client.connect()
        connection.send(b'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nab')
        await asyncio.sleep(0.1)
        client.state.sweep()
        data = await connection.read_all()
    assert data.startswith(b'HTTP/1.1 408 Request Timeout\r\n')
    assert b'Connection: close\r\n' in data


async def test_slow_body_after_the_response_started_cuts_the_connection(app):
    @app.route('/', methods=['POST'])
    async def index(request, response):
        await response.write(b'first')
        async for _ in request.stream():
            pass

    async with TestClient(app, min_data_rate=1000, min_data_rate_grace=0.05) as client:
        connection = client.connect()
        connection.send(b'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nab')
        await asyncio.sleep(0.1)
        client.state.sweep()
        data = await connection.read_all()
    assert data.startswith(b'HTTP/1.1 200 OK\r\n')
    assert not data.endswith(b'0\r\n\r\n')  # no last chunk: the client sees it fail
    assert connection.transport.aborted


async def test_time_paused_by_backpressure_is_not_the_clients(app):
    release = asyncio.Event()

    @app.route('/', methods=['POST'])
    async def index(request):
        await release.wait()  # not reading: the buffer fills and reading pauses
        return str(len(await request.body()))

    async with TestClient(app, body_buffer_size=10, min_data_rate=1000,
                          min_data_rate_grace=0.05) as client:
        connection = client.connect()
        connection.send(b'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 40\r\n\r\n' + b'x' * 20)
        assert not connection.transport.reading
        await asyncio.sleep(0.15)
        client.state.sweep()  # 20 bytes in 0.15 s, but paused at once: not too slow
        assert not connection.closed
        connection.send(b'y' * 20)
        release.set()
        assert (await connection.read_response()).text == '40'


async def test_the_body_rate_starts_with_100_continue(app):
    gate = asyncio.Event()

    @app.route('/', methods=['POST'])
    async def index(request):
        await gate.wait()  # the client waits for 100 Continue meanwhile
        return await request.body()

    async with TestClient(app, min_data_rate=1000, min_data_rate_grace=0.05) as client:
        connection = client.connect()
        connection.send(b'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n'
                        b'Expect: 100-continue\r\n\r\n')
        await asyncio.sleep(0.1)
        client.state.sweep()
        assert not connection.closed
        gate.set()
        assert await connection.receive() == b'HTTP/1.1 100 Continue\r\n\r\n'
        connection.send(b'hello')
        assert (await connection.read_response()).text == 'hello'


# -- handler_timeout ------------------------------------------------------------------------------

async def test_a_handler_that_runs_too_long_is_cancelled_and_answered_503(app, caplog):
    cancelled = asyncio.Event()

    @app.route('/')
    async def index():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with TestClient(app, handler_timeout=0.01) as client:
        connection = client.connect()
        connection.send(HELLO)
        await asyncio.sleep(0.03)
        with caplog.at_level(logging.WARNING, logger='tremolo'):
            client.state.sweep()
            response = await connection.read_response()
        assert (response.status, response.text) == (503, 'Service Unavailable')
        assert response.header('connection') == 'close'
        assert cancelled.is_set()
        assert 'more than its handler_timeout: cancelled' in caplog.text


async def test_a_timed_out_stream_is_cut_short(limits_app):
    async with TestClient(limits_app, handler_timeout=0.01) as client:
        connection = client.connect()
        connection.send(b'GET /stream HTTP/1.1\r\nHost: t\r\n\r\n')
        assert b'started' in await connection.receive()
        await asyncio.sleep(0.03)
        client.state.sweep()
        data = await connection.read_all()
    assert b'never' not in data and not data.endswith(b'0\r\n\r\n')
    assert connection.transport.aborted


async def test_quick_handlers_are_not_affected_by_handler_timeout(limits_app):
    async with TestClient(limits_app, handler_timeout=0.05) as client:
        connection = client.connect()
        for _ in range(3):
            assert (await connection.request('GET', '/')).text == 'ok'
            await asyncio.sleep(0.03)
            client.state.sweep()
        assert not connection.closed


# -- options ------------------------------------------------------------------------------------

@pytest.mark.parametrize('name', ['max_connections', 'max_connections_per_ip', 'min_data_rate',
                                  'min_data_rate_grace', 'handler_timeout'])
def test_negative_limits_are_refused(name):
    from tremolo import Options

    with pytest.raises(ValueError, match=name):
        Options(**{name: -1})


# -- handler_timeout per route --------------------------------------------------------------------

async def test_handler_timeout_is_a_route_option():
    app = Tremolo()

    @app.route('/quick', handler_timeout=0.05)
    async def quick(**server):
        await asyncio.sleep(5)

    @app.route('/patient')
    async def patient(handler_timeout=0, **server):
        await asyncio.sleep(0.3)
        return 'waited'

    @app.route('/events')
    async def events(sse, **server):
        await sse.send('one')
        await asyncio.sleep(0.3)
        await sse.send('two')

    @app.route('/limited-events', handler_timeout=0.05)
    async def limited_events(sse, **server):
        await sse.send('one')
        await asyncio.sleep(5)

    async with TestClient(app, handler_timeout=0.1) as client:
        client.state.sweep_interval = 0.01
        client.state.stop()
        client.state.start()
        assert (await client.get('/quick')).status == 503
        assert (await client.get('/patient')).text == 'waited'
        # An event stream has no limit unless its route sets one.
        assert b'data: two' in (await client.get('/events')).body
        connection = client.connect()
        connection.send(b'GET /limited-events HTTP/1.1\r\nHost: t\r\n\r\n')
        assert b'data: one' in await connection.read_all(timeout=2)
