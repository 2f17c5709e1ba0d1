"""The request as handlers see it: head values and every way to read the body."""

from __future__ import annotations

import asyncio

from tremolo.testing import TestClient


async def test_head_values(app):
    @app.route('/path/{x}')
    async def show(request, x):
        return {
            'method': request.method, 'path': request.path, 'raw_path': request.raw_path.decode(),
            'query_string': request.query_string, 'version': request.version,
            'ua': request.headers['USER-AGENT'], 'has_ua': 'user-agent' in request.headers,
            'missing': request.headers.get('x-missing', 'default'),
            'cookies': request.cookies, 'client': list(request.client), 'host': request.host,
            'url': request.url, 'scheme': request.scheme, 'params': request.params,
            'keep_alive': request.keep_alive, 'has_body': request.has_body,
        }

    async with TestClient(app) as client:
        connection = client.connect(peer=('192.0.2.7', 5555))
        response = await connection.request(
            'GET', '/path/a%20b?x=1&y=%C3%A9',
            headers={'User-Agent': 'test/1', 'Cookie': 'a=1; b="two"', 'Host': 'example.com'},
        )
    assert response.json() == {
        'method': 'GET', 'path': '/path/a b', 'raw_path': '/path/a%20b',
        'query_string': 'x=1&y=%C3%A9', 'version': '1.1', 'ua': 'test/1', 'has_ua': True,
        'missing': 'default', 'cookies': {'a': '1', 'b': 'two'}, 'client': ['192.0.2.7', 5555],
        'host': 'example.com', 'url': 'http://example.com/path/a%20b?x=1&y=%C3%A9',
        'scheme': 'http', 'params': {'x': 'a b'}, 'keep_alive': True, 'has_body': False,
    }


async def test_absolute_form_target(app):
    @app.route('/p')
    async def show(request):
        return f'{request.path} {request.host} {request.query_string}'

    async with TestClient(app) as client:
        data = await client.raw(
            b'GET http://other.example:81/p?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
        )
    assert data.endswith(b'/p other.example:81 q=1')


async def test_body_json_text_form(app):
    @app.route('/body', methods=['POST'])
    async def body(request):
        return await request.body()

    @app.route('/json', methods=['POST'])
    async def json_(request):
        return {'got': await request.json()}

    @app.route('/text', methods=['POST'])
    async def text(request):
        return (await request.text()).upper()

    @app.route('/form', methods=['POST'])
    async def form(request):
        data = await request.form()
        return {'a': data.getlist('a'), 'b': data['b']}

    async with TestClient(app) as client:
        assert (await client.post('/body', body=b'\x00\x01')).body == b'\x00\x01'
        assert (await client.post('/json', json={'x': [1]})).json() == {'got': {'x': [1]}}
        invalid = await client.post('/json', body=b'{nope')
        assert invalid.status == 400 and invalid.text == 'body is not valid JSON'
        latin = await client.post(
            '/text', body='é'.encode('latin-1'),
            headers={'Content-Type': 'text/plain; charset=latin-1'},
        )
        assert latin.text == 'É'
        bad_utf8 = await client.post('/text', body=b'\xff')
        assert bad_utf8.status == 400
        form = await client.post('/form', body=b'a=1&a=2&b=x+y')
        assert form.status == 415  # no content type
        form = await client.post('/form', form={'a': '1', 'b': 'x y'})
        assert form.json() == {'a': ['1'], 'b': 'x y'}


async def test_stream_reads_in_pieces_in_constant_memory(app):
    sizes = []

    @app.route('/upload', methods=['POST'], max_body_size=10_000_000)
    async def upload(request):
        total = 0
        async for chunk in request.stream():
            sizes.append(len(chunk))
            total += len(chunk)
        return str(total)

    async with TestClient(app, body_buffer_size=1024) as client:
        connection = client.connect()
        size = 1_000_000
        connection.send(
            b'POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n' % size
        )
        for _ in range(size // 10_000):
            connection.send(b'x' * 10_000)
            # The server stops reading while the handler has a full buffer unread.
            assert connection.protocol._body is None or connection.protocol._body.buffered < (
                1024 + 10_000
            )
        response = await connection.read_response()
    assert response.text == str(size)
    assert max(sizes) <= 10_000


async def test_chunked_upload_any_split(app):
    @app.route('/', methods=['POST'])
    async def index(request):
        body = await request.body()
        return {'body': body.decode(), 'trailers': {
            k.decode(): v.decode() for k, v in request.trailers.items()}}

    raw = (b'POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n'
           b'3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-Sum: 19\r\n\r\n')
    async with TestClient(app) as client:
        for step in (1, 2, 5, len(raw)):
            connection = client.connect()
            for start in range(0, len(raw), step):
                connection.send(raw[start:start + step])
            response = await connection.read_response()
            assert response.json() == {'body': 'abc0123456789abcdef',
                                       'trailers': {'x-sum': '19'}}


async def test_expect_100_continue_only_when_the_body_is_read(app):
    @app.route('/read', methods=['POST'])
    async def read(request):
        return await request.body()

    @app.route('/ignore', methods=['POST'])
    async def ignore():
        return 'no thanks'

    async with TestClient(app) as client:
        connection = client.connect()
        connection.send(b'POST /read HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n'
                        b'Expect: 100-continue\r\n\r\n')
        assert await connection.receive() == b'HTTP/1.1 100 Continue\r\n\r\n'
        connection.send(b'data')
        response = await connection.read_response()
        assert response.body == b'data'

        connection = client.connect()
        connection.send(b'POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n'
                        b'Expect: 100-continue\r\n\r\n')
        response = await connection.read_response()
        assert response.interim == [] and response.text == 'no thanks'
        # The body never came: the connection cannot be reused safely, so it closes.
        assert response.header('connection') == 'close'
        await asyncio.sleep(0)
        assert connection.closed


async def test_body_size_limits(app):
    @app.route('/small', methods=['POST'], max_body_size=5)
    async def small(request):
        return await request.body()

    @app.route('/raised', methods=['POST'])
    async def raised(request):
        request.max_body_size = 20
        return await request.body()

    @app.route('/stream', methods=['POST'], max_body_size=5)
    async def stream(request):
        async for _ in request.stream():
            pass
        return 'ok'

    async with TestClient(app, max_body_size=10) as client:
        assert (await client.post('/small', body=b'12345')).body == b'12345'
        too_big = await client.post('/small', body=b'123456')
        assert too_big.status == 413 and too_big.text == 'request body too large'
        assert (await client.post('/raised', body=b'x' * 15)).status == 200
        assert (await client.post('/raised', body=b'x' * 21)).status == 413
        assert (await client.post('/stream', body=b'123456', chunked=True)).status == 413
        # A chunked body over the limit, whole in one read, read with body().
        assert (await client.post('/small', body=b'123456', chunked=True)).status == 413
        connection = client.connect()
        connection.send(b'POST /small HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n')
        connection.send(b'3\r\nabc\r\n')
        await asyncio.sleep(0.01)  # the handler is now waiting for the rest
        connection.send(b'3\r\ndef\r\n0\r\n\r\n')  # over the limit and complete at once
        assert (await connection.read_response()).status == 413
        connection = client.connect()
        connection.send(b'POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n'
                        b'Expect: 100-continue\r\n\r\n')
        response = await connection.read_response()
        assert response.status == 413 and response.interim == []


async def test_body_timeout(app):
    @app.route('/', methods=['POST'])
    async def index(request):
        return await request.body()

    async with TestClient(app, body_timeout=0.05) as client:
        connection = client.connect()
        connection.send(b'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc')
        response = await connection.read_response()
    assert response.status == 408


async def test_client_disconnect_mid_body_reaches_the_handler(app):
    outcome = asyncio.get_running_loop().create_future()

    @app.route('/', methods=['POST'])
    async def index(request):
        try:
            await request.body()
        except ConnectionError as exc:
            outcome.set_result(type(exc).__name__)
            raise

    async with TestClient(app) as client:
        connection = client.connect()
        connection.send(b'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc')
        await asyncio.sleep(0.01)
        await connection.close()
        assert await asyncio.wait_for(outcome, 2) == 'ClientDisconnected'


async def test_sync_handler_reads_the_body_directly(app):
    @app.route('/', methods=['POST'])
    def index(request):
        data = request.json()
        return {'got': data, 'raw': request.body().decode()}

    @app.route('/form', methods=['POST'])
    def form(request):
        return dict(request.form())

    async with TestClient(app) as client:
        response = await client.post('/', json={'a': 1})
        form = await client.post('/form', form={'x': 'y'})
    assert response.json() == {'got': {'a': 1}, 'raw': '{"a": 1}'}
    assert form.json() == {'x': 'y'}


async def test_body_timeout_is_an_idle_timeout(app):
    @app.route('/', methods=['POST'])
    async def index(request):
        return await request.body()

    async with TestClient(app, body_timeout=0.2) as client:
        connection = client.connect()
        connection.send(b'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\n')
        for piece in (b'ab', b'cd', b'ef'):
            await asyncio.sleep(0.1)  # 0.3 s in all, but never 0.2 s without data
            connection.send(piece)
        response = await connection.read_response()
    assert response.status == 200 and response.body == b'abcdef'
