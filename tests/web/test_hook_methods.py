"""Hooks limited to methods: called for those methods only (GET covers HEAD), for routes and
for the paths no route matches, resolved when the chains are compiled."""

from __future__ import annotations

import pytest

from tremolo import RegistrationError, Tremolo
from tremolo.testing import TestClient


def make_app(calls: list[str]) -> Tremolo:
    app = Tremolo()

    @app.on_request(methods=['options'])
    def preflight(request):
        calls.append(f'options hook {request.method} {request.path}')

    @app.on_request(methods=('GET', 'POST'))
    def reads(request):
        calls.append(f'get/post hook {request.method}')

    @app.on_response(methods='POST', prefix='/items')
    def posted(request, response):
        calls.append(f'post response hook {request.path}')
        response.headers['X-Posted'] = 'yes'

    @app.on_request
    def every(request):
        calls.append(f'every {request.method}')

    @app.route('/items', methods=['GET', 'POST', 'DELETE'])
    async def items(request, **server):
        return request.method

    @app.route('/page')
    async def page(**server):
        return 'page'

    return app


async def test_hooks_run_for_their_methods_only():
    calls: list[str] = []
    async with TestClient(make_app(calls)) as client:
        for method in ('GET', 'HEAD', 'POST', 'DELETE'):
            calls.append(f'-- {method}')
            response = await client.request(method, '/items')
            assert response.status == 200
            assert response.header('x-posted') == ('yes' if method == 'POST' else None)
    assert calls == [
        '-- GET', 'get/post hook GET', 'every GET',
        '-- HEAD', 'get/post hook HEAD', 'every HEAD',  # GET covers HEAD, as for routes
        '-- POST', 'get/post hook POST', 'every POST', 'post response hook /items',
        '-- DELETE', 'every DELETE',
    ]


async def test_the_paths_no_route_matches_get_them_by_method_too():
    calls: list[str] = []
    async with TestClient(make_app(calls)) as client:
        not_allowed = await client.options('/page')
        missing = await client.post('/missing')
        routed_options = await client.options('/items')
    assert [not_allowed.status, missing.status, routed_options.status] == [405, 404, 405]
    assert calls == [
        'options hook OPTIONS /page', 'every OPTIONS',
        'get/post hook POST', 'every POST',
        'options hook OPTIONS /items', 'every OPTIONS',
    ]


async def test_a_route_whose_methods_no_hook_names_has_one_chain():
    app = make_app([])
    compiled = app.compile()
    page, _ = compiled.router.lookup('GET', '/page')
    items, _ = compiled.router.lookup('DELETE', '/items')
    # GET and HEAD have the same hooks: one chain, nothing to choose per request.
    assert page.by_method is None
    assert [plan.name for plan in page.request_hooks] == [
        'make_app.<locals>.reads', 'make_app.<locals>.every']
    # DELETE gets the chain of the methods no hook names; POST has its own.
    assert [plan.name for plan in items.request_hooks] == ['make_app.<locals>.every']
    assert items.by_method is not None and set(items.by_method) == {'GET', 'HEAD', 'POST'}


async def test_a_short_circuit_for_one_method():
    app = Tremolo()

    @app.on_request(methods=['OPTIONS'])
    def answer(response):
        response.headers['Allow'] = 'GET, OPTIONS'
        response.set_status(204)
        return b''

    @app.route('/')
    async def index(**server):
        return 'index'

    async with TestClient(app) as client:
        options = await client.options('/')
        index = await client.get('/')
    assert options.status == 204 and options.header('allow') == 'GET, OPTIONS'
    assert index.text == 'index'


@pytest.mark.parametrize('methods, message', [
    ([], 'HTTP method names'), (['GET', 'bad method'], 'HTTP method names'),
    ([42], 'HTTP method names'),
])
def test_bad_methods_are_refused(methods, message):
    app = Tremolo()
    with pytest.raises(RegistrationError, match=message):
        app.on_request(methods=methods)(lambda request: None)


def test_only_request_and_response_hooks_take_methods():
    app = Tremolo()
    with pytest.raises(RegistrationError, match='cannot be limited to methods'):
        app.pipeline.add('on_connect', lambda connection: None, methods=['GET'])
