"""Signature-driven injection: server names, path params, providers, route options."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import pytest

from tremolo import Context, Globals, RegistrationError, Request, Response, Tremolo
from tremolo.testing import TestClient

if TYPE_CHECKING:  # a name for type checkers only: unresolvable at run time
    from decimal import Decimal


async def test_every_server_name_is_injected(app):
    seen = {}

    @app.route('/{id:int}')
    async def everything(request, response, context, app, globals, loop, logger, id):
        seen.update(locals())
        return ''

    async with TestClient(app) as client:
        await client.get('/5')
    assert isinstance(seen['request'], Request)
    assert isinstance(seen['response'], Response)
    assert isinstance(seen['context'], Context)
    assert seen['app'] is app
    assert isinstance(seen['globals'], Globals)
    assert seen['loop'] is asyncio.get_running_loop()
    assert isinstance(seen['logger'], logging.Logger)
    assert seen['id'] == 5


async def test_var_keyword_receives_server_names_and_params(app):
    @app.route('/{name}')
    async def handler(**server):
        return sorted(server)

    async with TestClient(app) as client:
        response = await client.get('/x')
    assert response.json() == sorted(
        ['request', 'response', 'context', 'app', 'globals', 'loop', 'logger', 'telemetry',
         'websocket', 'name']
    )


async def test_defaults_are_route_options_visible_in_context(app):
    @app.route('/big')
    async def big(content_type='application/octet-stream', chunk=3, **server):
        options = server['context'].options
        return {'buffer_size': options['buffer_size'], 'chunk': options['chunk'],
                'content_type': options['content_type'], 'param': chunk}

    async with TestClient(app, buffer_size=4096) as client:
        response = await client.get('/big')
    assert response.header('content-type') == 'application/octet-stream'
    assert response.json() == {'buffer_size': 4096, 'chunk': 3,
                               'content_type': 'application/octet-stream', 'param': 3}


async def test_decorator_options_override_handler_defaults(app):
    @app.route('/x', content_type='text/plain', flavour='vanilla')
    async def handler(context, flavour='chocolate'):
        return f'{flavour} {context.options["flavour"]}'

    async with TestClient(app) as client:
        response = await client.get('/x')
    assert response.header('content-type') == 'text/plain'
    assert response.text == 'vanilla vanilla'


async def test_option_changed_by_middleware_reaches_the_handler(app):
    @app.on_request
    async def tune(context):
        context.options['chunk'] = 7

    @app.route('/x')
    async def handler(chunk=1):
        return str(chunk)

    @app.route('/y')
    async def other(context):
        return str(context.option('chunk'))

    async with TestClient(app) as client:
        assert (await client.get('/x')).text == '7'
        assert (await client.get('/y')).text == '7'


async def test_options_are_per_request(app):
    @app.route('/x')
    async def handler(context, flag=False):
        before = context.options['flag']
        context.options['flag'] = True
        return str(before)

    async with TestClient(app) as client:
        assert (await client.get('/x')).text == 'False'
        assert (await client.get('/x')).text == 'False'


class Database:
    def __init__(self, name):
        self.name = name


async def test_providers_by_name_by_type_and_cleanup(app):
    events = []

    @app.provide('settings')
    def settings():
        return {'debug': True}

    @app.provide(Database)
    async def database(settings, request):
        events.append('open')
        yield Database(f'db for {request.path}')
        events.append('close')

    @app.provide('user')
    async def user(db: Database):
        return f'user from {db.name}'

    @app.route('/x')
    async def handler(user, store: Database, settings):
        events.append('handler')
        return {'user': user, 'store': store.name, 'settings': settings}

    async with TestClient(app) as client:
        response = await client.get('/x')
    assert response.json() == {'user': 'user from db for /x', 'store': 'db for /x',
                               'settings': {'debug': True}}
    # Computed once per request though asked for twice; cleaned up after the response.
    assert events == ['open', 'handler', 'close']


async def test_an_unresolvable_annotation_does_not_hide_the_others(app):
    # ``int | None`` cannot be evaluated before Python 3.10 (PyPy 3.9) and ``Decimal`` is
    # imported for type checkers only: the provider by type is still found.
    @app.provide(Database)
    def database():
        return Database('main')

    @app.route('/x')
    async def handler(store: Database, limit: int | None = None, other: Decimal = None):
        return store.name

    async with TestClient(app) as client:
        assert (await client.get('/x')).text == 'main'


def test_unsatisfiable_parameter_names_handler_and_route(app):
    with pytest.raises(RegistrationError) as info:
        @app.route('/user/{id}')
        async def show(id, database):
            return ''
    message = str(info.value)
    assert 'show' in message and "'/user/{id}'" in message and "'database'" in message


def test_positional_only_and_varargs_are_rejected(app):
    with pytest.raises(RegistrationError, match='keyword'):
        app.route('/a')(eval('lambda request, /: None'))
    with pytest.raises(RegistrationError, match='keyword'):
        @app.route('/b')
        async def b(*args):
            return ''


def test_provider_rules(app):
    with pytest.raises(RegistrationError, match='server name'):
        app.provide('request', lambda: 1)
    app.provide('x', lambda: 1)
    with pytest.raises(RegistrationError, match='already registered'):
        app.provide('x', lambda: 2)


def test_bad_route_option_values(app):
    with pytest.raises(RegistrationError, match='status'):
        app.route('/a', status=1000)(lambda: '')
    with pytest.raises(RegistrationError, match='content_type'):
        @app.route('/b')
        async def b(content_type=3):
            return ''


async def test_globals_are_shared_and_filled_at_worker_start(app):
    @app.on_worker_start
    async def start(globals, app, loop, logger):
        globals.counter = 0

    @app.route('/')
    async def index(globals):
        globals.counter += 1
        return str(globals.counter)

    async with TestClient(app) as client:
        await client.get('/')
        assert (await client.get('/')).text == '2'


async def test_request_hooks_and_error_handlers_are_injected_too(app):
    @app.provide('token')
    def token(request):
        return request.headers.get('x-token', 'none')

    @app.on_request
    async def check(token, context):
        context.token = token

    @app.error(ValueError)
    async def value_error(exc, token, context, response):
        response.set_status(422)
        return {'error': str(exc), 'token': token, 'seen': context.token}

    @app.route('/')
    async def index():
        raise ValueError('bad value')

    async with TestClient(app) as client:
        response = await client.get('/', headers={'X-Token': 'abc'})
    assert response.status == 422
    assert response.json() == {'error': 'bad value', 'token': 'abc', 'seen': 'abc'}


def test_seed_examples_register():
    app = Tremolo()

    @app.route('/hello')
    async def hello_world(**server):
        yield b'Hello '
        yield b'world!'

    @app.route('/my/url/big.data')
    async def my_big_data(content_type='application/octet-stream', **server):
        buffer_size = server['context'].options['buffer_size']
        yield buffer_size

    compiled = app.compile()
    endpoint = compiled.router.lookup('GET', '/my/url/big.data')[0]
    assert endpoint.options['content_type'] == 'application/octet-stream'
    assert endpoint.options['buffer_size'] == 16384


async def test_decorator_option_value_reaches_the_parameter(app):
    @app.route('/a', buffer_size=100)
    async def a(context, buffer_size=5):
        return f'{buffer_size} {context.options["buffer_size"]}'

    @app.route('/b')
    async def b(context, buffer_size=5):
        return f'{buffer_size} {context.options["buffer_size"]}'

    async with TestClient(app) as client:
        assert (await client.get('/a')).text == '100 100'
        assert (await client.get('/b')).text == '5 5'


async def test_body_limit_changed_in_context_options_is_enforced(app):
    @app.on_request
    async def tighten(context):
        context.options['max_body_size'] = 3

    @app.route('/', methods=['POST'])
    async def index(request):
        return await request.body()

    async with TestClient(app) as client:
        assert (await client.post('/', body=b'abc')).body == b'abc'
        assert (await client.post('/', body=b'abcd')).status == 413


def test_url_for_with_a_parameter_called_name(app):
    @app.route('/user/{name}', name='user')
    async def user(name):
        return name

    assert app.url_for('user', name='zoë') == '/user/zo%C3%AB'


async def test_hooks_and_providers_of_every_shape_get_their_arguments(app):
    # Functions of server names only are called by position, the others by keyword: a
    # decorator that copies a signature (functools.wraps) but takes keywords only, keyword-only
    # parameters, **server, path parameters and defaults all get what they name.
    import functools

    seen = []

    def keywords_only(func):
        @functools.wraps(func)
        def wrapper(**kwargs):
            return func(**kwargs)
        return wrapper

    @app.on_request
    @keywords_only
    def wrapped(request, context):
        seen.append(('wrapped', request.path, context.route))

    @app.on_request
    def keyword_only(*, request, response):
        seen.append(('keyword-only', request.path, response.status))

    @app.on_request
    def with_server(request, **server):
        seen.append(('server', request.path, sorted(server)[:2]))

    @app.on_request
    def with_default(request, flag='default'):
        seen.append(('default', request.path, flag))

    @app.provide('thing')
    @keywords_only
    def thing(request):
        return f'thing for {request.path}'

    @app.route('/item/{id}')
    async def item(id, thing):
        return f'{id} {thing}'

    async with TestClient(app) as client:
        response = await client.get('/item/7')
    assert response.text == '7 thing for /item/7'
    assert seen == [
        ('wrapped', '/item/7', '/item/{id}'), ('keyword-only', '/item/7', 200),
        ('server', '/item/7', ['app', 'context']), ('default', '/item/7', 'default'),
    ]
