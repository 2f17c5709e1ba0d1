"""What the core offers middleware: hooks of every signature get their arguments, the body
length response hooks see, Vary merging, the matched route on the context, the server's
options in worker hooks and extension closers, and the request id in the access log."""

from __future__ import annotations

from tremolo import Options, Tremolo
from tremolo.testing import TestClient


async def test_request_hooks_and_providers_of_every_signature_get_the_requests_objects():
    app = Tremolo()
    seen: dict[str, tuple] = {}

    # The usual signatures are called straight from the request's own objects; the others
    # through the general injection: each must get the same objects.
    @app.on_request(priority=1)
    def just_request(request):
        seen['request'] = (request,)

    @app.on_request(priority=2)
    def request_response(request, response):
        seen['request, response'] = (request, response)

    @app.on_request(priority=3)
    def all_three(request, response, context):
        seen['request, response, context'] = (request, response, context)

    @app.on_request(priority=4)
    def reordered(context, request):
        seen['context, request'] = (request, context)

    @app.on_request(priority=5)
    async def awaited(request, response, context):
        seen['async'] = (request, response, context)

    @app.on_request(priority=6)
    def keywords(request, **server):
        seen['**server'] = (request, server['response'], server['context'])

    @app.provide('one')
    def one(request):
        return ('one', request)

    @app.provide('two')
    def two(request, response):
        return ('two', request, response)

    @app.route('/')
    async def index(one, two, request, response, context):
        assert one == ('one', request) and two == ('two', request, response)
        for name, objects in seen.items():
            expected = {1: (request,), 2: (request, response),
                        3: (request, response, context)}[len(objects)]
            if name == 'context, request':
                expected = (request, context)
            assert objects == expected, name
        return 'ok'

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.text == 'ok' and len(seen) == 6


async def test_response_hooks_see_the_length_of_a_whole_body_and_none_for_a_stream(tmp_path):
    app = Tremolo()
    seen = {}
    path = tmp_path / 'file.bin'
    path.write_bytes(b'f' * 3000)

    @app.on_response
    async def record(request, response):
        seen[request.path] = response.body_length

    @app.route('/whole')
    async def whole(**server):
        return 'é' * 10  # 20 bytes once encoded

    @app.route('/stream')
    async def stream(**server):
        yield 'piece'

    @app.route('/file')
    async def file(response, **server):
        return await response.sendfile(path)

    async with TestClient(app) as client:
        await client.get('/whole')
        await client.get('/stream')
        await client.get('/file')
        await client.get('/missing')
    assert seen == {'/whole': 20, '/stream': None, '/file': 3000, '/missing': 9}


async def test_add_vary_merges_names_once():
    app = Tremolo()

    @app.route('/')
    async def index(response, **server):
        response.headers['Vary'] = 'cookie'
        response.add_vary('Accept-Encoding', 'Cookie')
        response.add_vary('Origin')
        return 'x'

    @app.route('/star')
    async def star(response, **server):
        response.add_vary('Origin')
        response.add_vary('*')
        response.add_vary('Accept')
        return 'x'

    async with TestClient(app) as client:
        merged = await client.get('/')
        starred = await client.get('/star')
    assert merged.header('vary') == 'cookie, Accept-Encoding, Origin'
    assert starred.header('vary') == '*'


async def test_add_vary_refuses_a_bad_name():
    app = Tremolo()

    @app.route('/')
    async def index(response, **server):
        try:
            response.add_vary('Bad Name')
        except ValueError as exc:
            return str(exc)
        return 'accepted'

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.text == "invalid header name: 'Bad Name'"


async def test_the_context_names_the_matched_route():
    app = Tremolo()
    sub = Tremolo()
    routes = []

    @app.on_request
    async def record(context):
        routes.append(context.route)

    @app.route('/user/{id}')
    async def user(id):
        return id

    @sub.route('/item')
    async def item(**server):
        return 'item'

    app.mount('/sub', sub)
    async with TestClient(app) as client:
        await client.get('/user/42')
        await client.get('/sub/item')
        await client.get('/nowhere')
        await client.post('/user/42')  # 405: no route answers POST
    assert routes == ['/user/{id}', '/sub/item', None, None]


async def test_worker_hooks_and_extension_closers_get_the_options():
    app = Tremolo()
    seen = []

    @app.on_worker_start
    async def start(options):
        seen.append(('start', options.graceful_shutdown_timeout))

    class Closing:
        def setup(self, app):
            pass

        def close(self, options: Options, logger):
            seen.append(('close', options.worker_num))

    app.install(Closing())
    async with TestClient(app, graceful_shutdown_timeout=7.0):
        pass
    assert seen == [('start', 7.0), ('close', 1)]
