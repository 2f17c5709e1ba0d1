"""A handler that takes providers only: the server values by name are made only when
something asks for them (a hook that takes them by name, an error handler, options a hook
changed for the request), and whatever asks gets all of them."""

from __future__ import annotations

from tremolo import Tremolo
from tremolo.testing import TestClient


def make_app(calls: list[str]) -> Tremolo:
    app = Tremolo()

    @app.provide('user')
    def user(request):
        return request.headers.get('x-user', 'anonymous')

    @app.on_request
    async def by_name(request, **server):
        # An async hook with **server: called through the values by name.
        calls.append(f'hook {sorted(server)}')
        if request.path == '/custom':
            server['context'].options['greeting'] = 'hi'

    @app.route('/')
    async def index(user):
        return f'hello {user}'

    @app.route('/custom')
    async def custom(user, greeting='hello'):
        return f'{greeting} {user}'

    @app.route('/boom')
    async def boom(user):
        raise ValueError(user)

    @app.error(ValueError)
    async def failed(exc, request, response, app, context):
        calls.append(f'error {exc} {request.path} {type(app).__name__} {context.route}')
        response.status = 422
        return f'refused {exc}'

    return app


async def test_providers_only_with_hooks_errors_and_options_that_need_the_values():
    calls: list[str] = []
    async with TestClient(make_app(calls)) as client:
        plain = await client.get('/', headers={'X-User': 'ada'})
        custom = await client.get('/custom')
        boom = await client.get('/boom', headers={'X-User': 'bob'})
    assert plain.text == 'hello ada'
    assert custom.text == 'hi anonymous'
    assert (boom.status, boom.text) == (422, 'refused bob')
    server_names = sorted(['app', 'globals', 'loop', 'logger', 'telemetry', 'websocket',
                           'response', 'context'])
    assert calls == [f'hook {server_names}'] * 3 + ['error bob /boom Tremolo /boom']


async def test_providers_only_and_nothing_else():
    app = Tremolo()

    @app.provide('user')
    def user(request, response):
        response.headers['X-Seen'] = 'yes'
        return 'ada'

    @app.on_request
    def quick(request, response, context):
        # Called straight: the values by name are not made for it.
        if request.path == '/custom':
            context.options['greeting'] = 'hi'

    @app.route('/')
    async def index(user):
        return user

    @app.route('/custom')
    async def custom(user, greeting='hello'):
        return f'{greeting} {user}'

    @app.route('/boom')
    async def boom(user):
        raise RuntimeError('internal detail')

    async with TestClient(app) as client:
        ok = await client.get('/')
        custom = await client.get('/custom')
        boom = await client.get('/boom')
    assert ok.text == 'ada' and ok.header('x-seen') == 'yes'
    assert custom.text == 'hi ada'
    assert boom.status == 500 and 'internal detail' not in boom.text


async def test_one_provider_goes_by_position_unless_the_callable_takes_keywords_only():
    import functools

    app = Tremolo()

    @app.provide('user')
    def user(request):
        return request.headers.get('x-user', 'anonymous')

    def keywords_only(func):
        @functools.wraps(func)  # the signature says (user), the wrapper takes keywords only
        async def wrapper(**kwargs):
            return await func(**kwargs)
        return wrapper

    @app.route('/first')
    async def first(user, greeting='hello'):
        return f'{greeting} {user}'

    @app.route('/wrapped')
    @keywords_only
    async def wrapped(user):
        return f'wrapped {user}'

    @app.route('/second')
    async def second(greeting='hi', *, user):
        return f'{greeting} {user}'

    async with TestClient(app) as client:
        answers = [(await client.get(path, headers={'X-User': 'ada'})).text
                   for path in ('/first', '/wrapped', '/second')]
    assert answers == ['hello ada', 'wrapped ada', 'hi ada']
