"""The middleware pipeline: exact ordering, short-circuit, prefixes, objects, filters."""

from __future__ import annotations

import pytest

from tremolo import RegistrationError, Tremolo
from tremolo.testing import TestClient


def recording_app(calls):
    app = Tremolo()
    for name, priority in (('auth', 10), ('log', 50), ('cors', 100)):
        def make(name):
            async def on_request(request):
                calls.append(f'{name}.request')

            async def on_response(response):
                calls.append(f'{name}.response')

            return on_request, on_response

        request_hook, response_hook = make(name)
        app.on_request(priority=priority)(request_hook)
        app.on_response(priority=priority)(response_hook)
    return app


async def test_exact_order_in_and_out():
    calls = []
    app = recording_app(calls)

    @app.route('/')
    async def index():
        calls.append('handler')
        return 'ok'

    async with TestClient(app) as client:
        await client.get('/')
    assert calls == [
        'auth.request', 'log.request', 'cors.request', 'handler',
        'cors.response', 'log.response', 'auth.response',
    ]


async def test_registration_order_breaks_ties_and_decorators_work_bare(app):
    calls = []

    @app.on_request
    async def first():
        calls.append('first')

    @app.on_request()
    async def second():
        calls.append('second')

    @app.on_request(priority=99)
    async def earlier():
        calls.append('earlier')

    @app.route('/')
    async def index():
        return ''

    async with TestClient(app) as client:
        await client.get('/')
    assert calls == ['earlier', 'first', 'second']


async def test_short_circuit_skips_later_hooks_and_handler_but_not_response_hooks():
    calls = []
    app = recording_app(calls)

    @app.on_request(priority=20)
    async def deny(request, response):
        calls.append('deny')
        if request.headers.get('authorization') is None:
            response.set_status(401)
            return {'error': 'unauthorized'}

    @app.route('/')
    async def index():
        calls.append('handler')
        return 'secret'

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.status == 401
    assert response.json() == {'error': 'unauthorized'}
    assert calls == ['auth.request', 'deny', 'cors.response', 'log.response', 'auth.response']


async def test_response_hooks_run_before_the_head_of_a_stream(app):
    @app.on_response
    async def stamp(response):
        response.set_header('X-Stamp', 'yes')

    @app.route('/')
    async def index():
        yield b'a'
        yield b'b'

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.header('x-stamp') == 'yes'
    assert response.body == b'ab'


async def test_response_hooks_run_on_errors_and_not_found(app):
    @app.on_response
    async def cors(response):
        response.set_header('Access-Control-Allow-Origin', '*')

    @app.route('/boom')
    async def boom():
        raise RuntimeError('internal detail')

    async with TestClient(app) as client:
        missing = await client.get('/missing')
        boom = await client.get('/boom')
    assert missing.status == 404 and missing.header('access-control-allow-origin') == '*'
    assert boom.status == 500 and boom.header('access-control-allow-origin') == '*'
    assert b'internal detail' not in boom.body


async def test_request_hooks_run_for_unknown_paths_and_can_answer(app):
    @app.on_request
    async def preflight(request, response):
        if request.method == 'OPTIONS':
            response.set_status(204)
            response.set_header('Allow', 'GET')
            return b''

    async with TestClient(app) as client:
        response = await client.options('/anything')
        missing = await client.get('/anything')
    assert response.status == 204 and response.header('allow') == 'GET'
    assert missing.status == 404


async def test_prefix_scope(app):
    calls = []

    @app.on_request(prefix='/api')
    async def api(request):
        calls.append(request.path)

    for path in ('/api', '/api/x', '/apix', '/'):
        app.route(path)(lambda: '')

    async with TestClient(app) as client:
        for path in ('/api', '/api/x', '/apix', '/', '/api/missing'):
            await client.get(path)
    assert calls == ['/api', '/api/x', '/api/missing']


async def test_middleware_object(app):
    class Timer:
        def __init__(self):
            self.calls = []

        async def on_request(self, request, context):
            context.seen = True
            self.calls.append('request')

        def on_response(self, response, context):
            response.set_header('X-Seen', str(context.seen))
            self.calls.append('response')

        async def on_worker_start(self, globals):
            self.calls.append('start')

    timer = Timer()
    app.add_middleware(timer, priority=5)

    @app.route('/')
    async def index():
        return ''

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.header('x-seen') == 'True'
    assert timer.calls == ['start', 'request', 'response']


def test_registration_errors(app):
    with pytest.raises(RegistrationError, match='none of the hook methods'):
        app.add_middleware(object())
    with pytest.raises(RegistrationError, match='priority'):
        app.on_request(priority='high')(lambda: None)
    with pytest.raises(RegistrationError, match='priority'):
        app.on_request(priority=True)(lambda: None)
    with pytest.raises(RegistrationError, match='nothing can supply'):
        @app.on_request
        async def hook(nonsense):
            return None
    with pytest.raises(RegistrationError, match='cannot be a async generator'):
        @app.on_request
        async def generator():
            yield
    with pytest.raises(RegistrationError, match='prefix'):
        app.on_request(prefix='api')(lambda: None)


async def test_on_response_returning_a_value_is_an_error(app, caplog):
    @app.on_response
    async def wrong():
        return b'replacement'

    @app.route('/')
    async def index():
        return 'ok'

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.status == 500
    assert 'must return None' in caplog.text


async def test_response_filter_transforms_whole_and_streamed_bodies(app):
    @app.on_request
    async def upper(response):
        response.add_filter(lambda data, final: data.upper() + (b'!' if final else b''))

    @app.route('/whole')
    async def whole():
        return b'abc'

    @app.route('/stream')
    async def stream():
        yield b'ab'
        yield b'cd'

    async with TestClient(app) as client:
        whole = await client.get('/whole')
        stream = await client.get('/stream')
    assert whole.body == b'ABC!' and whole.header('content-length') == '4'
    assert stream.body == b'ABCD!'


async def test_async_request_filter(app):
    @app.on_request
    async def count(request, context):
        context.sizes = []

        async def record(data, final):
            context.sizes.append((len(data), final))
            return data[::-1]

        request.add_filter(record)

    @app.route('/', methods=['POST'])
    async def index(request, context):
        body = await request.body()
        return {'body': body.decode(), 'sizes': context.sizes}

    async with TestClient(app) as client:
        response = await client.post('/', body=b'abc')
    assert response.json() == {'body': 'cba', 'sizes': [[3, False], [0, True]]}


async def test_connection_hooks(app):
    calls = []

    @app.on_connect
    async def connected(connection):
        connection.state.number = len(calls)
        calls.append(('connect', connection.client))

    @app.on_close
    def closed(connection):
        calls.append(('close', connection.state.number))

    @app.route('/')
    async def index(request):
        return str(request.connection.state.number)

    async with TestClient(app) as client:
        connection = client.connect(peer=('10.0.0.1', 1234))
        assert (await connection.request('GET', '/')).text == '0'
        assert (await connection.request('GET', '/')).text == '0'
        await connection.close()
    assert calls == [('connect', ('10.0.0.1', 1234)), ('close', 0)]


async def test_worker_hooks_order(app):
    calls = []
    for priority in (30, 10, 20):
        def make(priority):
            app.on_worker_start(priority=priority)(lambda: calls.append(('start', priority)))
            app.on_worker_stop(priority=priority)(lambda: calls.append(('stop', priority)))
        make(priority)

    async with TestClient(app):
        pass
    assert calls == [('start', 10), ('start', 20), ('start', 30),
                     ('stop', 30), ('stop', 20), ('stop', 10)]
