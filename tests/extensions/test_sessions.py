"""Sessions: signed cookies (tampering, expiry, rotation, the 4 KB limit), server-side stores
(memory and files), saved only when changed, cookie flags, and configuration errors."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import platform
import time

import aiohttp
import pytest
from tremolo.extensions.sessions import (
    FileSessionStore,
    MemorySessionStore,
    Session,
    Sessions,
)
from tremolo.middleware.signing import Signer, b64decode

from tremolo import Tremolo
from tremolo.testing import TestClient, serve

SECRET = 'session-test-secret-key-0123456789'


def make_app(**options):
    app = Tremolo()
    app.install(Sessions(options.pop('secret_key', SECRET), **options))

    @app.route('/count')
    async def count(session):
        session['count'] = session.get('count', 0) + 1
        return {'count': session['count'], 'new': session.new}

    @app.route('/read')
    async def read(session):
        return {'data': session.to_dict(), 'new': session.new}

    @app.route('/logout')
    async def logout(session):
        session.clear()
        return 'bye'

    @app.route('/login')
    async def login(session):
        session.regenerate()
        session['user'] = 'ada'
        return 'hi'

    @app.route('/big')
    async def big(session):
        session['blob'] = 'x' * 5000
        return 'too big'

    @app.route('/bad-value')
    async def bad_value(session):
        session['when'] = object()
        return 'never'

    @app.route('/stream')
    async def stream(session):
        yield 'started'
        session['late'] = True

    @app.route('/plain')
    async def plain(**server):
        return 'no session here'

    return app


def cookie_of(response, name='session'):
    for header_name, value in response.header_list:
        if header_name.lower() == 'set-cookie' and value.startswith(name + '='):
            return value
    return None


async def test_a_cookie_session_counts_and_is_saved_only_when_changed():
    async with TestClient(make_app()) as client:
        first = await client.get('/count')
        cookie = cookie_of(first).split(';')[0]
        second = await client.get('/count', headers={'Cookie': cookie})
        cookie = cookie_of(second).split(';')[0]
        read = await client.get('/read', headers={'Cookie': cookie})
        plain = await client.get('/plain', headers={'Cookie': cookie})
    assert first.json() == {'count': 1, 'new': True}
    assert second.json() == {'count': 2, 'new': False}
    assert read.json() == {'data': {'count': 2}, 'new': False}
    assert cookie_of(read) is None and cookie_of(plain) is None  # unchanged: not saved
    attributes = cookie_of(first)
    assert 'HttpOnly' in attributes and 'SameSite=Lax' in attributes
    assert 'Path=/' in attributes and 'Max-Age=1209600' in attributes
    assert 'Secure' not in attributes  # plain HTTP


async def test_an_untouched_new_session_sets_no_cookie():
    async with TestClient(make_app()) as client:
        response = await client.get('/read')
    assert response.json() == {'data': {}, 'new': True}
    assert cookie_of(response) is None


async def test_the_cookie_is_signed_readable_and_carries_its_expiry():
    async with TestClient(make_app()) as client:
        response = await client.get('/count')
    value = cookie_of(response).split(';')[0].split('=', 1)[1]
    payload = json.loads(b64decode(value.rsplit('.', 1)[0]))
    assert payload['d'] == {'count': 1}
    assert abs(payload['e'] - (time.time() + 14 * 86400)) < 5


@pytest.mark.parametrize('forge', ['payload', 'signature', 'other-key', 'garbage'])
async def test_a_tampered_cookie_is_a_new_session(forge):
    async with TestClient(make_app()) as client:
        response = await client.get('/count')
    value = cookie_of(response).split(';')[0].split('=', 1)[1]
    encoded, signature = value.rsplit('.', 1)
    forged = {
        'payload': Signer('x', salt='y').sign(b'{"d":{"count":99},"e":9999999999}').split(
            '.')[0] + '.' + signature,
        'signature': encoded + '.' + signature[::-1],
        'other-key': Signer('another-key', salt='tremolo.session').sign(
            b'{"d":{"count":99},"e":9999999999}'),
        'garbage': 'not-even-signed',
    }[forge]
    async with TestClient(make_app()) as client:
        read = await client.get('/read', headers={'Cookie': f'session={forged}'})
    assert read.json() == {'data': {}, 'new': True}


async def test_an_expired_cookie_is_a_new_session():
    signer = Signer(SECRET, salt='tremolo.session')
    old = signer.sign(b'{"d":{"count":5},"e":%d}' % (time.time() - 1))
    async with TestClient(make_app()) as client:
        read = await client.get('/read', headers={'Cookie': f'session={old}'})
    assert read.json() == {'data': {}, 'new': True}


async def test_keys_rotate():
    async with TestClient(make_app()) as client:
        cookie = cookie_of(await client.get('/count')).split(';')[0]
    async with TestClient(make_app(secret_key=['the-new-key-0123456789', SECRET])) as client:
        read = await client.get('/read', headers={'Cookie': cookie})
        renewed = await client.get('/count', headers={'Cookie': cookie})
    assert read.json() == {'data': {'count': 1}, 'new': False}
    value = cookie_of(renewed).split(';')[0].split('=', 1)[1]
    assert Signer('the-new-key-0123456789', salt='tremolo.session').unsign(value) is not None


async def test_clearing_deletes_the_cookie():
    async with TestClient(make_app()) as client:
        cookie = cookie_of(await client.get('/count')).split(';')[0]
        response = await client.get('/logout', headers={'Cookie': cookie})
    deleted = cookie_of(response)
    assert deleted.startswith('session=;') and 'Max-Age=0' in deleted


async def test_a_session_over_4_kb_is_a_clear_error(caplog):
    caplog.set_level(logging.ERROR, logger='tremolo')
    async with TestClient(make_app()) as client:
        response = await client.get('/big')
    assert response.status == 500 and b'4096' not in response.body  # no internals sent
    assert any('over the 4096 a browser keeps' in record.getMessage()
               or 'over the 4096 a browser keeps' in str(record.exc_info[1])
               for record in caplog.records if record.exc_info)


async def test_values_must_be_json(caplog):
    caplog.set_level(logging.ERROR, logger='tremolo')
    async with TestClient(make_app()) as client:
        response = await client.get('/bad-value')
    assert response.status == 500
    assert any('JSON values' in str(record.exc_info[1])
               for record in caplog.records if record.exc_info)


async def test_changing_the_session_after_the_response_started_is_an_error(caplog):
    caplog.set_level(logging.ERROR, logger='tremolo')
    async with TestClient(make_app()) as client:
        with pytest.raises(ConnectionError):  # the stream is cut: the client sees it fail
            await client.get('/stream')
    assert any('can no longer be saved' in str(record.exc_info[1])
               for record in caplog.records if record.exc_info)


async def test_secure_over_https_behind_a_trusted_proxy():
    async with TestClient(make_app(), trusted_proxies=['127.0.0.1']) as client:
        response = await client.get('/count', headers={'X-Forwarded-Proto': 'https'})
    assert 'Secure' in cookie_of(response)


async def test_cookie_settings():
    app = make_app(cookie_name='sid', max_age=60, persistent=False, samesite='Strict',
                   domain='example.com', path='/app')
    async with TestClient(app) as client:
        response = await client.get('/count')
    cookie = cookie_of(response, 'sid')
    assert 'SameSite=Strict' in cookie and 'Domain=example.com' in cookie
    assert 'Path=/app' in cookie and 'Max-Age' not in cookie


# -- server-side stores ----------------------------------------------------------------------

@pytest.fixture(params=['memory', 'file'])
def store(request, tmp_path):
    if request.param == 'memory':
        return MemorySessionStore()
    return FileSessionStore(tmp_path / 'sessions')


async def test_server_side_sessions_keep_only_an_id_in_the_cookie(store):
    async with TestClient(make_app(store=store)) as client:
        first = await client.get('/count')
        cookie = cookie_of(first).split(';')[0]
        second = await client.get('/count', headers={'Cookie': cookie})
        big = await client.get('/big', headers={'Cookie': cookie})  # no 4 KB limit here
        read = await client.get('/read', headers={'Cookie': cookie})
    assert second.json() == {'count': 2, 'new': False}
    assert big.status == 200 and len(read.json()['data']['blob']) == 5000
    session_id = Signer(SECRET, salt='tremolo.session').unsign(cookie.split('=', 1)[1])
    assert session_id is not None and b'count' not in session_id
    assert (await store.load(session_id.decode()))['count'] == 2


async def test_login_regenerates_the_id_and_logout_deletes_the_data(store):
    async with TestClient(make_app(store=store)) as client:
        cookie = cookie_of(await client.get('/count')).split(';')[0]
        old_id = Signer(SECRET, salt='tremolo.session').unsign(cookie.split('=', 1)[1]).decode()
        login = await client.get('/login', headers={'Cookie': cookie})
        new_cookie = cookie_of(login).split(';')[0]
        new_id = Signer(SECRET, salt='tremolo.session').unsign(
            new_cookie.split('=', 1)[1]).decode()
        assert new_id != old_id
        assert await store.load(old_id) is None  # the planted id is worthless now
        assert await store.load(new_id) == {'count': 1, 'user': 'ada'}
        await client.get('/logout', headers={'Cookie': new_cookie})
        assert await store.load(new_id) is None


async def test_stores_expire_sessions_and_keep_copies(tmp_path):
    memory = MemorySessionStore()
    await memory.save('a' * 20, {}, 0.01)
    files = FileSessionStore(tmp_path / 's', sweep_interval=0)
    await files.save('b' * 20, {}, 0.01)
    data = {'x': [1]}
    await files.save('c' * 20, data, 60)
    await memory.save('e' * 20, data)
    data['x'].append(2)  # the stores hold what was saved, not the dict
    assert await files.load('c' * 20) == {'x': [1]}
    assert await memory.load('e' * 20) == {'x': [1]}
    await asyncio.sleep(0.05)
    assert await memory.load('a' * 20) is None
    assert await files.load('b' * 20) is None
    await files.save('d' * 20, {}, 0.01)
    await asyncio.sleep(0.05)
    assert files.sweep() == 1  # d expired; c lives
    assert sorted(os.listdir(tmp_path / 's')) == ['c' * 20]
    with pytest.raises(ValueError):
        await files.load('../escape')
    with pytest.raises(TypeError):
        await memory.save('f' * 20, {'when': object()})


class UnreachableStore:
    async def load(self, session_id):
        raise ConnectionError('the store cannot be reached')

    async def save(self, session_id, data, ttl=None):
        raise ConnectionError('the store cannot be reached')

    async def delete(self, session_id):
        raise ConnectionError('the store cannot be reached')


async def test_a_store_that_cannot_be_reached_answers_503():
    cookie = Signer(SECRET, salt='tremolo.session').sign(b'x' * 43)
    async with TestClient(make_app(store=UnreachableStore())) as client:
        loading = await client.get('/read', headers={'Cookie': f'session={cookie}'})
        saving = await client.get('/count')
    assert loading.status == 503 and saving.status == 503
    assert loading.text == 'sessions are unavailable: retry later'


async def test_a_session_id_not_in_the_store_is_a_new_session():
    store = MemorySessionStore()
    forged = Signer(SECRET, salt='tremolo.session').sign(b'x' * 43)
    async with TestClient(make_app(store=store)) as client:
        read = await client.get('/read', headers={'Cookie': f'session={forged}'})
    assert read.json() == {'data': {}, 'new': True}


@pytest.mark.parametrize('store', [None, MemorySessionStore()], ids=['cookie', 'store'])
async def test_changes_made_by_response_hooks_are_saved_whatever_their_priority(store):
    # The session is saved just before the head, after every on_response hook.
    app = make_app(store=store)

    @app.on_response(priority=0)
    def outermost(request, session):
        if request.path == '/read':
            session['seen_by'] = 'outermost hook'

    @app.on_response(priority=1000)
    def innermost(request, session):
        if request.path == '/read':
            session['also'] = 'innermost hook'

    async with TestClient(app) as client:
        first = await client.get('/read')
        again = await client.get('/read', headers={'Cookie': cookie_of(first).split(';')[0]})
    assert again.json()['data'] == {'seen_by': 'outermost hook', 'also': 'innermost hook'}


async def test_a_value_changed_in_place_is_saved_once_marked():
    app = make_app()

    @app.route('/cart/{item}')
    async def cart(session, item):
        items = session.setdefault('cart', [])
        items.append(item)  # in place: not seen...
        session.modified = True  # ...until said
        return {'cart': items}

    async with TestClient(app) as client:
        first = await client.get('/cart/apple')
        cookie = cookie_of(first).split(';')[0]
        second = await client.get('/cart/pear', headers={'Cookie': cookie})
    assert second.json() == {'cart': ['apple', 'pear']}


@pytest.mark.skipif(platform.python_implementation() != 'CPython',
                    reason='PyPy has no reference counting: it frees nothing before a collection')
async def test_a_request_leaves_no_reference_cycle_behind():
    # Everything a request made is freed when it ends, without the cyclic garbage collector:
    # a session kept where the request's own objects reach it would hold them all until a
    # collection, on every request.
    import gc
    import weakref

    app = make_app()
    kept: list[weakref.ref] = []

    @app.route('/weak')
    async def weak(session, request):
        session['user'] = 'ada'  # loaded, changed and saved
        kept.append(weakref.ref(request))  # the session holds the response, which holds it
        return 'x'

    async with TestClient(app) as client:
        gc.disable()
        try:
            response = await client.get('/weak')
            await asyncio.sleep(0)
            assert kept[0]() is None
        finally:
            gc.enable()
    assert response.text == 'x' and cookie_of(response)


def test_the_session_mapping():
    session = Session({'a': 1})
    assert not session.modified and session['a'] == 1 and 'a' in session and len(session) == 1
    session.setdefault('b', 2)
    assert session.modified and dict(session) == {'a': 1, 'b': 2}


def test_a_session_is_a_dict_that_reading_leaves_unmodified():
    data = {'a': 1, 'b': [2]}
    session = Session(data)
    assert isinstance(session, dict) and session == data
    assert session.get('a') == 1 and session.get('z', 0) == 0 and list(session) == ['a', 'b']
    assert session.copy() == data and session.to_dict() == data and dict(session.items()) == data
    assert session.setdefault('a', 5) == 1  # there already: no change
    assert session.pop('z', None) is None  # not there: no change
    session.update({})
    session.update()
    assert not session.modified
    session['c'] = 3
    assert 'c' not in data  # the data given was copied


@pytest.mark.parametrize('change', [
    lambda session: session.__setitem__('c', 3),
    lambda session: session.__delitem__('a'),
    lambda session: session.pop('a'),
    lambda session: session.popitem(),
    lambda session: session.setdefault('c', 3),
    lambda session: session.update({'c': 3}),
    lambda session: session.update(c=3),
    lambda session: session.__ior__({'c': 3}),
    lambda session: session.clear(),
    lambda session: setattr(session, 'modified', True),
    lambda session: session.regenerate(),
])
def test_every_change_marks_the_session_once(change):
    changes = []
    session = Session({'a': 1}, on_change=changes.append)
    change(session)
    assert session.modified and changes == [session]
    session['d'] = 4  # a second change does not call again
    assert changes == [session]


def test_a_missing_key_is_a_key_error_and_no_change():
    session = Session()
    with pytest.raises(KeyError):
        session.pop('missing')
    with pytest.raises(KeyError):
        session.popitem()
    with pytest.raises(KeyError):
        del session['missing']
    assert session == {} and session.id is None and not session.regenerated
    assert repr(session) == '<Session {}>'


@pytest.mark.parametrize('options, error, message', [
    ({'secret_key': ''}, ValueError, 'secret_key'),
    ({'secret_key': 42}, TypeError, 'secret_key'),
    ({'max_age': 0}, ValueError, 'max_age'),
    ({'cookie_name': 'bad name'}, ValueError, 'cookie settings'),
    ({'store': object()}, TypeError, 'store'),
])
def test_bad_configuration(options, error, message):
    options.setdefault('secret_key', SECRET)
    with pytest.raises(error, match=message):
        Sessions(**options)


async def test_over_real_sockets(tmp_path):
    app = make_app(store=FileSessionStore(tmp_path / 'sessions'))
    async with serve(app) as server:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            for expected in (1, 2, 3):
                async with session.get(server.url + '/count') as response:
                    assert (await response.json())['count'] == expected
