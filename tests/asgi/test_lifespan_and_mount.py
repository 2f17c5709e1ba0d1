"""The ASGI lifespan protocol, detection of an application's kind, and an ASGI application
mounted into a Tremolo application."""

from __future__ import annotations

import asyncio
import functools
import logging

import pytest

from tremolo import Tremolo
from tremolo.asgi import LifespanFailure, interface_of, is_asgi_app
from tremolo.exceptions import RegistrationError
from tremolo.testing import TestClient


def lifespan_app(events: list, *, startup='lifespan.startup.complete',
                 shutdown='lifespan.shutdown.complete'):
    async def app(scope, receive, send):
        if scope['type'] == 'lifespan':
            assert scope['asgi']['version'] == '3.0'
            message = await receive()
            events.append(message['type'])
            scope['state']['db'] = 'connected'
            await send({'type': startup, 'message': 'no database'})
            message = await receive()
            events.append(message['type'])
            await send({'type': shutdown, 'message': 'could not flush'})
            return
        await send({'type': 'http.response.start', 'status': 200})
        await send({'type': 'http.response.body', 'body': scope['state']['db'].encode()})
    return app


async def test_startup_and_shutdown_run_once_and_the_state_reaches_requests():
    events: list = []
    async with TestClient(lifespan_app(events)) as client:
        assert events == ['lifespan.startup']
        assert (await client.get('/')).body == b'connected'
        assert (await client.get('/')).body == b'connected'
        assert client.runtime.state == {'db': 'connected'}
        with pytest.raises(TypeError, match='no globals'):
            client.globals  # noqa: B018 - a Tremolo application's, not an ASGI one's
    assert events == ['lifespan.startup', 'lifespan.shutdown']


async def test_a_failed_startup_stops_with_the_apps_message():
    with pytest.raises(LifespanFailure, match='no database'):
        async with TestClient(lifespan_app([], startup='lifespan.startup.failed')):
            pass


async def test_a_failed_shutdown_is_logged(caplog):
    async with TestClient(lifespan_app([], shutdown='lifespan.shutdown.failed')):
        pass
    assert 'lifespan shutdown failed: could not flush' in caplog.text


async def test_an_app_without_lifespan_is_served_in_auto_mode_and_refused_in_on_mode(caplog):
    async def app(scope, receive, send):
        if scope['type'] != 'http':
            raise ValueError(f'unsupported scope {scope["type"]}')
        assert 'state' not in scope
        await send({'type': 'http.response.start', 'status': 200})
        await send({'type': 'http.response.body', 'body': b'no lifespan'})

    caplog.set_level(logging.INFO, 'tremolo')
    async with TestClient(app) as client:
        assert (await client.get('/')).body == b'no lifespan'
    assert 'does not support the lifespan protocol' in caplog.text
    with pytest.raises(LifespanFailure, match='unsupported scope'):
        async with TestClient(app, lifespan='on'):
            pass
    async with TestClient(app, lifespan='off') as client:
        assert (await client.get('/')).body == b'no lifespan'


async def test_lifespan_off_never_calls_the_app_for_it():
    events: list = []
    async with TestClient(lifespan_app(events), lifespan='off'):
        pass
    assert events == []


# -- detection ------------------------------------------------------------------------------------

async def asgi_function(scope, receive, send):
    pass


class ASGIClass:
    async def __call__(self, scope, receive, send):
        pass


class ASGI2:
    def __init__(self, scope):
        self.scope = scope


def asgi2_factory(scope):
    async def instance(receive, send):
        pass
    return instance


def wrapper(scope, receive, send):  # a plain function returning the awaitable
    return asgi_function(scope, receive, send)


async def native_handler(**server):
    return 'x'


@pytest.mark.parametrize(('app', 'expected'), [
    (asgi_function, 'asgi'), (ASGIClass(), 'asgi'), (wrapper, 'asgi'),
    (functools.partial(asgi_function), 'asgi'), (Tremolo(), 'tremolo'),
])
def test_the_kind_of_an_application_is_detected(app, expected):
    assert interface_of(app) == expected
    assert is_asgi_app(app) == (expected == 'asgi')


@pytest.mark.parametrize(('app', 'message'), [
    (native_handler, 'not a Tremolo application, nor an ASGI 3 application'),
    (ASGIClass, 'not a Tremolo application'),
    (asgi2_factory, 'ASGI 2'),
    ('text', 'not a Tremolo application'),
])
def test_what_is_neither_is_refused_by_name(app, message):
    with pytest.raises(TypeError, match=message):
        interface_of(app)


def test_forcing_the_interface():
    assert interface_of(asgi_function, 'asgi') == 'asgi'
    with pytest.raises(TypeError, match="interface='tremolo'"):
        interface_of(asgi_function, 'tremolo')
    with pytest.raises(TypeError, match="interface='asgi'"):
        interface_of(Tremolo(), 'asgi')
    with pytest.raises(TypeError, match="interface='asgi'"):
        Tremolo().run(interface='asgi')


# -- mounting into a Tremolo application ----------------------------------------------------------

def mounted_app(seen: list):
    async def app(scope, receive, send):
        if scope['type'] == 'lifespan':
            await receive()
            scope['state']['ready'] = 'yes'
            await send({'type': 'lifespan.startup.complete'})
            await receive()
            seen.append('shutdown')
            await send({'type': 'lifespan.shutdown.complete'})
            return
        if scope['type'] == 'websocket':
            await receive()
            await send({'type': 'websocket.accept'})
            message = await receive()
            await send({'type': 'websocket.send', 'text': scope['root_path'] + message['text']})
            await send({'type': 'websocket.close'})
            return
        seen.append(scope)
        body = b''
        while True:
            message = await receive()
            body += message.get('body', b'')
            if not message.get('more_body'):
                break
        await send({'type': 'http.response.start', 'status': 200,
                    'headers': [(b'content-type', b'text/plain')]})
        await send({'type': 'http.response.body',
                    'body': b'%s %s %s %d' % (scope['method'].encode(), scope['path'].encode(),
                                              scope['state']['ready'].encode(), len(body))})
    return app


async def test_a_mounted_asgi_app_answers_under_its_prefix_after_native_middleware():
    seen: list = []
    app = Tremolo()
    calls: list = []

    @app.route('/')
    async def home(**server):
        return 'native'

    @app.on_request(prefix='/legacy')
    async def count(request, **server):
        calls.append(request.path)
        if request.path == '/legacy/forbidden':
            return 'refused by a native hook'

    @app.on_response(prefix='/legacy')
    async def mark(response, **server):
        response.set_header('X-Native-Hook', 'ran')

    app.mount('/legacy', mounted_app(seen), max_body_size=5)
    async with TestClient(app) as client:
        assert (await client.get('/')).body == b'native'
        response = await client.get('/legacy/users/7?x=1')
        assert response.body == b'GET /legacy/users/7 yes 0'
        assert response.header('x-native-hook') == 'ran'
        assert (await client.request('PROPFIND', '/legacy')).body == b'PROPFIND /legacy yes 0'
        assert (await client.get('/legacy/forbidden')).body == b'refused by a native hook'
        assert (await client.post('/legacy/upload', body=b'1234')).body.endswith(b' 4')
        assert (await client.post('/legacy/upload', body=b'123456')).status == 413
        assert (await client.get('/legacyx')).status == 404
        websocket = await client.websocket('/legacy/ws')
        await websocket.send('hi')
        assert await websocket.receive() == '/legacyhi'
    assert seen[0]['root_path'] == '/legacy' and seen[0]['query_string'] == b'x=1'
    assert calls[:2] == ['/legacy/users/7', '/legacy']
    assert seen[-1] == 'shutdown'


async def test_mounted_asgi_app_under_the_speed_limiter():
    async def app(scope, receive, send):
        if scope['type'] != 'http':
            return
        await send({'type': 'http.response.start', 'status': 200})
        await send({'type': 'http.response.body', 'body': b'x' * 60_000})

    native = Tremolo()
    native.mount('/slow', app, rate=100_000)
    async with TestClient(native) as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await client.get('/slow')
        elapsed = loop.time() - started
    assert response.body == b'x' * 60_000
    assert elapsed > 0.3  # generous: 60 kB at 100 kB/s after the first burst


def test_mount_refuses_what_is_not_an_application():
    app = Tremolo()
    with pytest.raises(RegistrationError, match='ASGI 3 application'):
        app.mount('/x', native_handler)
    with pytest.raises(RegistrationError, match='route options are for a mounted ASGI'):
        app.mount('/y', Tremolo(), rate=10)


async def test_an_asgi_app_mounted_in_a_mounted_tremolo_app_knows_its_full_prefix():
    seen: list = []
    inner = Tremolo()
    inner.mount('/legacy', mounted_app(seen))
    outer = Tremolo()
    outer.mount('/v1', inner)
    async with TestClient(outer) as client:
        assert (await client.get('/v1/legacy/a/b')).body == b'GET /v1/legacy/a/b yes 0'
        assert (await client.get('/v1/legacy')).status == 200
        assert (await client.get('/v1/legacy/')).status == 200
    assert [scope['root_path'] for scope in seen[:3]] == ['/v1/legacy'] * 3
