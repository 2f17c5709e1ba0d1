"""Default headers: constant, per route and per request; on every response (errors and early
answers included, the 101 of an upgrade excepted); the response's own fields win, Vary
merges; prefixes, mounts, HTTPS only; what cannot be a value is refused or left out."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from tremolo import RegistrationError, Tremolo
from tremolo.default_headers import DefaultHeader, DefaultHeaders, resolve
from tremolo.testing import TestClient, serve


def make_app() -> Tremolo:
    app = Tremolo()

    @app.route('/')
    async def index(**server):
        return 'index'

    @app.route('/own')
    async def own(response, **server):
        response.headers['X-Frame-Options'] = 'DENY'
        response.headers['vary'] = 'Cookie'
        return 'own'

    @app.route('/boom')
    async def boom(**server):
        raise RuntimeError('internal detail')

    @app.post('/form')
    async def form(**server):
        return 'posted'

    @app.route('/ws')
    async def ws(websocket, **server):
        await websocket.accept()
        await websocket.send('hello')

    return app


async def test_a_constant_header_is_on_every_response_errors_included():
    app = make_app()
    app.add_default_header('X-Frame-Options', 'SAMEORIGIN')

    @app.on_request
    def early(request, response):
        if request.path == '/early':
            return 'answered by a hook'

    async with TestClient(app) as client:
        responses = [
            await client.get('/'), await client.get('/boom'), await client.get('/missing'),
            await client.get('/form'), await client.get('/early'), await client.head('/'),
        ]
    assert [response.status for response in responses] == [200, 500, 404, 405, 200, 200]
    for response in responses:
        assert response.header_list.count(('X-Frame-Options', 'SAMEORIGIN')) == 1
    assert b'internal detail' not in responses[1].body


async def test_the_responses_own_field_wins_and_vary_merges():
    app = make_app()
    app.add_default_header('X-Frame-Options', 'SAMEORIGIN')
    app.add_default_header('Vary', 'Origin')
    app.add_default_header('Vary', 'origin, Accept-Language')  # merged, once each

    async with TestClient(app) as client:
        plain = await client.get('/')
        own = await client.get('/own')
    assert plain.header('vary') == 'Origin, Accept-Language'
    assert own.header_list.count(('X-Frame-Options', 'DENY')) == 1
    assert own.header('x-frame-options') == 'DENY'
    # The default names come first, then the response's own, each once.
    assert own.header_list.count(('vary', 'Origin, Accept-Language, Cookie')) == 1
    assert own.header('vary') == 'Origin, Accept-Language, Cookie'


async def test_a_star_vary_absorbs_the_default_names():
    app = Tremolo()
    app.add_default_header('Vary', 'Origin')

    @app.route('/')
    async def index(response, **server):
        response.add_vary('*')
        return 'x'

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.header('vary') == '*'


async def test_default_headers_are_not_in_response_headers():
    app = Tremolo()
    app.add_default_header('X-Content-Type-Options', 'nosniff')
    seen = {}

    @app.on_response
    def look(response):
        seen['in headers'] = 'X-Content-Type-Options' in response.headers

    @app.route('/')
    async def index(**server):
        return 'x'

    async with TestClient(app) as client:
        response = await client.get('/')
    assert seen == {'in headers': False}
    assert response.header('x-content-type-options') == 'nosniff'


async def test_prefixes_and_mounts_scope_them_and_the_longest_prefix_wins():
    app = make_app()
    app.add_default_header('Cache-Control', 'no-store')
    app.add_default_header('Cache-Control', 'public, max-age=60', prefix='/static')
    app.add_default_header('X-Api', 'yes', prefix='/api/')
    api = Tremolo()
    api.add_default_header('X-Api-Version', '2')

    @api.route('/items')
    async def items(**server):
        return 'items'

    app.mount('/api', api)

    @app.route('/static/app.js')
    async def script(**server):
        return 'js'

    async with TestClient(app) as client:
        index = await client.get('/')
        static = await client.get('/static/app.js')
        static_missing = await client.get('/static/none.js')
        items = await client.get('/api/items')
        api_missing = await client.get('/api/none')
        apis = await client.get('/apis')
    assert index.header('cache-control') == 'no-store' and index.header('x-api') is None
    assert static.header('cache-control') == 'public, max-age=60'
    assert static_missing.status == 404
    assert static_missing.header('cache-control') == 'public, max-age=60'
    for response in (items, api_missing):
        assert response.header('x-api') == 'yes' and response.header('x-api-version') == '2'
    assert apis.header('x-api') is None and apis.header('x-api-version') is None


async def test_https_only_headers_follow_the_scheme_the_client_used():
    app = make_app()
    app.add_default_header('Strict-Transport-Security', 'max-age=600', https_only=True)
    async with TestClient(app, trusted_proxies=['127.0.0.1']) as client:
        plain = await client.get('/')
        proxied = await client.get('/', headers={'X-Forwarded-Proto': 'https'})
    async with TestClient(app) as client:
        untrusted = await client.get('/', headers={'X-Forwarded-Proto': 'https'})
    assert plain.header('strict-transport-security') is None
    assert proxied.header('strict-transport-security') == 'max-age=600'
    assert untrusted.header('strict-transport-security') is None


async def test_https_only_over_tls(server_context, client_context):
    app = make_app()
    app.add_default_header('Strict-Transport-Security', 'max-age=600', https_only=True)
    app.add_default_header('X-Scheme', per_request=lambda request: request.scheme,
                           https_only=True)
    async with serve(app, ssl=server_context) as server:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + '/', ssl=client_context) as response:
                assert response.headers['Strict-Transport-Security'] == 'max-age=600'
                assert response.headers['X-Scheme'] == 'https'


async def test_a_value_of_the_route_options_is_worked_out_per_route():
    app = Tremolo()
    calls = []

    def cache_control(options):
        calls.append(options.get('cache'))
        return None if options.get('cache') is None else f'max-age={options["cache"]}'

    app.add_default_header('Cache-Control', cache_control)

    @app.route('/a', cache=60)
    async def a(**server):
        return 'a'

    @app.route('/b')
    async def b(cache=None, **server):
        return 'b'

    async with TestClient(app) as client:
        first = await client.get('/a')
        second = await client.get('/b')
        again = await client.get('/a')
    assert first.header('cache-control') == again.header('cache-control') == 'max-age=60'
    assert second.header('cache-control') is None
    # Once per route (and for the paths no route matches), not per request.
    assert calls.count(60) == 1 and len(calls) == 3


async def test_a_value_function_that_returns_no_header_value_stops_the_server():
    app = make_app()
    app.add_default_header('X-Bad', lambda options: 'a\r\nX-Injected: 1')
    with pytest.raises(RegistrationError, match=r"route '/'.*X-Bad"):
        async with TestClient(app):
            pass


async def test_a_header_per_request():
    app = make_app()
    app.add_default_header('X-Path', per_request=lambda request: request.path)
    app.add_default_header('X-Maybe', per_request=lambda request: request.query.get('maybe'))
    async with TestClient(app) as client:
        index = await client.get('/')
        maybe = await client.get('/?maybe=yes')
        missing = await client.get('/nowhere')
        own = await client.get('/own')
    assert index.header('x-path') == '/' and index.header('x-maybe') is None
    assert maybe.header('x-maybe') == 'yes'
    assert missing.status == 404 and missing.header('x-path') == '/nowhere'
    assert own.header('x-path') == '/own'


async def test_a_header_per_request_gated_on_a_request_field():
    app = make_app()
    calls = []

    def echo(request):
        calls.append(request.path)
        return request.headers['x-token']

    app.add_default_header('X-Token-Echo', per_request=echo, if_request_has='X-Token')
    async with TestClient(app) as client:
        without = await client.get('/')
        with_token = await client.get('/', headers={'X-Token': 't1'})
    assert without.header('x-token-echo') is None
    assert with_token.header('x-token-echo') == 't1'
    assert calls == ['/']  # the request without the field called nothing


async def test_a_handler_or_hook_that_sets_the_name_replaces_a_header_per_request():
    app = make_app()
    calls = []

    def value(request):
        calls.append(request.path)
        return 'default'

    app.add_default_header('X-Value', per_request=value)

    @app.on_response
    def override(request, response):
        if request.path == '/own':
            response.headers['x-value'] = 'own'

    async with TestClient(app) as client:
        own = await client.get('/own')
        index = await client.get('/')
    assert own.header_list.count(('x-value', 'own')) == 1 and own.header('x-value') == 'own'
    assert index.header('x-value') == 'default'
    assert calls == ['/']


@pytest.mark.parametrize('function, message', [
    (lambda request: 1 / 0, 'could not be made'),
    (lambda request: 'a\r\nX-Injected: 1', 'could not be made'),
    (lambda request: 42, 'could not be made'),
    (lambda request: 'euro €', 'not ISO-8859-1'),
])
async def test_a_failing_header_per_request_is_logged_and_left_out(function, message,
                                                                    caplog):
    app = make_app()
    app.add_default_header('X-Broken', per_request=function)
    app.add_default_header('X-Fine', per_request=lambda request: 'fine')
    caplog.set_level(logging.ERROR, logger='tremolo')
    async with TestClient(app) as client:
        response = await client.get('/')
        own = await client.get('/own')  # the path with fields of the response's own
    for answer in (response, own):
        assert answer.status == 200 and answer.header('x-broken') is None
        assert answer.header('x-fine') == 'fine'
        assert b'X-Injected' not in answer.body
    assert any(message in record.getMessage() and 'X-Broken' in record.getMessage()
               for record in caplog.records)


@pytest.mark.parametrize('value', ['plain', None, 'with\ttab', 'caf\xe9'])
async def test_each_function_per_request_is_called_once_per_response(value):
    app = make_app()
    calls = []

    def counted(request):
        calls.append(request.path)
        return value

    app.add_default_header('X-Counted', per_request=counted)
    app.add_default_header('X-Fine', per_request=lambda request: 'fine')
    app.add_default_header('X-Origin', per_request=lambda request: 'seen',
                           if_request_has='Origin')
    async with TestClient(app) as client:
        plain = await client.get('/')
        with_origin = await client.get('/', headers={'Origin': 'https://a.example'})
        own = await client.get('/own')
    assert calls == ['/', '/', '/own']
    for response in (plain, with_origin, own):
        assert response.header('x-counted') == value and response.header('x-fine') == 'fine'
    assert plain.header('x-origin') is None and with_origin.header('x-origin') == 'seen'


async def test_a_validated_header_per_request_is_written_as_made_in_mounts_too():
    calls = []

    def state(request):
        calls.append(request.path)
        return None if request.path.endswith('/none') else f'"quota";r={len(calls)}'

    sub = make_app()
    sub.add_default_header('X-State', per_request=state, validated=True)
    sub.add_default_header('X-Checked', per_request=lambda request: 'checked')
    app = Tremolo()
    app.mount('/sub', sub)
    async with TestClient(app) as client:
        first = await client.get('/sub/')
        second = await client.get('/sub/')
        missing = await client.get('/sub/none')
        own = await client.get('/sub/own')
    assert first.header('x-state') == '"quota";r=1' and second.header('x-state') == '"quota";r=2'
    assert missing.status == 404 and missing.header('x-state') is None
    assert own.header('x-state') == '"quota";r=4'
    assert {response.header('x-checked') for response in (first, missing, own)} == {'checked'}
    assert calls == ['/sub/', '/sub/', '/sub/none', '/sub/own']


async def test_a_tab_and_latin_1_are_values_per_request():
    app = make_app()
    app.add_default_header('X-Latin', per_request=lambda request: 'caf\xe9\tau lait')
    async with TestClient(app) as client:
        response = await client.get('/')
    assert ('X-Latin', 'caf\xe9\tau lait') in response.header_list


async def test_no_default_header_on_the_101_of_a_websocket():
    app = make_app()
    app.add_default_header('X-Frame-Options', 'SAMEORIGIN')
    app.add_default_header('X-Per-Request', per_request=lambda request: 'yes')
    async with TestClient(app) as client:
        ws = await client.websocket('/ws')
        assert ws.response.status == 101
        assert ws.response.header('x-frame-options') is None
        assert ws.response.header('x-per-request') is None
        assert await ws.receive() == 'hello'
        await ws.close()


async def test_over_real_sockets():
    app = make_app()
    app.add_default_header('X-Frame-Options', 'SAMEORIGIN')
    app.add_default_header('X-Path', per_request=lambda request: request.path)
    async with serve(app) as server:
        async with aiohttp.ClientSession() as session:
            for path, status in (('/', 200), ('/missing', 404), ('/own', 200)):
                async with session.get(server.url + path) as response:
                    assert response.status == status
                    assert response.headers.getall('X-Path') == [path]
                    assert len(response.headers.getall('X-Frame-Options')) == 1


@pytest.mark.parametrize('arguments, error, message', [
    (('Bad Name', 'x'), ValueError, 'invalid header name'),
    (('X-A', 'a\nb'), ValueError, 'invalid characters'),
    (('X-A', 'euro €'), ValueError, 'ISO-8859-1'),
    (('Content-Length', '1'), ValueError, 'set by the server'),
    (('content-type', 'text/plain'), ValueError, 'set by the server'),
    (('X-A', 42), TypeError, 'str or a function'),
    (('X-A',), TypeError, 'either a value or a per_request'),
])
def test_bad_default_headers_are_refused(arguments, error, message):
    app = Tremolo()
    with pytest.raises(error, match=message):
        app.add_default_header(*arguments)


@pytest.mark.parametrize('options, error, message', [
    ({'value': 'x', 'per_request': lambda request: 'y'}, TypeError, 'either a value'),
    ({'per_request': 'not callable'}, TypeError, 'function of the request'),
    ({'value': 'x', 'if_request_has': 'Origin'}, TypeError, 'if_request_has'),
    ({'per_request': lambda request: 'y', 'if_request_has': 'bad name'}, ValueError,
     'not a header name'),
    ({'value': 'x', 'prefix': 'api'}, ValueError, 'must start with /'),
    ({'value': 'x', 'validated': True}, TypeError, 'validated goes with a per_request'),
])
def test_bad_options_are_refused(options, error, message):
    with pytest.raises(error, match=message):
        Tremolo().add_default_header('X-A', **options)


def test_vary_cannot_be_per_request():
    with pytest.raises(ValueError, match='Vary'):
        Tremolo().add_default_header('Vary', per_request=lambda request: 'Origin')


async def test_adding_one_while_serving_is_refused():
    app = make_app()
    async with TestClient(app):
        with pytest.raises(RegistrationError, match='already serving'):
            app.add_default_header('X-Late', 'x')


def test_resolve_keeps_one_header_per_name_and_merges_vary():
    headers = [
        DefaultHeader('X-A', 'root'), DefaultHeader('X-A', 'deep', prefix='/a/b'),
        DefaultHeader('X-A', 'shallow', prefix='/a'), DefaultHeader('Vary', 'Origin'),
        DefaultHeader('Vary', 'Cookie, origin'), DefaultHeader('X-None', lambda o: None),
        DefaultHeader('HSTS', 'max-age=1', https_only=True),
    ]
    resolved = resolve(headers, {})
    assert isinstance(resolved, DefaultHeaders)
    assert resolved.headers == (('X-A', 'deep'), ('Vary', 'Origin, Cookie'))
    assert resolved.https_headers == (('HSTS', 'max-age=1'),)
    assert resolve([DefaultHeader('X-None', lambda o: None)], {}) is None
    assert resolved == resolve(headers, {}) and hash(resolved) == hash(resolve(headers, {}))


async def test_a_value_function_that_fails_names_the_route():
    app = make_app()
    app.add_default_header('X-Bad', lambda options: options['missing'])
    with pytest.raises(RegistrationError, match=r"route '/'.*KeyError"):
        async with TestClient(app):
            pass


async def test_combined_headers_are_a_field_each():
    app = make_app()
    app.add_default_header('X-Policy', 'outer', combine=True)
    app.add_default_header('X-Policy', 'inner', prefix='/own', combine=True)
    app.add_default_header('X-State', per_request=lambda request: 'a', combine=True)
    app.add_default_header('X-State', per_request=lambda request: 'b', combine=True)
    async with TestClient(app) as client:
        index = await client.get('/')
        own = await client.get('/own')
    assert [value for name, value in index.header_list if name == 'X-Policy'] == ['outer']
    assert [value for name, value in own.header_list if name == 'X-Policy'] == [
        'outer', 'inner']
    assert [value for name, value in own.header_list if name == 'X-State'] == ['a', 'b']


async def test_a_mounted_asgi_applications_own_headers_win_over_the_defaults():
    app = make_app()
    app.add_default_header('X-Frame-Options', 'SAMEORIGIN')
    app.add_default_header('Vary', 'Origin')
    app.add_default_header('X-Content-Type-Options', 'nosniff')

    async def legacy(scope, receive, send):
        assert scope['type'] == 'http'
        await send({'type': 'http.response.start', 'status': 200, 'headers': [
            (b'content-type', b'text/plain'), (b'x-frame-options', b'DENY'),
            (b'vary', b'Accept-Language')]})
        await send({'type': 'http.response.body', 'body': b'legacy'})

    app.mount('/legacy', legacy)
    async with TestClient(app) as client:
        response = await client.get('/legacy/page')
    assert response.status == 200 and response.body == b'legacy'
    fields = [(name.lower(), value) for name, value in response.header_list]
    assert [v for k, v in fields if k == 'x-frame-options'] == ['DENY']  # the app's own
    assert [v for k, v in fields if k == 'x-content-type-options'] == ['nosniff']
    assert [v for k, v in fields if k == 'vary'] == ['Origin, Accept-Language']  # merged
