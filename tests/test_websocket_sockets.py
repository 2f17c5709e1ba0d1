"""WebSocket over real sockets, with two independent clients: aiohttp and websockets."""

from __future__ import annotations

import asyncio
import base64
import os
import struct

import aiohttp
import pytest
import websockets

from tremolo import Tremolo, WebSocketClosed
from tremolo.testing import serve


@pytest.fixture
def app() -> Tremolo:
    app = Tremolo()

    @app.route('/echo')
    async def echo(websocket):
        async for message in websocket:
            await websocket.send(message)

    @app.route('/sum', websocket_subprotocols=['sum.v1'], websocket_max_message_size=1 << 30)
    async def total(websocket):  # streamed: a big limit costs no memory
        size = 0
        async for piece in websocket.receive_stream():
            size += len(piece)
        await websocket.send_json({'size': size, 'subprotocol': websocket.subprotocol})

    @app.route('/produce')
    async def produce(websocket):
        count = int(await websocket.receive())

        async def pieces():
            for i in range(count):
                yield bytes([i % 256]) * 65536

        await websocket.send_stream(pieces())
        await websocket.receive()

    @app.route('/hold')
    async def hold(websocket):
        await websocket.send('ready')
        try:
            await websocket.receive()
        except WebSocketClosed:
            pass

    return app


def ws_url(server, path: str) -> str:
    return server.url.replace('http://', 'ws://') + path


@pytest.mark.parametrize('compress', [0, 15])
async def test_aiohttp_echo(app, compress):
    async with serve(app) as server, aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(server, '/echo'), compress=compress) as ws:
            assert ws.compress == compress
            for message in ('hello', 'é' * 50_000, ''):
                await ws.send_str(message)
                assert (await ws.receive()).data == message
            await ws.send_bytes(os.urandom(300_000))
            assert len((await ws.receive()).data) == 300_000
            await ws.send_json({'a': [1, 2]})
            assert await ws.receive_json() == {'a': [1, 2]}
            await ws.ping(b'x')  # answered, or aiohttp would report a broken connection
        assert ws.close_code == 1000


@pytest.mark.parametrize('compression', [None, 'deflate'])
async def test_websockets_library_echo(app, compression):
    async with serve(app) as server:
        async with websockets.connect(ws_url(server, '/echo'), compression=compression) as ws:
            for message in ('hello', b'\x00' * 200_000, 'κόσμε' * 1000):
                await ws.send(message)
                assert await ws.recv() == message
            latency = await (await ws.ping())
            assert latency >= 0
            # A fragmented message from the client.
            await ws.send(iter(['frag', 'ment', 'ed']))
            assert await ws.recv() == 'fragmented'
        assert ws.close_code == 1000


async def test_websockets_library_streams_both_ways(app):
    async with serve(app) as server:
        async with websockets.connect(ws_url(server, '/sum'), subprotocols=['sum.v1'],
                                      max_size=None) as ws:
            assert ws.subprotocol == 'sum.v1'
            await ws.send(b'x' * 65536 for _ in range(40))  # 2.5 MiB in 40 fragments
            assert await ws.recv() == '{"size":2621440,"subprotocol":"sum.v1"}'
        async with websockets.connect(ws_url(server, '/produce'), max_size=None) as ws:
            await ws.send('64')
            sizes = []
            async for piece in ws.recv_streaming():
                sizes.append(len(piece))
            assert sum(sizes) == 64 * 65536 and len(sizes) > 1


async def test_too_big_message_is_1009_for_both_clients(app):
    async with serve(app, websocket_max_message_size=1000) as server:
        async with websockets.connect(ws_url(server, '/echo')) as ws:
            await ws.send('x' * 1001)
            with pytest.raises(websockets.ConnectionClosedError):
                await ws.recv()
        assert ws.close_code == 1009
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url(server, '/echo'), compress=15) as ws:
                await ws.send_str('y' * 5000)  # small compressed, too big inflated
                message = await ws.receive()
                assert message.type == aiohttp.WSMsgType.CLOSE and message.data == 1009


async def raw_connection(server, path='/echo'):
    reader, writer = await asyncio.open_connection(server.host, server.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(f'GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n'
                 f'Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n'
                 f'Sec-WebSocket-Version: 13\r\n\r\n'.encode())
    head = await reader.readuntil(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 101 ')
    return reader, writer


def masked(first: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    data = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((first, 0x80 | len(payload))) + mask + data


@pytest.mark.parametrize('frame,code', [
    (b'\x81\x02hi', 1002),  # unmasked
    (masked(0x81, b'\xff'), 1007),  # not UTF-8
    (masked(0xC1, b'x'), 1002),  # RSV1 without permessage-deflate
    (masked(0xA1, b'x'), 1002),  # RSV2
    (masked(0x83, b'x'), 1002),  # reserved opcode
    (masked(0x09, b''), 1002),  # fragmented ping
    (masked(0x80, b'x'), 1002),  # continuation without a message
    (masked(0x88, b'\x03\xee'), 1002),  # close code 1006 may not be sent
    (b'\x82\xfe\xff\xff' + os.urandom(4), 1009),  # 65535 bytes announced, limit 1000
])
async def test_raw_bad_frames_get_the_right_close_code(app, frame, code):
    async with serve(app, websocket_max_message_size=1000) as server:
        reader, writer = await raw_connection(server)
        writer.write(frame)
        data = await asyncio.wait_for(reader.read(), 5)  # until the server closes
        assert data[0] == 0x88 and struct.unpack('!H', data[2:4])[0] == code
        writer.close()
        # The worker keeps serving.
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url(server, '/echo')) as ws:
                await ws.send_str('still here')
                assert (await ws.receive()).data == 'still here'


async def test_server_shutdown_closes_with_1001(app):
    async with serve(app, graceful_shutdown_timeout=5) as server:
        session = aiohttp.ClientSession()
        ws = await session.ws_connect(ws_url(server, '/hold'))
        assert (await ws.receive()).data == 'ready'
        stopping = asyncio.ensure_future(server.worker.stop())
        message = await asyncio.wait_for(ws.receive(), 5)
        assert message.type == aiohttp.WSMsgType.CLOSE and message.data == 1001
        await ws.close()
        await asyncio.wait_for(stopping, 5)
        await session.close()


async def test_plain_http_still_served_next_to_websockets(app):
    @app.route('/page')
    async def page(request, websocket=None):
        return 'page' if websocket is None else 'never'

    async with serve(app) as server, aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(server, '/echo')) as ws:
            async with session.get(server.url + '/page') as response:
                assert await response.text() == 'page'
            async with session.get(server.url + '/echo') as response:
                assert response.status == 426
            await ws.send_str('ok')
            assert (await ws.receive()).data == 'ok'
