"""The ASGI ``websocket`` protocol against raw ASGI applications, in process and over sockets."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from tremolo.testing import TestClient, WebSocketRejected, serve
from tremolo.websocket import WebSocketClosed


def client_of(app, **options) -> TestClient:
    options.setdefault('lifespan', 'off')
    return TestClient(app, **options)


def echo_app(log: list, *, subprotocol=None, headers=()):
    async def app(scope, receive, send):
        assert scope['type'] == 'websocket'
        log.append(scope)
        assert await receive() == {'type': 'websocket.connect'}
        await send({'type': 'websocket.accept', 'subprotocol': subprotocol,
                    'headers': list(headers)})
        while True:
            message = await receive()
            if message['type'] == 'websocket.disconnect':
                log.append(message)
                return
            if message.get('text') == 'close please':
                await send({'type': 'websocket.close', 'code': 4001, 'reason': 'bye'})
                log.append(await receive())
                return
            if message.get('text') is not None:
                await send({'type': 'websocket.send', 'text': message['text'].upper()})
            else:
                await send({'type': 'websocket.send', 'bytes': message['bytes'][::-1]})
    return app


async def test_the_websocket_scope():
    log: list = []
    async with client_of(echo_app(log)) as client:
        websocket = await client.websocket('/chat?room=1', subprotocols=('v1', 'v2'))
        await websocket.close()
    scope = log[0]
    assert scope['type'] == 'websocket'
    assert scope['asgi'] == {'version': '3.0', 'spec_version': '2.5'}
    assert scope['scheme'] == 'ws'
    assert scope['path'] == '/chat' and scope['query_string'] == b'room=1'
    assert scope['subprotocols'] == ['v1', 'v2']
    assert 'method' not in scope
    assert 'websocket.http.response' in scope['extensions']


async def test_accept_with_subprotocol_and_headers_then_echo_text_and_bytes():
    log: list = []
    app = echo_app(log, subprotocol='v2', headers=[(b'x-accepted', b'yes')])
    async with client_of(app) as client:
        websocket = await client.websocket('/', subprotocols=('v1', 'v2'))
        assert websocket.subprotocol == 'v2'
        assert websocket.response.header('x-accepted') == 'yes'
        await websocket.send('hello')
        assert await websocket.receive() == 'HELLO'
        await websocket.send(b'\x01\x02\x03')
        assert await websocket.receive() == b'\x03\x02\x01'
        close = await websocket.close(4000, 'done here')
        assert close.code == 4000
        await asyncio.sleep(0.01)
    assert log[-1] == {'type': 'websocket.disconnect', 'code': 4000, 'reason': 'done here'}


async def test_the_app_closes_with_code_and_reason():
    log: list = []
    async with client_of(echo_app(log)) as client:
        websocket = await client.websocket('/')
        await websocket.send('close please')
        with pytest.raises(WebSocketClosed) as caught:
            await websocket.receive()
        assert (caught.value.code, caught.value.reason) == (4001, 'bye')
        await asyncio.sleep(0.01)
    assert log[-1]['type'] == 'websocket.disconnect' and log[-1]['code'] == 4001


async def test_a_dropped_connection_is_a_disconnect_1006():
    log: list = []
    async with client_of(echo_app(log)) as client:
        websocket = await client.websocket('/')
        await websocket.connection.close()
        for _ in range(100):
            if log[-1].get('type') == 'websocket.disconnect':
                break
            await asyncio.sleep(0.01)
    assert log[-1] == {'type': 'websocket.disconnect', 'code': 1006, 'reason': ''}


async def test_close_before_accept_refuses_with_403():
    async def app(scope, receive, send):
        await receive()
        await send({'type': 'websocket.close'})

    async with client_of(app) as client:
        with pytest.raises(WebSocketRejected) as caught:
            await client.websocket('/')
    assert caught.value.response.status == 403


async def test_the_denial_response_extension():
    async def app(scope, receive, send):
        await receive()
        await send({'type': 'websocket.http.response.start', 'status': 401,
                    'headers': [(b'content-type', b'text/plain'),
                                (b'www-authenticate', b'Bearer')]})
        await send({'type': 'websocket.http.response.body', 'body': b'who are you',
                    'more_body': True})
        await send({'type': 'websocket.http.response.body', 'body': b'?'})
        assert (await receive())['type'] == 'websocket.disconnect'

    async with client_of(app) as client:
        with pytest.raises(WebSocketRejected) as caught:
            await client.websocket('/')
    response = caught.value.response
    assert response.status == 401 and response.body == b'who are you?'
    assert response.header('www-authenticate') == 'Bearer'


async def test_permessage_deflate_is_agreed_and_used():
    log: list = []
    async with client_of(echo_app(log)) as client:
        websocket = await client.websocket('/', compress=True)
        assert websocket.compressed
        await websocket.send('a' * 10_000)
        assert await websocket.receive() == 'A' * 10_000
    async with client_of(echo_app(log), websocket_compression=False) as client:
        websocket = await client.websocket('/', compress=True)
        assert not websocket.compressed


async def test_a_message_above_the_size_limit_closes_with_1009():
    log: list = []
    async with client_of(echo_app(log), websocket_max_message_size=1000) as client:
        websocket = await client.websocket('/')
        await websocket.send(b'x' * 2000)
        close = await websocket.wait_close()
        assert close.code == 1009
        await asyncio.sleep(0.01)
    assert log[-1]['type'] == 'websocket.disconnect' and log[-1]['code'] == 1009


async def test_keepalive_pings_are_sent():
    log: list = []
    async with client_of(echo_app(log), websocket_ping_interval=0.05) as client:
        websocket = await client.websocket('/')
        event = await websocket.receive_event(timeout=2)
    assert type(event).__name__ == 'Ping'


async def test_errors_before_and_after_accept(caplog):
    async def app(scope, receive, send):
        await receive()
        if scope['path'] == '/after':
            await send({'type': 'websocket.accept'})
        raise RuntimeError('boom')

    caplog.set_level(logging.ERROR, 'tremolo')
    async with client_of(app) as client:
        with pytest.raises(WebSocketRejected) as caught:
            await client.websocket('/before')
        assert caught.value.response.status == 500
        websocket = await client.websocket('/after')
        close = await websocket.wait_close()
    assert close.code == 1011
    errors = [record for record in caplog.records
              if record.getMessage().startswith('error in the ASGI application')]
    assert len(errors) == 2 and all(str(record.exc_info[1]) == 'boom' for record in errors)


async def test_misuse_is_reported(caplog):
    async def app(scope, receive, send):
        await receive()
        if scope['path'] == '/send-first':
            await send({'type': 'websocket.send', 'text': 'x'})
        elif scope['path'] == '/nothing':
            return

    caplog.set_level(logging.ERROR, 'tremolo')
    async with client_of(app) as client:
        for path, logged in [('/send-first', 'websocket.send before websocket.accept'),
                             ('/nothing', 'without accepting or refusing'),
                             ]:
            with pytest.raises(WebSocketRejected) as caught:
                await client.websocket(path)
            assert caught.value.response.status == 500
            assert logged in caplog.text


async def test_send_after_close_raises_oserror_and_return_closes_normally():
    errors: list = []

    async def app(scope, receive, send):
        await receive()
        await send({'type': 'websocket.accept'})
        if scope['path'] == '/return':
            return
        await receive()  # the client's close
        try:
            await send({'type': 'websocket.send', 'text': 'too late'})
        except OSError as exc:
            errors.append(exc)

    async with client_of(app) as client:
        websocket = await client.websocket('/return')
        assert (await websocket.wait_close()).code == 1000
        websocket = await client.websocket('/')
        await websocket.close()
        await asyncio.sleep(0.01)
    assert len(errors) == 1


async def test_a_malformed_handshake_is_refused_without_the_app():
    called: list = []

    async def app(scope, receive, send):
        called.append(scope)

    async with client_of(app) as client:
        response = await client.get('/', headers={'Upgrade': 'websocket',
                                                  'Connection': 'Upgrade'})
    assert response.status in (400, 426) and called == []


async def test_over_real_sockets_with_aiohttp():
    log: list = []
    async with serve(echo_app(log), lifespan='off') as server:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(server.url + '/ws', protocols=('chat',)) as ws:
                await ws.send_str('text')
                assert await ws.receive_str() == 'TEXT'
                await ws.send_bytes(b'abc')
                assert await ws.receive_bytes() == b'cba'
                await ws.send_str('close please')
                message = await ws.receive()
                assert message.type == aiohttp.WSMsgType.CLOSE
                assert (message.data, message.extra) == (4001, 'bye')
