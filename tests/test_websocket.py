"""WebSocket handlers in process, through `TestClient.websocket` and raw bytes."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tremolo import Forbidden, RegistrationError, Tremolo, WebSocketClosed
from tremolo.http.websocket import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    Data,
    Ping,
    Pong,
    encode_frame,
)
from tremolo.testing import TestClient, TestWebSocket, WebSocketRejected
from tremolo.testing.client import build_request

HANDSHAKE = [('Upgrade', 'websocket'), ('Connection', 'Upgrade'),
             ('Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='), ('Sec-WebSocket-Version', '13')]


@pytest.fixture
def app() -> Tremolo:
    app = Tremolo()

    @app.route('/echo')
    async def echo(websocket):
        async for message in websocket:
            await websocket.send(message)

    @app.route('/either')
    async def either(request, websocket=None):
        if websocket is None:
            return f'plain {request.method}'
        await websocket.accept()
        await websocket.send('upgraded')

    @app.route('/closes')
    async def closes(websocket):
        await websocket.accept()
        await websocket.close(4000, 'done here')
        assert websocket.close_code == 4000

    @app.route('/events')
    async def events(websocket, globals):
        globals.events = []
        try:
            while True:
                globals.events.append(await websocket.receive())
        except WebSocketClosed as exc:
            globals.events.append(('closed', exc.code, exc.reason, websocket.close_code))

    @app.route('/typed')
    async def typed(websocket):
        await websocket.send_json({'text': await websocket.receive_text()})
        await websocket.send(await websocket.receive_bytes())
        await websocket.send_json(await websocket.receive_json())

    return app


async def test_echo(app):
    async with TestClient(app) as client:
        ws = await client.websocket('/echo')
        assert ws.response.status == 101 and not ws.compressed
        assert ws.response.header('upgrade') == 'websocket'
        await ws.send('hello')
        assert await ws.receive() == 'hello'
        await ws.send(b'\x00\xff')
        assert await ws.receive() == b'\x00\xff'
        await ws.send('é' * 100_000)
        assert await ws.receive() == 'é' * 100_000
        close = await ws.close(1000, 'bye')
        assert (close.code, close.reason) == (1000, '')
        await ws.connection.read_all()
        assert ws.closed


async def test_echo_compressed(app):
    async with TestClient(app) as client:
        ws = await client.websocket('/echo', compress=True)
        assert ws.compressed
        assert ws.response.header('sec-websocket-extensions') == 'permessage-deflate'
        for message in ('a' * 10_000, b'b' * 10_000, '', 'short'):
            await ws.send(message)
            assert await ws.receive() == message
        await ws.close()


async def test_compression_can_be_turned_off(app):
    async with TestClient(app, websocket_compression=False) as client:
        ws = await client.websocket('/echo', compress=True)
        assert not ws.compressed and ws.response.header('sec-websocket-extensions') is None
        await ws.send('x')
        assert await ws.receive() == 'x'


async def test_plain_request_to_a_websocket_only_handler_is_426(app):
    async with TestClient(app) as client:
        response = await client.get('/echo')
        assert response.status == 426
        assert response.header('upgrade') == 'websocket'
        assert response.header('sec-websocket-version') == '13'


async def test_plain_request_gets_none_when_the_handler_allows_it(app):
    async with TestClient(app) as client:
        assert (await client.get('/either')).text == 'plain GET'
        ws = await client.websocket('/either')
        assert await ws.receive() == 'upgraded'
        assert (await ws.wait_close()).code == 1000  # the handler returned: a normal close


@pytest.mark.parametrize('headers,status', [
    ({'Sec-WebSocket-Version': '8'}, 426),
    ({'Sec-WebSocket-Key': 'short'}, 400),
    ({'Sec-WebSocket-Key': None}, 400),
    ({'Connection': 'keep-alive'}, 400),
])
async def test_bad_handshakes(app, caplog, headers, status):
    items = [(name, headers.get(name, value)) for name, value in HANDSHAKE]
    items = [(name, value) for name, value in items if value is not None]
    caplog.set_level(logging.DEBUG, 'tremolo')
    async with TestClient(app) as client:
        response = await client.get('/echo', headers=items)
        assert response.status == status
        if status == 426:
            assert response.header('sec-websocket-version') == '13'
        assert (await client.get('/either')).status == 200  # still serving
    assert any('refused a WebSocket handshake' in record.getMessage() and
               record.levelno == logging.DEBUG for record in caplog.records)


async def test_handshake_must_be_get(app):
    @app.route('/any', methods=['GET', 'POST'])
    async def any_method(websocket):
        await websocket.send('x')

    async with TestClient(app) as client:
        assert (await client.post('/any', headers=HANDSHAKE)).status == 400
        assert (await client.get('/any', headers=HANDSHAKE)).status == 101


async def test_http10_upgrade_is_ignored(app):
    async with TestClient(app) as client:
        head = b'GET /either HTTP/1.0\r\n' + b''.join(
            f'{name}: {value}\r\n'.encode() for name, value in HANDSHAKE) + b'\r\n'
        assert (await client.raw(head)).endswith(b'plain GET')


async def test_origins(app):
    @app.route('/strict', websocket_origins=['https://Good.example'])
    async def strict(websocket):
        await websocket.send('ok')

    @app.route('/custom', websocket_origins=lambda origin: origin == 'null')
    async def custom(websocket):
        await websocket.send('ok')

    async with TestClient(app) as client:
        ws = await client.websocket('/strict', headers={'Origin': 'https://good.example'})
        assert await ws.receive() == 'ok'
        ws = await client.websocket('/strict')  # no Origin: not a browser
        assert await ws.receive() == 'ok'
        with pytest.raises(WebSocketRejected) as info:
            await client.websocket('/strict', headers={'Origin': 'https://evil.example'})
        assert info.value.response.status == 403
        ws = await client.websocket('/custom', headers={'Origin': 'null'})
        assert await ws.receive() == 'ok'
        with pytest.raises(WebSocketRejected):
            await client.websocket('/custom')


async def test_subprotocols(app):
    @app.route('/chat', websocket_subprotocols=['chat.v2', 'chat.v1'])
    async def chat(websocket):
        await websocket.accept()
        await websocket.send(f'{websocket.subprotocols} {websocket.subprotocol}')

    @app.route('/pick')
    async def pick(websocket):
        await websocket.accept(subprotocol=websocket.subprotocols[-1])
        await websocket.send(websocket.subprotocol)

    @app.route('/bad-pick')
    async def bad_pick(websocket):
        await websocket.accept(subprotocol='unoffered')

    async with TestClient(app) as client:
        ws = await client.websocket('/chat', subprotocols=('chat.v1', 'chat.v2'))
        assert ws.subprotocol == 'chat.v2'  # the server's preference wins
        assert await ws.receive() == "['chat.v1', 'chat.v2'] chat.v2"
        ws = await client.websocket('/chat', subprotocols=('other',))
        assert ws.subprotocol is None
        ws = await client.websocket('/pick', subprotocols=('a', 'b'))
        assert ws.subprotocol == 'b' and await ws.receive() == 'b'
        with pytest.raises(WebSocketRejected) as info:
            await client.websocket('/bad-pick', subprotocols=('a',))
        assert info.value.response.status == 500


async def test_refusing_before_accept(app):
    @app.route('/nothing')
    async def nothing(websocket):
        return None

    @app.route('/close-first')
    async def close_first(websocket):
        await websocket.close()

    @app.route('/forbidden')
    async def forbidden(websocket):
        raise Forbidden('members only')

    @app.route('/result')
    async def result(websocket, response):
        response.set_status(401)
        return 'log in first'

    async with TestClient(app) as client:
        for path, status, body in [('/nothing', 403, b''), ('/close-first', 403, b''),
                                   ('/forbidden', 403, b'members only'),
                                   ('/result', 401, b'log in first')]:
            with pytest.raises(WebSocketRejected) as info:
                await client.websocket(path)
            assert (info.value.response.status, info.value.response.body) == (status, body)


async def test_server_close(app):
    async with TestClient(app) as client:
        ws = await client.websocket('/closes')
        with pytest.raises(WebSocketClosed) as info:
            await ws.receive()  # answers the close frame
        assert (info.value.code, info.value.reason) == (4000, 'done here')
        await ws.connection.read_all()
        assert ws.closed


async def test_client_close_reaches_the_handler(app):
    async with TestClient(app) as client:
        ws = await client.websocket('/events')
        await ws.send('one')
        close = await ws.close(4001, 'leaving')
        assert (close.code, close.reason) == (4001, '')  # the code is echoed
        await ws.connection.read_all()
        assert client.runtime.globals.events == ['one', ('closed', 4001, 'leaving', 4001)]


async def test_close_without_code_is_1005(app):
    async with TestClient(app) as client:
        ws = await client.websocket('/events')
        ws.send_frame(CLOSE)
        close = await ws.wait_close()
        assert close.code == 1005  # answered with an empty close frame
        await ws.connection.read_all()
        assert client.runtime.globals.events == [('closed', 1005, '', 1005)]


async def test_connection_lost_is_1006(app):
    async with TestClient(app) as client:
        ws = await client.websocket('/events')
        await ws.send('x')
        await asyncio.sleep(0)
        await ws.connection.close()
        for _ in range(5):
            await asyncio.sleep(0)
        assert client.runtime.globals.events == ['x', ('closed', 1006, '', 1006)]


async def test_typed_receives(app):
    async with TestClient(app) as client:
        ws = await client.websocket('/typed')
        await ws.send('t')
        assert await ws.receive_json() == {'text': 't'}
        await ws.send(b'b')
        assert await ws.receive() == b'b'
        await ws.send_json([1, 'two'])
        assert await ws.receive_json() == [1, 'two']


@pytest.mark.parametrize('messages,code', [
    ([b'binary'], 1003),
    (['text', 'text'], 1003),
    (['text', b'b', '{not json'], 1007),
])
async def test_typed_receives_refuse_the_wrong_type(app, messages, code):
    async with TestClient(app) as client:
        ws = await client.websocket('/typed')
        for message in messages:
            await ws.send(message)
        assert (await ws.wait_close()).code == code


async def test_pings_and_pongs(app):
    @app.route('/pinger')
    async def pinger(websocket):
        waiter = await websocket.ping(b'hi')
        latency = await waiter
        await websocket.send(f'{latency >= 0}')
        await websocket.receive()

    async with TestClient(app) as client:
        ws = await client.websocket('/echo')
        ws.send_frame(PING, b'are you there')
        event = await ws.receive_event()
        assert isinstance(event, Pong) and event.data == b'are you there'
        ws = await client.websocket('/pinger')
        assert await ws.receive() == 'True'  # the test client answered the ping


async def test_control_frames_inside_a_fragmented_message(app):
    async with TestClient(app) as client:
        ws = await client.websocket('/echo')
        ws.send_frame(TEXT, b'frag', fin=False)
        ws.send_frame(PING, b'p')
        ws.send_frame(CONTINUATION, b'ment', fin=False)
        ws.send_frame(CONTINUATION, b'ed')
        event = await ws.receive_event()
        assert isinstance(event, Pong) and event.data == b'p'
        assert await ws.receive() == 'fragmented'


@pytest.mark.parametrize('frames,code', [
    ([(TEXT, b'unmasked', {'mask': False})], 1002),
    ([(TEXT, b'\xff\xfe', {})], 1007),
    ([(TEXT, b'\xce', {'fin': False}), (CONTINUATION, b'A', {})], 1007),
    ([(0x3, b'', {})], 1002),
    ([(TEXT, b'x', {'rsv1': True})], 1002),
    ([(CONTINUATION, b'x', {})], 1002),
    ([(PING, b'x' * 126, {})], 1002),
    ([(CLOSE, b'\x03\xed', {})], 1002),  # 1005 may not be sent
    ([(BINARY, b'x' * 2000, {})], 1009),
])
async def test_bad_frames_close_with_the_right_code(app, caplog, frames, code):
    caplog.set_level(logging.DEBUG, 'tremolo')
    async with TestClient(app, websocket_max_message_size=1000) as client:
        ws = await client.websocket('/events')
        for opcode, payload, flags in frames:
            ws.send_frame(opcode, payload, **flags)
        close = await ws.wait_close()
        assert close.code == code
        await ws.connection.read_all()
        assert ws.closed
        assert client.runtime.globals.events == [('closed', code, close.reason, code)]
        assert (await client.get('/either')).status == 200  # the worker keeps serving
    assert any(record.levelno == logging.DEBUG and 'closing a WebSocket' in record.getMessage()
               for record in caplog.records)
    assert not any(record.levelno >= logging.ERROR for record in caplog.records)


@pytest.mark.parametrize('bad,code', [
    pytest.param(encode_frame(0xB, b'', mask=b'abcd'), 1002, id='reserved control opcode'),
    pytest.param(encode_frame(CONTINUATION, b'x', mask=b'abcd'), 1002,
                 id='continuation with nothing to continue'),
    pytest.param(encode_frame(TEXT, b'\xff', mask=b'abcd'), 1007, id='invalid UTF-8'),
])
async def test_messages_in_front_of_a_bad_frame_are_delivered_first(app, bad, code):
    # Everything arrives in one read: the valid messages reach the handler, in order, and
    # only then does the connection fail with the bad frame's code.
    async with TestClient(app) as client:
        ws = await client.websocket('/events')
        ws.send_raw(encode_frame(TEXT, b'one', mask=b'abcd')
                    + encode_frame(BINARY, b'tw', fin=False, mask=b'abcd')
                    + encode_frame(CONTINUATION, b'o', mask=b'abcd') + bad)
        close = await ws.wait_close()
        assert close.code == code
        await ws.connection.read_all()
    assert client.runtime.globals.events == ['one', b'two', ('closed', code, close.reason, code)]


async def test_a_close_frame_in_front_of_a_bad_frame_wins(app):
    async with TestClient(app) as client:
        ws = await client.websocket('/events')
        ws.send_raw(encode_frame(TEXT, b'last', mask=b'abcd')
                    + encode_frame(CLOSE, b'\x03\xe8bye', mask=b'abcd')
                    + encode_frame(0xB, b'', mask=b'abcd'))
        close = await ws.wait_close()
        await ws.connection.read_all()
    assert close.code == 1000
    assert client.runtime.globals.events == ['last', ('closed', 1000, 'bye', 1000)]


async def test_max_message_size_route_option(app):
    @app.route('/small')
    async def small(websocket, websocket_max_message_size=10):
        await websocket.send(await websocket.receive())

    async with TestClient(app) as client:
        ws = await client.websocket('/small')
        await ws.send('0123456789')
        assert await ws.receive() == '0123456789'
        ws = await client.websocket('/small')
        await ws.send('0123456789!')
        assert (await ws.wait_close()).code == 1009
        ws = await client.websocket('/small', compress=True)
        await ws.send('0' * 11)  # a few bytes once compressed, too big inflated
        assert (await ws.wait_close()).code == 1009


async def test_handler_error_after_accept_closes_with_1011(app, caplog):
    @app.route('/boom')
    async def boom(websocket):
        await websocket.accept()
        raise RuntimeError('broken')

    async with TestClient(app) as client:
        ws = await client.websocket('/boom')
        assert (await ws.wait_close()).code == 1011
    assert any(record.levelno == logging.ERROR and record.exc_info
               and 'broken' in str(record.exc_info[1]) for record in caplog.records)


async def test_streams(app):
    @app.route('/stream')
    async def stream(websocket):
        sizes = [len(piece) async for piece in websocket.receive_stream()]

        async def produce():
            for size in sizes:
                yield b'x' * size

        await websocket.send_stream(produce())
        await websocket.send_stream(['a', 'b', 'c'])
        await websocket.send_stream([])

    async with TestClient(app) as client:
        ws = await client.websocket('/stream')
        ws.send_frame(BINARY, b'1' * 10, fin=False)
        ws.send_frame(CONTINUATION, b'2' * 20, fin=False)
        ws.send_frame(CONTINUATION, b'3' * 30)
        pieces = []
        while True:  # the raw frames, as the server fragmented them
            data = await ws.connection.receive()
            pieces += ws._reader.feed(data)
            if sum(1 for piece in pieces if isinstance(piece, Data) and piece.fin) == 3:
                break
        data_pieces = [(piece.data, piece.fin) for piece in pieces if isinstance(piece, Data)]
        assert data_pieces == [
            (b'x' * 10, False), (b'x' * 20, False), (b'x' * 30, False), (b'', True),
            ('a', False), ('b', False), ('c', False), ('', True), (b'', True),
        ]


async def test_abandoned_stream_skips_the_rest_of_its_message(app):
    @app.route('/first-piece')
    async def first_piece(websocket):
        async for piece in websocket.receive_stream():
            await websocket.send(f'first piece {piece}')
            break
        await websocket.send(f'next message {await websocket.receive()}')

    async with TestClient(app) as client:
        ws = await client.websocket('/first-piece')
        ws.send_frame(TEXT, b'a', fin=False)
        assert await ws.receive() == 'first piece a'
        ws.send_frame(CONTINUATION, b'b', fin=False)
        ws.send_frame(CONTINUATION, b'c')
        await ws.send('after')
        assert await ws.receive() == 'next message after'


async def test_reading_pauses_while_the_handler_is_behind(app):
    release = asyncio.Event()

    @app.route('/slow')
    async def slow(websocket):
        await websocket.accept()
        await release.wait()
        total = 0
        for _ in range(100):
            total += len(await websocket.receive())
        await websocket.send(str(total))

    async with TestClient(app, body_buffer_size=4096) as client:
        ws = await client.websocket('/slow')
        for _ in range(100):
            await ws.send(b'x' * 1000)
        await asyncio.sleep(0)
        assert not ws.connection.transport.reading  # backpressure: the socket is not read
        release.set()
        assert await ws.receive() == str(100 * 1000)
        assert ws.connection.transport.reading


async def test_send_waits_for_a_slow_client(app):
    sent = []

    @app.route('/flood')
    async def flood(websocket):
        for i in range(50):
            await websocket.send(b'x' * 10_000)
            sent.append(i)

    async with TestClient(app) as client:
        connection = client.connect(write_buffer_limit=50_000)
        connection.send(build_request('GET', '/flood', headers=HANDSHAKE))
        response = await connection.read_response()
        assert response.status == 101
        ws = TestWebSocket(connection, response, connection._received)
        await asyncio.sleep(0.05)
        assert len(sent) < 10  # the handler waits for the client to read
        for _ in range(50):
            assert len(await ws.receive()) == 10_000
        assert (await ws.wait_close()).code == 1000
        assert len(sent) == 50


async def test_keepalive_pings_drop_a_dead_client(app):
    async with TestClient(app, websocket_ping_interval=0.05,
                          websocket_ping_timeout=0.05) as client:
        ws = await client.websocket('/events')
        assert isinstance(await ws.receive_event(), Ping)
        # Not answered: the server gives up on the client.
        assert (await ws.wait_close()).code == 1011
        await ws.connection.read_all()
        assert ws.closed and ws.connection.transport.aborted
        assert client.runtime.globals.events == [('closed', 1006, 'keepalive ping timeout', 1006)]


async def test_keepalive_pings_answered_keep_the_connection(app):
    async with TestClient(app, websocket_ping_interval=0.02,
                          websocket_ping_timeout=0.05) as client:
        ws = await client.websocket('/echo')
        await ws.send('still here')
        assert await ws.receive() == 'still here'
        pings = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 0.3
        while loop.time() < deadline:
            event = await ws.receive_event()
            assert isinstance(event, Ping)
            pings += 1
            ws.send_frame(PONG, event.data)
        assert pings >= 3 and not ws.closed


async def test_server_names_and_registration(app):
    @app.route('/kwargs')
    async def kwargs(**server):
        return repr(server['websocket'])

    async with TestClient(app) as client:
        assert (await client.get('/kwargs', headers=HANDSHAKE)).text == 'None'

    bad = Tremolo()

    @bad.route('/sync')
    def sync(websocket):
        return None

    with pytest.raises(RegistrationError, match='async'):
        async with TestClient(bad):
            pass


async def test_frames_sent_with_the_handshake_are_kept(app):
    async with TestClient(app) as client:
        connection = client.connect()
        frames = (encode_frame(TEXT, b'early', mask=b'abcd')
                  + encode_frame(TEXT, b'bird', mask=b'efgh'))
        connection.send(build_request('GET', '/echo', headers=HANDSHAKE) + frames)
        response = await connection.read_response()
        assert response.status == 101
        ws = TestWebSocket(connection, response, connection._received)
        assert [await ws.receive(), await ws.receive()] == ['early', 'bird']


async def test_response_hooks_skip_the_101_and_run_for_a_refusal(app):
    # The 101 holds the handshake's headers and what follows is not HTTP: the on_response
    # hooks (documented in the middleware page) run for the refusals only.
    seen = []

    @app.on_request
    async def before(request):
        seen.append(('request', request.path))

    @app.on_response
    async def after(request, response):
        seen.append(('response', request.path, response.status))
        response.set_header('X-After', 'yes')

    @app.route('/refused')
    async def refused(websocket):
        raise Forbidden()

    async with TestClient(app) as client:
        ws = await client.websocket('/either')
        assert await ws.receive() == 'upgraded'
        assert 'x-after' not in ws.response.headers
        with pytest.raises(WebSocketRejected) as info:
            await client.websocket('/refused')
        assert info.value.response.header('x-after') == 'yes'
    assert seen == [('request', '/either'), ('request', '/refused'),
                    ('response', '/refused', 403)]
