"""Real sockets on ephemeral ports, with aiohttp as the client."""

from __future__ import annotations

import asyncio
import io
import socket

import aiohttp
import pytest

from tremolo import Tremolo
from tremolo.testing import serve


@pytest.fixture
def app():
    app = Tremolo()

    @app.route('/hello')
    async def hello_world(**server):
        yield b'Hello '
        yield b'world!'

    @app.route('/latin')
    async def latin(**server):
        return 'Hello world!', 'latin-1'

    @app.route('/user/{id:int}')
    async def user(id, request):
        return {'id': id, 'q': request.query.get('q'), 'client': request.client[0]}

    @app.route('/upload', methods=['POST'], max_body_size=64 * 1024 * 1024)
    async def upload(request):
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
        return str(total)

    @app.route('/form', methods=['POST'])
    async def form(request):
        data = await request.form()
        upload = data.files['file'][0]
        return {'name': data['name'], 'file': upload.filename, 'size': upload.size,
                'type': upload.content_type}

    @app.route('/big')
    async def big(**server):
        for _ in range(64):
            yield b'x' * 16384

    @app.route('/cookie')
    async def cookie(request, response):
        response.set_cookie('seen', str(int(request.cookies.get('seen', '0')) + 1))
        return request.cookies.get('seen', 'none')

    @app.route('/boom')
    async def boom():
        raise RuntimeError('hidden')

    return app


async def test_aiohttp_client_end_to_end(app):
    async with serve(app) as server, aiohttp.ClientSession() as session:
        async with session.get(server.url + '/hello') as response:
            assert response.status == 200
            assert response.headers['Transfer-Encoding'] == 'chunked'
            assert await response.text() == 'Hello world!'
        async with session.get(server.url + '/latin') as response:
            assert response.charset == 'latin-1'
            assert await response.text() == 'Hello world!'
        async with session.get(server.url + '/user/7?q=x') as response:
            assert await response.json() == {'id': 7, 'q': 'x', 'client': '127.0.0.1'}
        async with session.get(server.url + '/big') as response:
            assert len(await response.read()) == 1024 * 1024
        async with session.get(server.url + '/boom') as response:
            assert response.status == 500 and await response.text() == 'Internal Server Error'
        async with session.get(server.url + '/nope') as response:
            assert response.status == 404
        # Everything above went over one kept-alive connection.
        assert len(server.worker.state.connections) == 1


async def test_streamed_upload_and_chunked_upload(app):
    payload = b'y' * (5 * 1024 * 1024)

    async def chunks():
        for start in range(0, len(payload), 100_000):
            yield payload[start:start + 100_000]

    async with serve(app) as server, aiohttp.ClientSession() as session:
        async with session.post(server.url + '/upload', data=io.BytesIO(payload)) as response:
            assert await response.text() == str(len(payload))
        async with session.post(server.url + '/upload', data=chunks()) as response:
            assert response.status == 200
            assert await response.text() == str(len(payload))


async def test_multipart_form_from_aiohttp(app):
    form = aiohttp.FormData()
    form.add_field('name', 'Zoë')
    form.add_field('file', b'\r\n--not-a-boundary\r\n' * 100, filename='a.bin',
                   content_type='application/x-test')
    async with serve(app) as server, aiohttp.ClientSession() as session:
        async with session.post(server.url + '/form', data=form) as response:
            assert await response.json() == {'name': 'Zoë', 'file': 'a.bin', 'size': 2000,
                                             'type': 'application/x-test'}


async def test_cookies_round_trip(app):
    # unsafe=True: aiohttp's jar otherwise ignores cookies from IP addresses like 127.0.0.1.
    jar = aiohttp.CookieJar(unsafe=True)
    async with serve(app) as server, aiohttp.ClientSession(cookie_jar=jar) as session:
        async with session.get(server.url + '/cookie') as response:
            assert await response.text() == 'none'
            morsel = response.cookies['seen']
            assert morsel['httponly'] is True and morsel['path'] == '/'
            assert morsel['samesite'] == 'Lax'
        async with session.get(server.url + '/cookie') as response:
            assert await response.text() == '1'


async def test_concurrent_clients_and_a_bad_one(app):
    async with serve(app) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(b'GARBAGE\r\n\r\n')
        await writer.drain()
        answer = await reader.read()
        assert answer.startswith(b'HTTP/1.1 400 Bad Request')
        writer.close()
        async with aiohttp.ClientSession() as session:
            async def fetch(number):
                async with session.get(f'{server.url}/user/{number}') as response:
                    return (await response.json())['id']

            assert await asyncio.gather(*(fetch(n) for n in range(50))) == list(range(50))


async def test_pipelining_over_a_socket(app):
    async with serve(app) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(b'GET /user/1 HTTP/1.1\r\nHost: x\r\n\r\n' * 3
                     + b'GET /user/4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    assert data.count(b'HTTP/1.1 200 OK') == 4
    assert data.index(b'"id":1') < data.index(b'"id":4')


async def test_client_that_stops_reading_does_not_grow_server_memory(app):
    produced = []

    @app.route('/endless')
    async def endless():
        for number in range(100_000):
            produced.append(number)
            yield b'z' * 65536

    async with serve(app) as server:
        sock = socket.create_connection((server.host, server.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b'GET /endless HTTP/1.1\r\nHost: x\r\n\r\n')
        await asyncio.sleep(0.5)
        stalled_at = len(produced)
        await asyncio.sleep(0.3)
        # The handler waits for the client (write drain): it is not producing any more.
        assert len(produced) == stalled_at
        assert stalled_at < 200  # bounded by the socket buffers, not by the 6 GiB it offers
        sock.close()
