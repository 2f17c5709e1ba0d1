"""What handler results become on the wire (in-process client)."""

from __future__ import annotations

import asyncio
import time

import pytest

from tremolo import Tremolo
from tremolo.testing import TestClient


async def test_bytes_are_sent_whole_with_content_length(app):
    @app.route('/')
    async def index():
        return b'abc'

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.status == 200
    assert response.body == b'abc'
    assert response.header('content-length') == '3'
    assert response.header('transfer-encoding') is None
    assert response.header('content-type') == 'text/html; charset=utf-8'


async def test_str_is_utf8(app):
    @app.route('/')
    async def index():
        return 'héllo'

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.body == 'héllo'.encode()


async def test_str_with_encoding_sets_the_charset(app):
    @app.route('/')
    async def index(**server):
        return 'Olá', 'latin-1'

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.body == 'Olá'.encode('latin-1')
    assert response.header('content-type') == 'text/html; charset=latin-1'


async def test_unknown_encoding_is_a_500(app):
    @app.route('/')
    async def index():
        return 'x', 'no-such-codec'

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.status == 500
    assert response.body == b'Internal Server Error'


@pytest.mark.parametrize('value', [{'a': [1, 2]}, [1, 'x', None]])
async def test_dict_and_list_are_json(app, value):
    @app.route('/')
    async def index():
        return value

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.json() == value
    assert response.header('content-type') == 'application/json'


async def test_json_keeps_a_route_content_type(app):
    @app.route('/', content_type='application/vnd.api+json')
    async def index():
        return {'a': 1}

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.header('content-type') == 'application/vnd.api+json'


async def test_none_is_an_empty_body(app):
    @app.route('/')
    async def index():
        return None

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.status == 200
    assert response.body == b''
    assert response.header('content-length') == '0'


async def test_async_generator_streams_each_chunk(app):
    @app.route('/')
    async def index():
        yield b'one'
        yield ''
        yield 'two'
        yield b''

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.header('transfer-encoding') == 'chunked'
    assert response.chunks == [b'one', b'two']


async def test_chunks_reach_the_client_before_the_generator_ends(app):
    release = asyncio.Event()

    @app.route('/')
    async def index():
        yield b'first'
        await release.wait()
        yield b'second'

    async with TestClient(app) as client:
        connection = client.connect()
        connection.send(b'GET / HTTP/1.1\r\nHost: t\r\n\r\n')
        received = b''
        while b'first' not in received:
            received += await connection.receive()
        assert b'second' not in received
        release.set()
        while not received.endswith(b'0\r\n\r\n'):
            received += await connection.receive()
        assert b'6\r\nsecond\r\n' in received


async def test_empty_generator_sends_an_empty_body(app):
    @app.route('/')
    async def index():
        return
        yield b'never'  # pragma: no cover

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.status == 200
    assert response.body == b''
    assert response.header('content-length') == '0'


async def test_sync_function_runs_in_a_thread(app):
    import threading

    main_thread = threading.get_ident()

    @app.route('/')
    def index(request):
        return f'{threading.get_ident() != main_thread} {request.path}'

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.text == 'True /'


@pytest.mark.parametrize('size', [1, 3])
async def test_thread_pool_size_bounds_the_sync_handlers_running_at_once(app, size):
    import threading

    lock = threading.Lock()
    running = peak = 0
    names = set()

    def enter():
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            names.add(threading.current_thread().name)
        time.sleep(0.05)
        with lock:
            running -= 1

    @app.route('/')
    def index():
        enter()
        return 'done'

    @app.route('/stream')
    def stream():
        enter()
        yield b'done'

    async with TestClient(app, thread_pool_size=size) as client:
        responses = await asyncio.gather(*(client.get(path) for path in ['/', '/stream'] * 4))
    assert [response.text for response in responses] == ['done'] * 8
    assert peak == size  # the others waited for a free thread
    assert len(names) == size and all(name.startswith('tremolo') for name in names)


async def test_sync_generator_streams(app):
    @app.route('/')
    def index():
        yield b'a'
        yield 'b'

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.chunks == [b'a', b'b']


async def test_unsupported_result_is_a_logged_500(app, caplog):
    @app.route('/')
    async def index():
        return 42

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.status == 500
    assert response.body == b'Internal Server Error'
    assert 'index' in caplog.text and 'returned int' in caplog.text


async def test_unsupported_yield_aborts_the_stream(app, caplog):
    @app.route('/')
    async def index():
        yield b'ok'
        yield 3.5

    async with TestClient(app) as client:
        connection = client.connect()
        connection.send(b'GET / HTTP/1.1\r\nHost: t\r\n\r\n')
        data = await connection.read_all()
    # The head was sent: the body is cut short (no final chunk) so the client sees a failure.
    assert data.startswith(b'HTTP/1.1 200 OK')
    assert not data.endswith(b'0\r\n\r\n')
    assert connection.transport.aborted
    assert 'yielded float' in caplog.text


async def test_response_write_then_return(app):
    @app.route('/')
    async def index(response):
        await response.write(b'x')
        await response.write('y')

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.chunks == [b'x', b'y']


async def test_response_end_without_writes_sends_whole(app):
    @app.route('/')
    async def index(response):
        await response.end(b'done')

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.body == b'done'
    assert response.header('content-length') == '4'


async def test_status_route_option_and_set_status(app):
    @app.route('/created', status=201)
    async def created():
        return b''

    @app.route('/teapot')
    async def teapot(response):
        response.set_status(418)
        return b'short and stout'

    @app.route('/custom')
    async def custom(response):
        response.set_status(299, 'Fine')
        return b''

    async with TestClient(app) as client:
        assert (await client.get('/created')).status == 201
        assert (await client.get('/teapot')).status == 418
        response = await client.get('/custom')
    assert (response.status, response.reason) == (299, 'Fine')


async def test_204_and_304_have_no_body(app):
    @app.route('/nothing')
    async def nothing(response):
        response.set_status(204)
        return b'ignored'

    @app.route('/same')
    async def same(response):
        response.set_status(304)
        return b'ignored'

    async with TestClient(app) as client:
        connection = client.connect()
        connection.send(b'GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n')
        first = await connection.receive()
        connection.send(b'GET /same HTTP/1.1\r\nHost: t\r\n\r\n')
        second = await connection.receive()
    assert first.startswith(b'HTTP/1.1 204 No Content\r\n')
    assert first.endswith(b'\r\n\r\n') and b'ignored' not in first
    assert b'content-length' not in first.lower()
    assert second.startswith(b'HTTP/1.1 304 Not Modified\r\n')
    assert b'ignored' not in second


async def test_head_sends_the_head_of_get_without_body(app):
    @app.route('/whole')
    async def whole():
        return b'12345'

    @app.route('/stream')
    async def stream(response):
        response.set_header('X-Set-In-Generator', 'yes')
        yield b'abc'
        yield b'def'

    async with TestClient(app) as client:
        connection = client.connect()
        connection.send(b'HEAD /whole HTTP/1.1\r\nHost: t\r\n\r\n')
        whole = await connection.read_response('HEAD')
        connection.send(b'HEAD /stream HTTP/1.1\r\nHost: t\r\n\r\n')
        stream_head = await connection.read_response('HEAD')
        connection.send(b'GET /whole HTTP/1.1\r\nHost: t\r\n\r\n')
        after = await connection.read_response()
    assert whole.header('content-length') == '5' and whole.body == b''
    assert stream_head.header('x-set-in-generator') == 'yes'
    assert stream_head.header('transfer-encoding') == 'chunked'
    # Nothing was left on the wire: the next response on the connection parses cleanly.
    assert after.body == b'12345'


async def test_http10_stream_is_close_delimited(app):
    @app.route('/')
    async def index():
        yield b'a'
        yield b'b'

    async with TestClient(app) as client:
        data = await client.raw(b'GET / HTTP/1.0\r\n\r\n')
    head, _, body = data.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 200 OK')
    assert b'Transfer-Encoding' not in head
    assert b'Connection: close' in head
    assert body == b'ab'


def test_seed_style_module_level_app_is_reusable():
    app = Tremolo()

    @app.route('/hello')
    async def hello_world(**server):
        return 'Hello world!', 'latin-1'

    async def twice():
        for _ in range(2):
            async with TestClient(app) as client:
                assert (await client.get('/hello')).body == b'Hello world!'

    asyncio.run(twice())
