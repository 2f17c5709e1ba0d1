"""Routing: static, parameterised and regex paths, methods, views, mounts."""

from __future__ import annotations

import uuid

import pytest

from tremolo import NotFound, RegistrationError, Tremolo, View
from tremolo.testing import TestClient
from tremolo.web.routing import PathPattern


async def test_static_and_parameter_routes(app):
    @app.route('/user/me')
    async def me():
        return 'me'

    @app.route('/user/{name}')
    async def by_name(name):
        return f'name={name}'

    @app.route('/item/{id:int}')
    async def item(id):
        return {'id': id, 'type': type(id).__name__}

    @app.route('/price/{value:float}')
    async def price(value):
        return {'value': value}

    @app.route('/thing/{key:uuid}')
    async def thing(key):
        return {'key': str(key), 'type': type(key).__name__}

    @app.route('/files/{rest:path}')
    async def files(rest):
        return rest

    key = uuid.uuid4()
    async with TestClient(app) as client:
        assert (await client.get('/user/me')).text == 'me'
        assert (await client.get('/user/bob')).text == 'name=bob'
        assert (await client.get('/user/b%C3%B6b')).text == 'name=böb'
        assert (await client.get('/item/-7')).json() == {'id': -7, 'type': 'int'}
        assert (await client.get('/item/x')).status == 404
        assert (await client.get('/price/2.5')).json() == {'value': 2.5}
        assert (await client.get(f'/thing/{key}')).json() == {'key': str(key), 'type': 'UUID'}
        assert (await client.get('/files/a/b/c.txt')).text == 'a/b/c.txt'
        assert (await client.get('/user/a/b')).status == 404


async def test_regex_route(app):
    @app.route(r'^/page/(?P<number>[0-9]+)(?:/(?P<slug>[a-z]+))?$')
    async def page(number, slug):
        return {'number': number, 'slug': slug}

    async with TestClient(app) as client:
        assert (await client.get('/page/12/intro')).json() == {'number': '12', 'slug': 'intro'}
        assert (await client.get('/page/3')).json() == {'number': '3', 'slug': None}
        assert (await client.get('/page/x')).status == 404


async def test_query_string_does_not_affect_routing(app):
    @app.route('/search')
    async def search(request):
        return {'q': request.query.getlist('q'), 'page': request.query.get('page')}

    async with TestClient(app) as client:
        response = await client.get('/search?q=a&q=b%20c&page=2')
    assert response.json() == {'q': ['a', 'b c'], 'page': '2'}


async def test_methods_405_with_allow_and_head_from_get(app):
    @app.route('/thing', methods=['GET', 'POST'])
    async def thing(request):
        return request.method

    @app.route('/thing', methods='DELETE')
    async def remove():
        return 'deleted'

    async with TestClient(app) as client:
        assert (await client.post('/thing')).text == 'POST'
        assert (await client.delete('/thing')).text == 'deleted'
        head = await client.head('/thing')
        assert head.status == 200 and head.header('content-length') == '4'  # 'HEAD'
        response = await client.put('/thing')
    assert response.status == 405
    assert response.header('allow') == 'DELETE, GET, HEAD, POST'


async def test_404_body_and_405_across_dynamic_routes(app):
    @app.route('/a/{x}', methods=['POST'])
    async def a(x):
        return x

    async with TestClient(app) as client:
        missing = await client.get('/nope')
        wrong = await client.get('/a/1')
    assert missing.status == 404 and missing.text == 'Not Found'
    assert wrong.status == 405 and wrong.header('allow') == 'POST'


async def test_shortcut_decorators(app):
    for method in ('get', 'post', 'put', 'patch', 'delete'):
        async def handler(request):
            return request.method

        getattr(app, method)('/r')(handler)

    async with TestClient(app) as client:
        for method in ('GET', 'POST', 'PUT', 'PATCH', 'DELETE'):
            assert (await client.request(method, '/r')).text == method


async def test_class_based_view(app):
    @app.route('/items/{id:int}')
    class Item(View):
        def __init__(self):
            self.deleted = []

        async def get(self, id):
            return {'id': id}

        async def delete(self, id, response):
            self.deleted.append(id)
            response.set_status(204)

    async with TestClient(app) as client:
        assert (await client.get('/items/3')).json() == {'id': 3}
        assert (await client.delete('/items/4')).status == 204
        response = await client.post('/items/5')
    assert response.status == 405
    assert response.header('allow') == 'DELETE, GET, HEAD'


async def test_view_instance_without_base_class(app):
    class Echo:
        async def post(self, request):
            return await request.body()

    app.add_route('/echo', Echo())
    async with TestClient(app) as client:
        assert (await client.post('/echo', body=b'hi')).body == b'hi'


async def test_mount_prefixes_routes_and_scopes_middleware(app):
    api = Tremolo()
    seen = []

    @api.on_request
    async def api_only(request):
        seen.append(request.path)

    @api.route('/users/{id:int}')
    async def user(id):
        return {'user': id}

    @api.error(404)
    async def api_not_found():
        return {'error': 'not found'}

    @app.route('/')
    async def index():
        return 'root'

    app.mount('/api', api)
    async with TestClient(app) as client:
        assert (await client.get('/api/users/1')).json() == {'user': 1}
        assert (await client.get('/')).text == 'root'
        api_missing = await client.get('/api/nothing')
        root_missing = await client.get('/nothing')
    assert seen == ['/api/users/1', '/api/nothing']
    assert api_missing.status == 404 and api_missing.json() == {'error': 'not found'}
    assert root_missing.status == 404 and root_missing.text == 'Not Found'


async def test_url_for(app):
    @app.route('/user/{id:int}/files/{rest:path}', name='file')
    async def file(id, rest):
        return ''

    api = Tremolo()

    @api.route('/ping', name='ping')
    async def ping():
        return ''

    app.mount('/api', api)
    assert app.url_for('file', id=3, rest='a b/c') == '/user/3/files/a%20b/c'
    assert app.url_for('ping') == '/api/ping'
    with pytest.raises(KeyError):
        app.url_for('file', id=3)
    with pytest.raises(KeyError):
        app.url_for('missing')


@pytest.mark.parametrize(
    'path', ['no-slash', '/x/{bad', '/x/{id:nope}', '/x/{a}/{a}', '^(unclosed', '/x/{request}']
)
def test_bad_paths_fail_at_registration(app, path):
    with pytest.raises(RegistrationError):
        app.route(path)(lambda: '')


def test_duplicate_route_names_the_handlers(app):
    @app.route('/x')
    async def first():
        return ''

    with pytest.raises(RegistrationError, match=r"duplicate route: GET /x .*first"):
        @app.route('/x', methods=['GET', 'POST'])
        async def second():
            return ''


def _handler(name: str):
    async def handler():
        return name

    handler.__qualname__ = name
    return handler


@pytest.mark.parametrize(('earlier', 'later', 'methods'), [
    ('/a/{id}', '/a/{id:int}', 'GET'),
    ('/a/{id}', '/a/{id:uuid}', 'GET'),
    ('/a/{x:float}', '/a/{y:int}', 'GET'),
    ('/a/{x}', '/a/{y}', 'GET'),  # two names, one pattern
    ('/{kind}/{id:int}', '/users/{id:int}', 'GET'),
    ('/files/{rest:path}', '/files/{name}/meta', 'GET'),
    ('/files/{rest:path}', '/files/{a}/{b:path}', 'GET'),
    ('/a/{id:int}/{tail}', '/a/{n:int}/7', 'GET'),
])
def test_a_route_an_earlier_one_hides_is_refused_naming_both(app, earlier, later, methods):
    app.add_route(earlier, _handler('broad'))
    with pytest.raises(RegistrationError) as info:
        app.add_route(later, _handler('narrow'))
    assert str(info.value) == (
        f"handler narrow for route {later!r} can never be reached for {methods}: handler "
        f"broad for route {earlier!r} matches every path it matches and is tried first; "
        f"register the more specific route first")


@pytest.mark.parametrize(('first', 'second', 'first_methods', 'second_methods'), [
    ('/a/{id:int}', '/a/{id}', None, None),  # the specific one first: both reachable
    ('/a/{id}', '/a/{id:int}', ['GET'], ['POST']),  # other methods
    ('/a/{id:int}', '/a/{y:float}', None, None),  # 1.5 reaches the second
    ('/a/{id}', '/a/{id}/more', None, None),
    ('/a/{id}', '/a/5', None, None),  # static paths are looked up first
    ('/a/{id}', '/b/{id}', None, None),
    ('^/a/(?P<id>.*)$', '/a/{id}', None, None),  # regexes are not compared
    ('/files/{rest:path}', '/files', None, None),
])
async def test_routes_that_stay_reachable_are_accepted(app, first, second, first_methods,
                                                       second_methods):
    app.add_route(first, _handler('first'), first_methods)
    app.add_route(second, _handler('second'), second_methods)
    app.compile()


def test_get_hides_a_later_head(app):
    app.add_route('/a/{id}', _handler('broad'), ['GET'])
    with pytest.raises(RegistrationError, match=r"reached for HEAD: handler broad"):
        app.add_route('/a/{id:int}', _handler('narrow'), ['HEAD'])


def test_a_method_added_to_an_earlier_path_can_hide_a_later_route(app):
    # The router tries patterns in the order their paths were first registered.
    app.add_route('/a/{id}', _handler('broad_get'), ['GET'])
    app.add_route('/a/{id:int}', _handler('narrow'), ['POST'])
    with pytest.raises(RegistrationError) as info:
        app.add_route('/a/{id}', _handler('broad_post'), ['POST'])
    assert str(info.value).startswith(
        "handler narrow for route '/a/{id:int}' can never be reached for POST: handler "
        "broad_post for route '/a/{id}'")


def test_a_mounted_route_hidden_by_the_parent_is_found_at_compile(app):
    app.add_route('/api/{name}', _handler('catch_all'))
    api = Tremolo()
    api.add_route('/{id:int}', _handler('item'))
    app.mount('/api', api)
    with pytest.raises(RegistrationError, match=(
            r"handler item for route '/\{id:int\}' can never be reached for GET: handler "
            r"catch_all for route '/api/\{name\}'")):
        app.compile()


def test_registration_after_start_is_an_error(app):
    sub = Tremolo()
    app.mount('/sub', sub)
    app.freeze()
    with pytest.raises(RegistrationError, match='already serving'):
        app.route('/late')(lambda: '')
    with pytest.raises(RegistrationError, match='already serving'):
        sub.on_request(lambda: None)


async def test_compile_changes_nothing(app):
    first = app.compile()
    app.route('/later')(lambda: 'later')  # still open: compile() does not freeze
    second = app.compile()
    assert first is not second
    assert second.router.lookup('GET', '/later')[0].where.endswith("'/later'")
    with pytest.raises(NotFound):
        first.router.lookup('GET', '/later')
    async with TestClient(app) as client:  # the client serves it, frozen
        assert (await client.get('/later')).text == 'later'
    with pytest.raises(RegistrationError, match='already serving'):
        app.route('/too-late')(lambda: '')


def test_bad_method_and_view_without_methods(app):
    with pytest.raises(RegistrationError, match='invalid HTTP method'):
        app.route('/x', methods=['G E T'])(lambda: '')

    class Empty(View):
        pass

    with pytest.raises(RegistrationError, match='defines none of'):
        app.route('/y')(Empty)


def test_mount_rules(app):
    sub = Tremolo()
    with pytest.raises(RegistrationError):
        app.mount('api', sub)
    with pytest.raises(RegistrationError):
        app.mount('/', sub)
    app.mount('/api', sub)
    with pytest.raises(RegistrationError):
        Tremolo().mount('/other', sub)
    with pytest.raises(RegistrationError):
        app.mount('/self', app)


def test_path_pattern_matching():
    pattern = PathPattern('/a/{x:int}/b')
    assert pattern.match('/a/12/b') == {'x': 12}
    assert pattern.match('/a/12/bc') is None
    assert pattern.match('/a/12/b/') is None
    assert PathPattern('/static').match('/static') == {}
