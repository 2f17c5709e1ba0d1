"""CORS: simple and preflight requests, origin forms, credentials, Vary, Private Network
Access, and error responses that carry the headers."""

from __future__ import annotations

import re

import aiohttp
import pytest
from tremolo.middleware.cors import CORS

from tremolo import PayloadTooLarge, Tremolo
from tremolo.testing import TestClient, serve

ORIGIN = 'https://app.example.com'


def make_app(**options):
    app = Tremolo()
    app.install(CORS(**options))

    @app.route('/items', methods=['GET', 'POST', 'DELETE'])
    async def items(**server):
        return {'items': [1, 2]}

    @app.route('/boom')
    async def boom(**server):
        raise RuntimeError('internal detail')

    @app.post('/upload', max_body_size=10)
    async def upload(request):
        return await request.body()

    @app.route('/too-large')
    async def too_large(**server):
        raise PayloadTooLarge()

    return app


def preflight(method='DELETE', headers=None, origin=ORIGIN, **extra):
    fields = {'Origin': origin, 'Access-Control-Request-Method': method}
    if headers:
        fields['Access-Control-Request-Headers'] = headers
    fields.update(extra)
    return fields


async def test_a_simple_request_from_an_allowed_origin():
    async with TestClient(make_app(allow_origins=[ORIGIN])) as client:
        allowed = await client.get('/items', headers={'Origin': ORIGIN})
        other = await client.get('/items', headers={'Origin': 'https://evil.example'})
        none = await client.get('/items')
    assert allowed.status == 200
    assert allowed.header('access-control-allow-origin') == ORIGIN
    assert allowed.header('access-control-allow-credentials') is None
    assert allowed.header('vary') == 'Origin'
    # Not allowed: the response is served, without the headers (the browser hides it).
    assert other.status == 200 and other.header('access-control-allow-origin') is None
    assert other.header('vary') == 'Origin'
    assert none.header('access-control-allow-origin') is None and none.header('vary') == 'Origin'


async def test_any_origin_without_credentials_is_a_static_star():
    async with TestClient(make_app(allow_origins='*')) as client:
        response = await client.get('/items', headers={'Origin': 'https://anyone.example'})
        plain = await client.get('/items')
    assert response.header('access-control-allow-origin') == '*'
    assert response.header('vary') is None  # the answer does not depend on Origin
    assert plain.header('access-control-allow-origin') == '*'


async def test_credentials_echo_the_origin():
    app = make_app(allow_origins=[ORIGIN], allow_credentials=True, expose_headers=['X-Total'])
    async with TestClient(app) as client:
        response = await client.get('/items', headers={'Origin': ORIGIN})
    assert response.header('access-control-allow-origin') == ORIGIN
    assert response.header('access-control-allow-credentials') == 'true'
    assert response.header('access-control-expose-headers') == 'X-Total'


async def test_a_preflight_is_answered_before_routing():
    app = make_app(allow_origins=[ORIGIN], allow_headers=['X-Token'], max_age=300)
    async with TestClient(app) as client:
        response = await client.options('/items', headers=preflight('DELETE', 'x-token'))
        unrouted = await client.options('/no/such/route', headers=preflight('PUT'))
    assert response.status == 204 and response.body == b''
    assert response.header('access-control-allow-origin') == ORIGIN
    assert response.header('access-control-allow-methods') == (
        'GET, HEAD, POST, PUT, PATCH, DELETE')
    assert response.header('access-control-allow-headers') == 'x-token'
    assert response.header('access-control-max-age') == '300'
    assert response.header('vary') == (
        'Origin, Access-Control-Request-Method, Access-Control-Request-Headers')
    assert unrouted.status == 204


@pytest.mark.parametrize('fields, reason', [
    (preflight(origin='https://evil.example'), "origin 'https://evil.example'"),
    (preflight('TRACE'), "method 'TRACE'"),
    (preflight('GET', 'X-Secret'), "header 'X-Secret'"),
])
async def test_a_refused_preflight_gets_403_without_the_headers(fields, reason):
    async with TestClient(make_app(allow_origins=[ORIGIN])) as client:
        response = await client.options('/items', headers=fields)
    assert response.status == 403
    assert reason in response.text
    assert response.header('access-control-allow-origin') is None


async def test_safelisted_headers_and_methods_need_no_configuration():
    async with TestClient(make_app(allow_origins=[ORIGIN], allow_methods=[])) as client:
        response = await client.options(
            '/items', headers=preflight('POST', 'Content-Type, Accept-Language'))
    assert response.status == 204


async def test_wildcard_headers_echo_what_is_asked_including_authorization():
    app = make_app(allow_origins=[ORIGIN], allow_headers='*', allow_methods='*',
                   allow_credentials=True)
    async with TestClient(app) as client:
        response = await client.options('/items',
                                        headers=preflight('PURGE', 'Authorization, X-Any'))
    assert response.status == 204
    assert response.header('access-control-allow-headers') == 'Authorization, X-Any'
    assert response.header('access-control-allow-methods') == 'PURGE'
    assert response.header('access-control-allow-credentials') == 'true'


async def test_a_plain_options_request_reaches_the_application():
    async with TestClient(make_app(allow_origins=[ORIGIN])) as client:
        response = await client.options('/items', headers={'Origin': ORIGIN})
    assert response.status == 405  # the application has no OPTIONS route: not a preflight


async def test_private_network_access():
    fields = preflight('GET', **{'Access-Control-Request-Private-Network': 'true'})
    async with TestClient(make_app(allow_origins=[ORIGIN],
                                   allow_private_network=True)) as client:
        allowed = await client.options('/items', headers=fields)
    async with TestClient(make_app(allow_origins=[ORIGIN])) as client:
        plain = await client.options('/items', headers=fields)
    assert allowed.header('access-control-allow-private-network') == 'true'
    assert plain.header('access-control-allow-private-network') is None


async def test_origins_as_a_regex_and_as_a_function():
    regex = make_app(allow_origins=re.compile(r'https://[a-z]+\.example\.com'))
    function = make_app(allow_origins=lambda origin: origin.endswith('.test'))
    async with TestClient(regex) as client:
        good = await client.get('/items', headers={'Origin': 'https://shop.example.com'})
        bad = await client.get('/items', headers={'Origin': 'https://shop.example.com.evil'})
    async with TestClient(function) as client:
        yes = await client.get('/items', headers={'Origin': 'http://dev.test'})
        no = await client.get('/items', headers={'Origin': 'http://dev.example'})
    assert good.header('access-control-allow-origin') == 'https://shop.example.com'
    assert bad.header('access-control-allow-origin') is None
    assert yes.header('access-control-allow-origin') == 'http://dev.test'
    assert no.header('access-control-allow-origin') is None


@pytest.mark.parametrize('path, status', [
    ('/nowhere', 404), ('/boom', 500), ('/too-large', 413), ('/items?x', 200)])
async def test_error_responses_carry_the_headers(path, status):
    async with TestClient(make_app(allow_origins=[ORIGIN], allow_credentials=True)) as client:
        response = await client.get(path, headers={'Origin': ORIGIN})
    assert response.status == status
    assert response.header('access-control-allow-origin') == ORIGIN
    assert response.header('access-control-allow-credentials') == 'true'
    assert b'internal detail' not in response.body


async def test_a_body_refused_with_413_carries_the_headers():
    async with TestClient(make_app(allow_origins=[ORIGIN])) as client:
        response = await client.post('/upload', body=b'x' * 100, headers={'Origin': ORIGIN})
    assert response.status == 413
    assert response.header('access-control-allow-origin') == ORIGIN


@pytest.mark.parametrize('options, message', [
    ({'allow_origins': '*', 'allow_credentials': True}, "allow_origins='\\*'"),
    ({'allow_origins': ['https://example.com/']}, 'allow_origins'),
    ({'allow_origins': ['example.com']}, 'allow_origins'),
    ({'allow_origins': [ORIGIN], 'allow_headers': ['bad header']}, 'allow_headers'),
    ({'allow_origins': [ORIGIN], 'max_age': -1}, 'max_age'),
    ({'allow_origins': [ORIGIN], 'expose_headers': '*', 'allow_credentials': True},
     'expose_headers'),
])
def test_bad_configuration_fails_naming_the_option(options, message):
    with pytest.raises(ValueError, match=message):
        CORS(**options)


def test_allow_origins_of_another_type_is_a_type_error():
    with pytest.raises(TypeError, match='allow_origins'):
        CORS(allow_origins=42)  # type: ignore[arg-type]


async def test_a_preflight_and_a_request_over_real_sockets():
    app = make_app(allow_origins=[ORIGIN], allow_headers=['X-Token'], allow_credentials=True)
    async with serve(app) as server:
        async with aiohttp.ClientSession() as session:
            async with session.options(server.url + '/items',
                                       headers=preflight('DELETE', 'X-Token')) as response:
                assert response.status == 204
                assert response.headers['Access-Control-Allow-Methods'].endswith('DELETE')
            async with session.delete(server.url + '/items',
                                      headers={'Origin': ORIGIN, 'X-Token': 't'}) as response:
                assert response.status == 200
                assert response.headers['Access-Control-Allow-Origin'] == ORIGIN
                assert await response.json() == {'items': [1, 2]}
