"""The behaviour suite: one application per framework (Starlette, FastAPI, Django, Quart,
Litestar), each served by Tremolo on a real socket and driven by aiohttp.

Every framework's application (``tests/asgi/frameworks/``) answers the same endpoints; each
test runs against all five. Django has neither WebSocket nor the lifespan protocol: for it, the
WebSocket test checks the clean refusal and the lifespan test that it is served without.
These frameworks are CPython test extras.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import io
import logging
import platform
import sys

import aiohttp
import pytest

from tests.asgi.frameworks.common import FILE_DATA, PIECES
from tremolo.testing import serve

pytestmark = [
    pytest.mark.skipif(platform.python_implementation() != 'CPython',
                       reason='the frameworks are CPython-only test extras'),
    # Django's FileResponse reads its file synchronously, and says so when served by any
    # ASGI server; the file is still served.
    pytest.mark.filterwarnings(
        'ignore:StreamingHttpResponse must consume synchronous iterators'),
]

FRAMEWORKS = ['starlette', 'fastapi', 'django', 'quart', 'litestar']
#: Frameworks with WebSocket and lifespan support.
FULL = {'starlette', 'fastapi', 'quart', 'litestar'}


def load(name: str):
    if name == 'litestar' and sys.version_info < (3, 10):
        pytest.skip('this Litestar application uses Python 3.10 syntax')  # pragma: no cover
    return importlib.import_module(f'tests.asgi.frameworks.{name}_app')


@pytest.fixture(params=FRAMEWORKS)
def framework(request):
    return request.param


@pytest.fixture
async def server(framework):
    module = load(framework)
    async with serve(module.app, max_body_size=64 * 1024 * 1024) as running:
        running.module = module
        yield running


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as client:
        yield client


async def test_hello(server, session):
    async with session.get(server.url + '/') as response:
        assert response.status == 200
        assert await response.text() == 'Hello, World!'
        assert response.headers['Content-Type'].startswith('text/plain')
        assert response.headers['Content-Length'] == '13'


#: Frameworks whose GET routes do not take HEAD (they answer 405, a body-less head too).
NO_HEAD = {'fastapi', 'litestar'}


async def test_head(server, session, framework):
    async with session.head(server.url + '/') as response:
        assert response.status == (405 if framework in NO_HEAD else 200)
        assert await response.read() == b''
        if framework not in NO_HEAD:
            assert response.headers['Content-Length'] == '13'  # the length of the GET body


async def test_json(server, session):
    async with session.get(server.url + '/json') as response:
        assert response.status == 200
        assert response.headers['Content-Type'].startswith('application/json')
        assert await response.json() == {'message': 'Hello, World!'}


async def test_path_and_query_parameters(server, session):
    async with session.get(server.url + '/items/42?q=caf%C3%A9') as response:
        assert await response.json() == {'item_id': 42, 'q': 'café'}


async def test_streamed_response(server, session):
    async with session.get(server.url + '/stream') as response:
        assert response.status == 200
        assert response.headers.get('Transfer-Encoding') == 'chunked'
        assert await response.read() == b''.join(PIECES)


async def test_file_response(server, session):
    async with session.get(server.url + '/file') as response:
        assert response.status == 200
        assert await response.read() == FILE_DATA


async def test_a_16_mib_upload_read_in_pieces(server, session):
    body = bytes(range(256)) * (16 * 4096)  # 16 MiB
    async with session.post(server.url + '/upload', data=io.BytesIO(body)) as response:
        assert response.status == 200
        summary = await response.json()
    assert summary['size'] == len(body)
    assert summary['sha256'] == hashlib.sha256(body).hexdigest()
    assert summary['pieces'] > 1


async def test_multipart_form_upload(server, session):
    form = aiohttp.FormData()
    form.add_field('name', 'tremolo')
    form.add_field('document', b'z' * 100_000, filename='report.bin',
                   content_type='application/octet-stream')
    async with session.post(server.url + '/form', data=form) as response:
        assert response.status == 200
        assert await response.json() == {'name': 'tremolo', 'filename': 'report.bin',
                                          'size': 100_000}


async def test_websocket_echo_and_close(server, session, framework):
    if framework not in FULL:
        # Django serves no WebSocket: its handler raises, and the handshake gets a 500.
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await session.ws_connect(server.url + '/ws')
        assert caught.value.status == 500
        return
    async with session.ws_connect(server.url + '/ws') as ws:
        await ws.send_str('hello')
        assert await ws.receive_str() == 'hello'
        await ws.send_bytes(b'\x00\x01')
        assert await ws.receive_bytes() == b'\x00\x01'
        await ws.send_str('close')
        message = await ws.receive()
        assert message.type == aiohttp.WSMsgType.CLOSE
        assert (message.data, message.extra) == (4001, 'bye')


async def test_lifespan_state(server, session, framework):
    async with session.get(server.url + '/state') as response:
        assert response.status == 200
        assert await response.text() == ('yes' if framework in FULL else 'no lifespan')


async def test_background_task(server, session):
    async with session.post(server.url + '/background') as response:
        assert await response.text() == 'scheduled'
    for _ in range(100):
        async with session.get(server.url + '/background') as response:
            if await response.text() == 'done':
                return
        await asyncio.sleep(0.02)
    raise AssertionError('the background task never ran')


async def test_not_found(server, session):
    async with session.get(server.url + '/missing') as response:
        assert response.status == 404


async def test_an_exception_in_a_handler_is_a_500_and_the_server_goes_on(
        server, session, caplog):
    caplog.set_level(logging.CRITICAL)  # the frameworks log it their own way
    async with session.get(server.url + '/error') as response:
        assert response.status == 500
        assert 'handler failed' not in await response.text()
    async with session.get(server.url + '/') as response:
        assert response.status == 200


async def test_client_disconnect_mid_stream_stops_the_stream(server, session):
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(b'GET /infinite HTTP/1.1\r\nHost: t\r\n\r\n')
    received = 0
    while received < 100_000:
        received += len(await asyncio.wait_for(reader.read(65536), 5))
    writer.close()
    for _ in range(200):
        async with session.get(server.url + '/record/infinite') as response:
            if await response.text() == 'stopped':
                return
        await asyncio.sleep(0.025)
    raise AssertionError('the stream went on after the client left')


@pytest.mark.parametrize('name', ['starlette', 'fastapi'])
async def test_file_responses_use_pathsend_where_the_framework_does(name):
    """Starlette's FileResponse (and so FastAPI's) sends the file by its path when the server
    offers http.response.pathsend: Tremolo then sends it with sendfile."""
    from tremolo.testing import TestClient

    module = load(name)
    sent: list = []

    async def spy(scope, receive, send):
        async def recording(message):
            sent.append(message['type'])
            await send(message)
        await module.app(scope, receive, recording)

    async with TestClient(spy) as client:
        response = await client.get('/file')
    assert response.body == FILE_DATA
    assert [kind for kind in sent if kind.startswith('http.')] == [
        'http.response.start', 'http.response.pathsend']
