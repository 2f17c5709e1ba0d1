"""What `tremolo.Response` offers besides the whole and streamed bodies (which tests/web cover):
interim responses, trailers, headers given already encoded, no Content-Type; and what a
handler may wait for on its connection (`WriteChannel.when_lost`)."""

from __future__ import annotations

import asyncio

import pytest

from tremolo import Tremolo
from tremolo.testing import TestClient


@pytest.fixture
def app():
    app = Tremolo()

    @app.route('/hints')
    async def hints(response, **server):
        response.send_interim(103, [('Link', '</a.css>; rel=preload; as=style')])
        return 'page'

    @app.route('/checksum')
    async def checksum(response, **server):
        await response.write(b'part one, ')
        await response.write(b'part two')
        await response.end(trailers={'X-Checksum': 'abc123'})

    @app.route('/trailers-only')
    async def trailers_only(response, **server):
        await response.end(b'whole', trailers=[('X-Count', '1')])

    @app.route('/raw')
    async def raw(response, **server):
        response.content_type = ''
        response.add_raw_headers(b'X-One: 1\r\nX-Two: 2\r\n')
        response.add_raw_headers(b'Server: mine\r\n', server=True)
        return b'raw'

    @app.route('/misuse')
    async def misuse(response, **server):
        with pytest.raises(ValueError):
            response.send_interim(200)
        with pytest.raises(ValueError):
            response.send_interim(101)
        with pytest.raises(ValueError):
            response.send_interim(103, [('Link', 'a\r\nb')])
        await response.start()
        with pytest.raises(RuntimeError):
            response.send_interim(103)
        with pytest.raises(RuntimeError):
            response.add_raw_headers(b'X: y\r\n')
        with pytest.raises(ValueError):
            await response.end(trailers=[('bad name', 'v')])
        return None

    return app


async def test_an_interim_response_goes_before_the_final_one(app):
    async with TestClient(app) as client:
        output = await client.raw(b'GET /hints HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n')
        old = await client.raw(b'GET /hints HTTP/1.0\r\n\r\n')
    assert output.startswith(b'HTTP/1.1 103 Early Hints\r\n'
                             b'Link: </a.css>; rel=preload; as=style\r\n\r\n'
                             b'HTTP/1.1 200 OK\r\n')
    assert output.endswith(b'page')
    assert old.startswith(b'HTTP/1.1 200 OK\r\n')  # RFC 9110 §15.2: no 1xx to HTTP/1.0


async def test_trailers_follow_the_last_chunk(app):
    async with TestClient(app) as client:
        response = await client.get('/checksum')
        whole = await client.get('/trailers-only')
        old = await client.raw(b'GET /checksum HTTP/1.0\r\n\r\n')
    assert response.body == b'part one, part two'
    assert response.trailers == {b'x-checksum': b'abc123'}
    assert whole.body == b'whole' and whole.trailers == {b'x-count': b'1'}
    assert whole.header('transfer-encoding') == 'chunked'
    assert old.endswith(b'\r\n\r\npart one, part two')  # HTTP/1.0: no chunks, no trailers


async def test_raw_headers_and_no_content_type(app):
    async with TestClient(app) as client:
        response = await client.get('/raw')
    assert response.header('x-one') == '1' and response.header('x-two') == '2'
    assert response.header('content-type') is None
    assert response.header('server') == 'mine' and response.header('date') is not None


async def test_misuse_is_refused(app):
    async with TestClient(app) as client:
        response = await client.get('/misuse')
    assert response.status == 200


async def test_when_lost_tells_a_handler_that_the_client_left():
    app = Tremolo()
    noticed = asyncio.Event()

    @app.route('/wait')
    async def wait(response, **server):
        await response.channel.when_lost()
        noticed.set()

    async with TestClient(app) as client:
        connection = client.connect()
        connection.send(b'GET /wait HTTP/1.1\r\nHost: t\r\n\r\n')
        await asyncio.sleep(0.05)
        assert not noticed.is_set()
        await connection.close()
        await asyncio.wait_for(noticed.wait(), 5)


async def test_body_stream_and_connection_extra_info():
    app = Tremolo()

    @app.route('/read', methods=['POST'])
    async def read(request, **server):
        pieces = []
        while True:
            piece = await request.body_stream.read()
            if not piece:
                break
            pieces.append(piece)
        peer = request.connection.extra_info('peername')
        return f'{b"".join(pieces).decode()} from {peer[0]}'

    @app.route('/none')
    async def none(request, **server):
        return str(request.body_stream)

    async with TestClient(app) as client:
        assert (await client.post('/read', body=b'abc')).text == 'abc from 127.0.0.1'
        assert (await client.get('/none')).text == 'None'


async def test_a_handler_may_go_on_after_its_response_without_holding_the_connection(caplog):
    app = Tremolo()
    log: list = []

    @app.route('/work')
    async def work(response, **server):
        await response.end(b'answered')
        response.channel.detach()
        await asyncio.sleep(0.3)
        log.append('work done')
        raise RuntimeError('failed after answering')

    @app.route('/next')
    async def following(**server):
        return 'next'

    async with TestClient(app) as client:
        connection = client.connect()
        assert (await connection.request('GET', '/work')).body == b'answered'
        assert (await connection.request('GET', '/next')).body == b'next'
        assert log == []
        await asyncio.sleep(0.5)
        assert (await connection.request('GET', '/next')).body == b'next'  # still open
    assert log == ['work done']
    assert 'failed after answering' in caplog.text  # logged, and the connection goes on
