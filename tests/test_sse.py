"""Server-sent events (tremolo.sse): the format, the headers, keep-alive, a client that
leaves; in process and over real sockets with aiohttp reading the stream line by line."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tremolo import ClientDisconnected, EventStream, Tremolo, Unauthorized
from tremolo.sse import format_comment, format_event
from tremolo.testing import TestClient, serve
from tremolo.testing.client import build_request

# -- the format ----------------------------------------------------------------------------------


@pytest.mark.parametrize(('args', 'kwargs', 'expected'), [
    (('hello',), {}, b'data: hello\n\n'),
    (('',), {}, b'data: \n\n'),
    (('a\r\nb\rc\nd',), {}, b'data: a\ndata: b\ndata: c\ndata: d\n\n'),
    (('trailing\n',), {}, b'data: trailing\ndata: \n\n'),
    ((' spaced',), {}, b'data:  spaced\n\n'),
    (('x',), {'event': 'update', 'id': '42', 'retry': 1500},
     b'event: update\nid: 42\nretry: 1500\ndata: x\n\n'),
    ((b'caf\xc3\xa9',), {}, 'data: café\n\n'.encode()),
    (({'a': [1, 'é']},), {}, '{"a":[1,"é"]}'.encode().join([b'data: ', b'\n\n'])),
    ((7,), {}, b'data: 7\n\n'),
    ((), {'retry': 0}, b'retry: 0\n\n'),
    ((), {'id': ''}, b'id: \n\n'),
])
def test_format_event(args, kwargs, expected):
    assert format_event(*args, **kwargs) == expected


@pytest.mark.parametrize('kwargs', [
    {'data': 'x', 'event': 'a\nb'}, {'data': 'x', 'event': 'a\rb'}, {'data': 'x', 'id': '1\n2'},
    {'data': 'x', 'id': '1\x002'}, {'data': 'x', 'retry': -1}, {'data': 'x', 'retry': 1.5},
    {'data': 'x', 'retry': True}, {}, {'data': b'\xff'},
])
def test_format_event_rejects_field_injection(kwargs):
    with pytest.raises(ValueError):
        format_event(**kwargs)


def test_format_comment():
    assert format_comment() == b':\n'
    assert format_comment('ping') == b': ping\n'
    assert format_comment('a\r\nb') == b': a\n: b\n'


# -- in process ----------------------------------------------------------------------------------


@pytest.fixture
def app():
    app = Tremolo()
    app.state = {'cleaned': asyncio.Event(), 'seen': None}  # type: ignore[attr-defined]

    @app.get('/events')
    async def events(sse, request):
        assert isinstance(sse, EventStream)
        await sse.send('first\nsecond', event='greeting', id='1')
        await sse.comment('a comment')
        await sse.send({'n': 2}, id='2')
        await sse.send(retry=10)

    @app.get('/forever')
    async def forever(sse):
        app.state['seen'] = sse.last_event_id
        try:
            await sse.send('started')
            await asyncio.Event().wait()  # waits for something else than the client
        finally:
            app.state['cleaned'].set()

    @app.get('/quiet')
    async def quiet(sse):
        await sse.start()
        await asyncio.sleep(0.6)
        await sse.send('end')

    @app.get('/denied')
    async def denied(sse, request):
        if 'authorization' not in request.headers:
            raise Unauthorized('log in first')
        await sse.send('welcome')

    @app.get('/generator')
    async def generator(sse):
        for n in range(3):
            yield sse.event(n, event='tick', id=str(n))

    @app.get('/everything')
    async def everything(**server):
        return sorted(server)

    return app


async def test_events_headers_and_body(app):
    async with TestClient(app) as client:
        response = await client.get('/events')
    assert response.status == 200
    assert response.headers['content-type'] == 'text/event-stream; charset=utf-8'
    assert response.headers['cache-control'] == 'no-cache'
    assert response.headers['x-accel-buffering'] == 'no'
    assert response.headers['transfer-encoding'] == 'chunked'
    assert 'content-length' not in response.headers
    assert response.body == (b'event: greeting\nid: 1\ndata: first\ndata: second\n\n'
                             b': a comment\nid: 2\ndata: {"n":2}\n\nretry: 10\n\n')
    # Every event is sent as it is produced (its own chunk or joined in one turn of the loop).
    assert len(response.chunks) >= 1


async def test_sse_is_only_made_for_functions_that_name_it(app):
    async with TestClient(app) as client:
        everything = await client.get('/everything')
    assert 'sse' not in everything.json()
    assert everything.headers['content-type'] == 'application/json'
    assert 'cache-control' not in everything.headers


async def test_error_before_the_first_event_is_an_ordinary_response(app):
    async with TestClient(app) as client:
        denied = await client.get('/denied')
        allowed = await client.get('/denied', headers={'Authorization': 'x'})
    assert (denied.status, denied.text) == (401, 'log in first')
    assert denied.headers['content-type'] == 'text/plain; charset=utf-8'
    assert 'cache-control' not in denied.headers
    assert allowed.body == b'data: welcome\n\n'


async def test_generator_style(app):
    async with TestClient(app) as client:
        response = await client.get('/generator')
    assert response.headers['content-type'] == 'text/event-stream; charset=utf-8'
    assert response.body == b''.join(
        b'event: tick\nid: %d\ndata: %d\n\n' % (n, n) for n in range(3))


async def test_last_event_id(app):
    async with TestClient(app) as client:
        connection = client.connect()
        connection.send(build_request('GET', '/forever', headers={'Last-Event-ID': '41'}))
        assert b'data: started' in await connection.receive()
        await connection.close()
    assert app.state['seen'] == '41'


@pytest.mark.parametrize('how', ['close', 'eof'])
async def test_client_that_leaves_cancels_the_handler(app, how):
    async with TestClient(app) as client:
        connection = client.connect()
        connection.send(build_request('GET', '/forever'))
        assert b'data: started' in await connection.receive()
        if how == 'close':
            await connection.close()
        else:
            connection.send_eof()  # the client shuts down its side: gone for an event stream
        await asyncio.wait_for(app.state['cleaned'].wait(), 1.0)
        assert connection.closed


async def test_keepalive_comment_during_silence(app):
    async with TestClient(app, sse_keepalive=0.1) as client:
        response = await client.get('/quiet')
    assert response.body.count(b': keep-alive\n\n') >= 2
    assert response.body.endswith(b'data: end\n\n')


async def test_keepalive_can_be_disabled(app):
    async with TestClient(app, sse_keepalive=0) as client:
        response = await client.get('/quiet')
    assert response.body == b'data: end\n\n'


async def test_head_request_ends_the_stream(app):
    async with TestClient(app) as client:
        response = await client.head('/forever')
    assert response.status == 200 and response.body == b''
    assert response.headers['content-type'] == 'text/event-stream; charset=utf-8'


async def test_send_on_a_closed_stream_raises(app):
    errors = []

    @app.get('/after-close')
    async def after_close(sse, response):
        await sse.send('one')
        await response.end()
        assert sse.closed
        try:
            await sse.send('two')
        except ClientDisconnected as exc:
            errors.append(exc)

    async with TestClient(app) as client:
        response = await client.get('/after-close')
    assert response.body == b'data: one\n\n'
    assert len(errors) == 1


async def test_server_stop_ends_event_streams(app):
    async with serve(app) as server, aiohttp.ClientSession() as session:
        async with session.get(server.url + '/forever') as response:
            assert await response.content.readline() == b'data: started\n'
            started = time.monotonic()
            await server.worker.stop()
            await asyncio.wait_for(app.state['cleaned'].wait(), 2.0)
            assert time.monotonic() - started < 2.0  # not the graceful shutdown timeout


# -- real sockets --------------------------------------------------------------------------------


async def read_event(content: aiohttp.StreamReader) -> list[str]:
    """The field lines of the next event (comments skipped), read line by line."""
    lines: list[str] = []
    while True:
        line = (await content.readline()).decode()
        assert line, 'the stream ended'
        line = line.rstrip('\n')
        if not line:
            if lines:
                return lines
            continue
        if not line.startswith(':'):
            lines.append(line)


async def test_streaming_client_reads_events_as_they_come(app):
    async with serve(app) as server, aiohttp.ClientSession() as session:
        async with session.get(server.url + '/events') as response:
            assert response.headers['Content-Type'] == 'text/event-stream; charset=utf-8'
            assert await read_event(response.content) == [
                'event: greeting', 'id: 1', 'data: first', 'data: second']
            assert await read_event(response.content) == ['id: 2', 'data: {"n":2}']
            assert await read_event(response.content) == ['retry: 10']
            assert await response.content.read() == b''


async def test_disconnect_is_detected_promptly_over_a_socket(app):
    async with serve(app) as server:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + '/forever') as response:
                assert await response.content.readline() == b'data: started\n'
                left = time.monotonic()
        await asyncio.wait_for(app.state['cleaned'].wait(), 1.0)
        assert time.monotonic() - left < 1.0
        for _ in range(100):
            if not server.worker.state.connections:
                break
            await asyncio.sleep(0.01)
        assert not server.worker.state.connections


async def test_slow_reader_does_not_pile_up_writes(app):
    sent = []

    @app.get('/flood')
    async def flood(sse):
        while True:
            await sse.send('x' * 1000)
            sent.append(1)

    async with serve(app) as server:
        reader, writer = await asyncio.open_connection('127.0.0.1', server.worker.options.port)
        writer.write(b'GET /flood HTTP/1.1\r\nHost: x\r\n\r\n')
        await reader.readuntil(b'\r\n\r\n')
        first = -1
        for _ in range(50):  # until the socket buffers are full and sending stops
            await asyncio.sleep(0.1)
            if len(sent) == first:
                break
            first = len(sent)
        await asyncio.sleep(0.3)
        # The client reads nothing: the handler waits for it instead of queueing more.
        assert len(sent) == first
        assert first * 1000 < 64 * 1024 * 1024
        writer.close()


async def test_events_over_http_1_0(app):
    # Without chunked coding, closing the connection ends the stream (RFC 9112 §6.3).
    async with TestClient(app) as client:
        raw = await client.raw(b'GET /events HTTP/1.0\r\nHost: x\r\n\r\n')
    head, _, body = raw.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 200 OK\r\n')
    assert b'Connection: close' in head and b'Transfer-Encoding' not in head
    assert body.startswith(b'event: greeting\nid: 1\ndata: first\n')
    assert body.endswith(b'retry: 10\n\n')
