"""Request-rate limits counted in a real Redis: both algorithms through the limiter, one quota
for two server processes ("two hosts"), and the ``fail_open`` policy while Redis is killed,
frozen and started again."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import pytest
from tremolo.extensions.redis import Redis
from tremolo.middleware.ratelimit import RateLimiter

from tests.apps.harness import child_env
from tests.apps.redis_server import needs_redis
from tremolo import Tremolo
from tremolo.testing import TestClient

pytestmark = needs_redis


def make_app(redis_url: str, algorithm: str = 'gcra', **options):
    app = Tremolo()
    redis = app.install(Redis(redis_url, timeout=0.5, retry_interval=0.2))
    limiter = app.install(RateLimiter(options.pop('rate', '3/minute'),
                                      store=redis.rate_limit_store(algorithm), **options))

    @app.route('/')
    async def index():
        return 'ok'

    @app.post('/login', rate_limit='1/minute')
    async def login():
        return 'welcome'

    return app, redis, limiter


# -- in process -----------------------------------------------------------------------------------

@pytest.mark.parametrize('algorithm', ['gcra', 'sliding-window'])
async def test_both_algorithms_count_in_redis(redis_server, algorithm):
    app, _, limiter = make_app(redis_server.url, algorithm)
    assert limiter.algorithm == algorithm
    async with TestClient(app) as client:
        responses = [await client.get('/') for _ in range(4)]
        logins = [(await client.post('/login')).status for _ in range(2)]
    assert [r.status for r in responses] == [200, 200, 200, 429]
    fields = [r.header('ratelimit').split(';') for r in responses[:3]]
    assert [f[:2] for f in fields] == [['"ratelimit"', f'r={n}'] for n in (2, 1, 0)]
    resets = [int(f[2][2:]) for f in fields]
    if algorithm == 'gcra':
        assert resets == [20, 40, 60]  # a request every 20 s gives the quota back
    else:
        assert all(0 < t <= 120 for t in resets)  # this window and the next
    refused = responses[3]
    assert refused.header('ratelimit-policy') == '"ratelimit";q=3;w=60'
    assert 1 <= int(refused.header('retry-after')) <= 120
    assert logins == [200, 429]  # a route's own quota, its own key
    namespace = 'gcra' if algorithm == 'gcra' else 'window'
    keys = redis_server.command('KEYS', '*').decode()
    assert f'tremolo:ratelimit:{namespace}:ratelimit:*:127.0.0.1' in keys
    assert f'tremolo:ratelimit:{namespace}:ratelimit:/login:127.0.0.1' in keys


def test_the_algorithm_is_the_stores(redis_server):
    redis = Redis(redis_server.url)
    with pytest.raises(ValueError, match=r"counts with 'gcra'; ask the store for "
                                         r"'sliding-window' .*rate_limit_store"):
        RateLimiter(store=redis.rate_limit_store(), algorithm='sliding-window')
    limiter = RateLimiter(store=redis.rate_limit_store('sliding-window'),
                          algorithm='sliding-window')
    assert repr(limiter) == '<RateLimiter ratelimit 100/60s sliding-window>'


@pytest.mark.parametrize('fail_open, during', [
    (False, [200, 200, 200, 429]),  # each worker counts on its own meanwhile
    (True, [200, 200, 200, 200]),   # not limited meanwhile
])
async def test_redis_lost_and_back(redis_server, caplog, fail_open, during):
    app, redis, _ = make_app(redis_server.url, fail_open=fail_open)
    loop = asyncio.get_running_loop()
    with caplog.at_level(logging.DEBUG, 'tremolo'):
        async with TestClient(app) as client:
            assert [(await client.get('/')).status for _ in range(4)] == [200] * 3 + [429]
            redis_server.stop()  # killed: its counts are gone with it
            started = loop.time()
            statuses = [(await client.get('/')).status for _ in range(4)]
            assert loop.time() - started < 2  # at once: nobody waits for a dead server
            assert statuses == during
            redis_server.start()
            for _ in range(100):
                if redis.available:
                    break
                await asyncio.sleep(0.05)
            assert redis.available
            # Counted in Redis again, from nothing (a new server): the quota is whole.
            assert [(await client.get('/')).status for _ in range(4)] == [200] * 3 + [429]
            assert b'tremolo:ratelimit:gcra:' in redis_server.command('KEYS', '*')
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum('is unreachable' in m for m in warnings) == 1, warnings
    assert sum('answers again' in m for m in warnings) == 1, warnings
    assert len(warnings) == 2, warnings  # one line per outage, one when it is over


async def test_redis_down_at_start_with_fail_open(redis_server, caplog):
    """``Redis(fail_open=True)`` serves without Redis from the start: the limiter counts in
    the worker until Redis answers, then in Redis."""
    redis_server.stop()
    app = Tremolo()
    redis = app.install(Redis(redis_server.url, timeout=0.5, retry_interval=0.2, fail_open=True))
    app.install(RateLimiter('2/minute', store=redis.rate_limit_store()))

    @app.route('/')
    async def index():
        return 'ok'

    with caplog.at_level(logging.WARNING, 'tremolo'):
        async with TestClient(app) as client:
            assert [(await client.get('/')).status for _ in range(3)] == [200, 200, 429]
            redis_server.start()
            for _ in range(100):
                if redis.available:
                    break
                await asyncio.sleep(0.05)
            assert [(await client.get('/')).status for _ in range(3)] == [200, 200, 429]
    assert b'tremolo:ratelimit:gcra:' in redis_server.command('KEYS', '*')
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and 'is unreachable' in warnings[0], warnings


async def test_a_frozen_redis_holds_no_request(redis_server):
    """Redis that accepts but never answers: the requests in flight wait ``timeout`` (0.5 s),
    the next ones not at all; with Redis awake, its counts are used again."""
    app, redis, _ = make_app(redis_server.url, rate='100/minute')
    async with TestClient(app) as client:
        assert (await client.get('/')).header('ratelimit').startswith('"ratelimit";r=99;')
        redis_server.pause()
        try:
            started = time.monotonic()
            first = await asyncio.gather(*(client.get('/') for _ in range(3)))
            waited = time.monotonic() - started
            started = time.monotonic()
            then = [await client.get('/') for _ in range(5)]
            after = time.monotonic() - started
        finally:
            redis_server.resume()
        assert [r.status for r in first + then] == [200] * 8
        assert waited < 1.5, waited
        assert after < 0.5, after
        for _ in range(100):
            if redis.available:
                break
            await asyncio.sleep(0.05)
        answer = await client.get('/')
    # Counted in Redis again, where the count goes on from the request before the freeze
    # (and the 3 in flight, if Redis read them when it woke up); the worker's own count of the
    # 8 requests meanwhile (which would leave 91) is gone.
    remaining = int(answer.header('ratelimit').split(';')[1][2:])
    assert 95 <= remaining <= 98, answer.header('ratelimit')


# -- two hosts ------------------------------------------------------------------------------------

def host(procs, redis_server, **env: str):
    return procs.cli('tests.apps.stores:app', '--port', '0',
                     env=child_env(REDIS_URL=redis_server.url, **env))


@pytest.mark.slow
@pytest.mark.parametrize('algorithm', ['gcra', 'sliding-window'])
async def test_two_hosts_share_one_quota(procs, redis_server, algorithm):
    """10 requests per minute for a client, whichever host it reaches: 10 in all, not 10 on
    each."""
    hosts = [host(procs, redis_server, ALGORITHM=algorithm) for _ in range(2)]
    urls = [await server.url('/') for server in hosts]
    statuses = {url: [] for url in urls}
    remaining = []
    async with aiohttp.ClientSession() as session:
        pids = set()
        for url in urls:
            async with session.get(url + 'pid') as response:
                pids.add(await response.text())
        assert len(pids) == 2
        for n in range(16):
            url = urls[n % 2]
            async with session.get(url) as response:
                statuses[url].append(response.status)
                if response.status == 200:
                    remaining.append(int(response.headers['RateLimit'].split(';')[1][2:]))
    counted = [status for url in urls for status in statuses[url]]
    assert counted.count(200) == 10 and counted.count(429) == 6, statuses
    assert all(statuses[url].count(200) == 5 for url in urls), statuses  # in turn
    assert remaining == list(range(9, -1, -1))  # one count, whichever host answered


@pytest.mark.slow
async def test_two_hosts_through_an_outage(procs, redis_server):
    """Redis killed: each host counts on its own (its own 10), one warning each; Redis back:
    one count for both again."""
    hosts = [host(procs, redis_server) for _ in range(2)]
    urls = [await server.url('/') for server in hosts]

    async def statuses(session, count):
        found = []
        for n in range(count):
            async with session.get(urls[n % 2]) as response:
                found.append(response.status)
        return found

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        assert (await statuses(session, 12)).count(200) == 10
        redis_server.stop()
        started = time.monotonic()
        assert (await statuses(session, 24)).count(200) == 20  # 10 on each host
        assert time.monotonic() - started < 5
        for server in hosts:
            await server.wait_for('Redis at .* is unreachable')
        redis_server.start()
        for server in hosts:
            await server.wait_for('Redis at .* answers again', timeout=10)
        assert (await statuses(session, 12)).count(200) == 10
    for server in hosts:
        assert server.stderr.count('is unreachable') == 1, server.stderr
        assert server.stderr.count('answers again') == 1, server.stderr
