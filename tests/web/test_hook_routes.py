"""Hooks limited to routes by their options (``when=``): asked once per route when the
application is compiled, with the route's effective options; the paths no route matches are
asked with the server's options; mounts keep it; a bad ``when`` is refused or named."""

from __future__ import annotations

import pytest

from tremolo import RegistrationError, Tremolo
from tremolo.testing import TestClient


def make_app(calls: list[str], asked: list[str]) -> Tremolo:
    app = Tremolo()

    def audited(options):
        asked.append(repr(options.get('audit')))
        return options.get('audit', False)

    @app.on_request(when=audited)
    def audit(request):
        calls.append(f'audit {request.path}')

    @app.on_response(when=lambda options: options.get('audit'))
    def stamp(response):
        response.headers['X-Audited'] = 'yes'

    @app.route('/audited', audit=True)
    async def audited_route():
        return 'audited'

    @app.route('/plain')
    async def plain():
        return 'plain'

    return app


async def test_a_hook_runs_for_the_routes_its_when_accepts_only():
    calls: list[str] = []
    asked: list[str] = []
    app = make_app(calls, asked)
    async with TestClient(app) as client:
        asked_at_startup = list(asked)
        for _ in range(3):
            audited = await client.get('/audited')
            plain = await client.get('/plain')
            missing = await client.get('/nowhere')
        assert asked == asked_at_startup  # asked when compiled, never per request
    assert calls == ['audit /audited'] * 3
    assert audited.status == 200 and audited.header('x-audited') == 'yes'
    assert plain.status == 200 and plain.header('x-audited') is None
    assert missing.status == 404 and missing.header('x-audited') is None
    # Each route, and the paths no route matches (the server's options), once each.
    assert sorted(asked) == ['None', 'None', 'True']


async def test_the_server_options_decide_for_the_paths_no_route_matches():
    calls: list[str] = []
    app = Tremolo()

    @app.on_request(when=lambda options: options.get('max_body_size') == 1024)
    def small(request):
        calls.append(request.path)

    @app.route('/big', max_body_size=4096)
    async def big():
        return 'big'

    async with TestClient(app, max_body_size=1024) as client:
        assert (await client.get('/big')).status == 200
        assert (await client.get('/nowhere')).status == 404
    assert calls == ['/nowhere']


async def test_a_mounted_applications_hook_keeps_its_when():
    calls: list[str] = []
    asked: list[str] = []
    parent = Tremolo()
    parent.mount('/sub', make_app(calls, asked))
    async with TestClient(parent) as client:
        assert (await client.get('/sub/audited')).header('x-audited') == 'yes'
        assert (await client.get('/sub/plain')).header('x-audited') is None
    assert calls == ['audit /sub/audited']


async def test_the_options_of_a_mounted_asgi_application_count_as_its_routes():
    calls: list[str] = []

    async def asgi_app(scope, receive, send):
        await send({'type': 'http.response.start', 'status': 200, 'headers': []})
        await send({'type': 'http.response.body', 'body': b'legacy'})

    app = Tremolo()

    @app.on_request(when=lambda options: options.get('audit'))
    def audit(request):
        calls.append(request.path)

    app.mount('/audited', asgi_app, audit=True)
    app.mount('/plain', asgi_app)
    async with TestClient(app) as client:
        assert (await client.get('/audited/x')).body == b'legacy'
        assert (await client.get('/plain/x')).body == b'legacy'
    assert calls == ['/audited/x']


def test_a_when_that_is_not_callable_is_refused():
    app = Tremolo()
    with pytest.raises(RegistrationError, match='when of on_request hook .*must be a function '
                                                'of the route options, not str'):
        @app.on_request(when='audit')
        def hook(request):
            pass


def test_connection_and_worker_hooks_take_no_when():
    from tremolo.web.hooks import Pipeline

    with pytest.raises(RegistrationError, match='on_connect hooks cannot be limited to routes'):
        Pipeline().add('on_connect', lambda connection: None, when=lambda options: True)


async def test_a_when_that_fails_stops_the_server_naming_the_hook():
    app = Tremolo()

    @app.on_request(when=lambda options: options['missing'])
    def picky(request):
        pass

    @app.route('/')
    async def index():
        return 'index'

    with pytest.raises(RegistrationError, match=r"on_request hook .*picky.*when= function "
                                                r"failed: KeyError\('missing'\)"):
        async with TestClient(app):
            pass
