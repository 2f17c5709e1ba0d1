"""Sessions kept in a real Redis: shared by two server processes ("two hosts"), expiring with
``max_age``, deleted and regenerated in Redis, and answered ``503`` (then served again) while
Redis is killed or frozen."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import aiohttp
import pytest
from tremolo.extensions.redis import Redis
from tremolo.extensions.sessions import Sessions

from tests.apps.harness import child_env
from tests.apps.redis_server import needs_redis
from tremolo import Tremolo
from tremolo.testing import TestClient

pytestmark = needs_redis

SECRET = 'session-redis-test-secret-0123456789'


def make_app(redis_url: str, **options):
    app = Tremolo()
    redis = app.install(Redis(redis_url, timeout=0.5, retry_interval=0.2))
    app.install(Sessions(SECRET, store=redis.session_store(), **options))

    @app.route('/count')
    async def count(session):
        session['count'] = session.get('count', 0) + 1
        return {'count': session['count'], 'new': session.new}

    @app.route('/login')
    async def login(session):
        session.regenerate()
        session['user'] = 'ada'
        return 'hi'

    @app.route('/logout')
    async def logout(session):
        session.clear()
        return 'bye'

    @app.route('/plain')
    async def plain():
        return 'no session here'

    return app, redis


def session_cookie(response) -> str:
    for name, value in response.header_list:
        if name.lower() == 'set-cookie' and value.startswith('session='):
            return value.split(';')[0]
    raise AssertionError(f'no session cookie in {response.header_list}')


def stored_keys(redis_server) -> list[str]:
    answer = redis_server.command('KEYS', 'tremolo:session:*').decode()
    return [line for line in answer.split('\r\n') if line.startswith('tremolo:session:')]


# -- in process -----------------------------------------------------------------------------------

async def test_sessions_live_in_redis_with_their_max_age(redis_server):
    app, _ = make_app(redis_server.url, max_age=600)
    async with TestClient(app) as client:
        first = await client.get('/count')
        cookie = session_cookie(first)
        second = await client.get('/count', headers={'Cookie': cookie})
    assert first.json() == {'count': 1, 'new': True}
    assert second.json() == {'count': 2, 'new': False}
    [key] = stored_keys(redis_server)
    assert json.loads(redis_server.command('GET', key).split(b'\r\n')[1]) == {'count': 2}
    ttl = int(redis_server.command('PTTL', key)[1:])
    assert 590_000 < ttl <= 600_000  # max_age, from the last save
    assert key.split(':')[-1] not in cookie  # the cookie holds a signed id, not the key alone


async def test_an_expired_session_is_gone_from_redis(redis_server):
    app, _ = make_app(redis_server.url, max_age=0.5)
    async with TestClient(app) as client:
        cookie = session_cookie(await client.get('/count'))
        assert (await client.get('/count', headers={'Cookie': cookie})).json()['count'] == 2
        await asyncio.sleep(0.7)
        again = await client.get('/count', headers={'Cookie': cookie})
    assert again.json() == {'count': 1, 'new': True}  # Redis let it expire
    assert len(stored_keys(redis_server)) == 1  # the new one


async def test_login_regenerates_and_logout_deletes_in_redis(redis_server):
    app, _ = make_app(redis_server.url)
    async with TestClient(app) as client:
        planted = session_cookie(await client.get('/count'))
        [before] = stored_keys(redis_server)
        login = await client.get('/login', headers={'Cookie': planted})
        cookie = session_cookie(login)
        [after] = stored_keys(redis_server)
        assert after != before and cookie != planted  # a new id: the planted one is worth nothing
        assert (await client.get('/count', headers={'Cookie': planted})).json()['new']
        await client.get('/logout', headers={'Cookie': cookie})
    assert after not in stored_keys(redis_server)


@pytest.mark.parametrize('outage', ['killed', 'frozen'])
async def test_an_outage_answers_503_then_sessions_come_back(redis_server, caplog, outage):
    app, redis = make_app(redis_server.url)
    with caplog.at_level(logging.DEBUG, 'tremolo'):
        async with TestClient(app) as client:
            cookie = session_cookie(await client.get('/count'))
            if outage == 'killed':
                redis_server.stop()
            else:
                redis_server.pause()
            try:
                started = time.monotonic()
                answers = [await client.get('/count', headers={'Cookie': cookie})
                           for _ in range(5)]
                waited = time.monotonic() - started
                plain = await client.get('/plain', headers={'Cookie': cookie})
            finally:
                if outage == 'frozen':
                    redis_server.resume()
            assert [a.status for a in answers] == [503] * 5
            assert 'retry later' in answers[0].text
            assert waited < 1.5, waited  # one timeout at most, then at once
            assert plain.text == 'no session here'  # a route without a session is not touched
            if outage == 'killed':
                redis_server.start()
            for _ in range(100):
                if redis.available:
                    break
                await asyncio.sleep(0.05)
            back = await client.get('/count', headers={'Cookie': cookie})
    if outage == 'frozen':
        assert back.json() == {'count': 2, 'new': False}  # the data survived the freeze
    else:
        assert back.json() == {'count': 1, 'new': True}  # a new Redis, without the data
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2, warnings  # unreachable, answers again: not a line per request
    assert 'is unreachable' in warnings[0] and 'answers again' in warnings[1]


# -- two hosts ------------------------------------------------------------------------------------

def host(procs, redis_server, **env: str):
    return procs.cli('tests.apps.stores:app', '--port', '0',
                     env=child_env(REDIS_URL=redis_server.url, **env))


@pytest.mark.slow
async def test_a_session_written_on_one_host_is_read_on_the_other(procs, redis_server):
    first, second = (host(procs, redis_server, MAX_AGE='2') for _ in range(2))
    one = (await first.url('')).rstrip('/')
    other = (await second.url('')).rstrip('/')
    # Cookies are not kept per port: both hosts see the one cookie, as two hosts behind one
    # name would. (unsafe: kept for an IP address.)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.post(f'{one}/session/user', data='ada') as response:
            assert response.status == 200
            # The cookie lives as long as the data: MAX_AGE=2 on both hosts.
            assert 'Max-Age=2;' in response.headers['Set-Cookie']
            cookie = response.cookies['session'].value
        async with session.get(f'{other}/session') as response:
            assert await response.json() == {'data': {'user': 'ada'}, 'new': False}
        async with session.post(f'{other}/session/cart', data='apple') as response:
            assert response.status == 200
        async with session.get(f'{one}/session') as response:
            assert await response.json() == {'data': {'user': 'ada', 'cart': 'apple'},
                                             'new': False}
        await asyncio.sleep(2.3)  # 2 s after the last save
        session.cookie_jar.clear()  # what the browser forgot, Redis forgot too:
        async with session.get(f'{other}/session', headers={'Cookie': f'session={cookie}'}
                               ) as response:
            assert await response.json() == {'data': {}, 'new': True}
        assert stored_keys(redis_server) == []
        async with session.post(f'{one}/session/user', data='grace') as response:
            assert response.status == 200
        async with session.post(f'{other}/logout') as response:
            assert await response.text() == 'bye'
        async with session.get(f'{one}/session') as response:
            assert await response.json() == {'data': {}, 'new': True}
    assert stored_keys(redis_server) == []
