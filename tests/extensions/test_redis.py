"""The Redis extension against a real ``redis-server``: the pool, the health check, outages, and
the atomic scripts of the request-rate limit, session and bandwidth stores."""

from __future__ import annotations

import asyncio
import logging
import sys
from random import Random

import pytest
from tremolo.extensions.redis import (
    GCRA_SCRIPT,
    SLIDING_WINDOW_SCRIPT,
    Redis,
    StoreUnavailable,
    redact,
)
from tremolo.middleware.ratelimit_store import Rate, gcra, sliding_window

from tests.apps.redis_server import needs_redis

pytestmark = needs_redis


@pytest.fixture
async def redis(redis_server):
    store = Redis(redis_server.url, timeout=0.5, retry_interval=0.2)
    await store.start()
    yield store
    await store.close()


def test_the_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, 'redis', None)
    monkeypatch.setitem(sys.modules, 'redis.asyncio', None)
    with pytest.raises(RuntimeError, match=r"pip install 'tremolo\[redis\]'"):
        Redis()


@pytest.mark.parametrize('kwargs, message', [
    ({'url': 'http://127.0.0.1:6379'}, 'must start with redis://, rediss:// or unix://'),
    ({'timeout': 0}, 'timeout must be a number of seconds above zero'),
    ({'retry_interval': -1}, 'retry_interval must be'),
    ({'prefix': 3}, 'prefix must be a string'),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Redis(**kwargs)


def test_passwords_stay_out_of_messages():
    assert redact('redis://user:secret@host:6380/1') == 'redis://user:***@host:6380/1'
    assert 'secret' not in repr(Redis('rediss://:secret@example.com/0'))


async def test_start_fails_clearly_when_redis_is_down(tmp_path, caplog):
    url = f'unix://{tmp_path}/nobody.sock'
    with pytest.raises(RuntimeError, match=f'Redis at {url} cannot be reached'):
        await Redis(url).start()
    relaxed = Redis(url, fail_open=True, retry_interval=10)
    with caplog.at_level(logging.WARNING, 'tremolo.redis'):
        await relaxed.start()
    assert not relaxed.available
    assert [r.getMessage() for r in caplog.records if 'unreachable' in r.getMessage()]
    with pytest.raises(StoreUnavailable):  # at once, without a round trip
        await relaxed.run(lambda client: client.ping())
    await relaxed.close()


async def test_an_outage_is_logged_once_and_ends_by_itself(redis_server, redis, caplog):
    recovered = []
    redis.on_recovered(lambda: recovered.append(True))
    with caplog.at_level(logging.WARNING, 'tremolo.redis'):
        redis_server.stop()
        for _ in range(5):
            with pytest.raises(StoreUnavailable):
                await redis.run(lambda client: client.set('tremolo:k', 'v'))
        redis_server.start()
        for _ in range(50):
            if redis.available:
                break
            await asyncio.sleep(0.05)
    assert redis.available and recovered == [True]
    messages = [record.getMessage() for record in caplog.records]
    assert sum('is unreachable' in m for m in messages) == 1
    assert sum('answers again' in m for m in messages) == 1
    assert await redis.run(lambda client: client.set('tremolo:k', 'v'))


async def test_the_client_is_injected_and_keys_are_prefixed(app, client_for, redis_server):
    app.install(Redis(redis_server.url, prefix='shop:'))

    @app.route('/visits')
    async def visits(redis):
        return str(await redis.incr('shop:visits'))

    async with client_for(app) as client:
        assert (await client.get('/visits')).text == '1'
        assert (await client.get('/visits')).text == '2'
        # The pool's connections dropped: a request connects again, with the client's
        # timeouts (which need a task: a request's first step runs without one).
        redis_server.command('CLIENT', 'KILL', 'TYPE', 'normal')
        assert (await client.get('/visits')).text == '3'
    assert Redis(redis_server.url, prefix='shop:').key('session', 'a') == 'shop:session:a'


async def test_rate_limit_store_counts_atomically(redis):
    store = redis.rate_limit_store()
    results = await asyncio.gather(*(store.hit('client:1', 10, 60) for _ in range(30)))
    assert sum(result.allowed for result in results) == 10
    refused = [result for result in results if not result.allowed]
    assert all(5.0 < result.retry_after <= 6.0 for result in refused)  # one per 6 s
    allowed = sorted((r for r in results if r.allowed), key=lambda r: r.remaining)
    assert [r.remaining for r in allowed] == list(range(10))
    other = await store.hit('client:2', 10, 60)
    assert other.allowed and other.remaining == 9
    ttl = await redis.client.pttl('tremolo:ratelimit:gcra:client:1')
    assert 0 < ttl <= 60_000


async def test_rate_limit_store_allows_again_after_the_interval(redis):
    store = redis.rate_limit_store()
    assert (await store.hit('fast', 2, 0.2)).allowed
    assert (await store.hit('fast', 2, 0.2)).allowed
    refused = await store.hit('fast', 2, 0.2)
    assert not refused.allowed
    await asyncio.sleep(refused.retry_after + 0.02)
    assert (await store.hit('fast', 2, 0.2)).allowed


async def test_session_store_keeps_data_for_its_ttl(redis):
    store = redis.session_store(ttl=60)
    await store.save('abc', {'user': 'ada', 'cart': [1, 2]})
    assert await store.load('abc') == {'user': 'ada', 'cart': [1, 2]}
    assert 0 < await redis.client.pttl('tremolo:session:abc') <= 60_000
    await store.save('short', {'n': 1}, ttl=0.1)
    await asyncio.sleep(0.3)
    assert await store.load('short') is None
    await store.delete('abc')
    assert await store.load('abc') is None
    with pytest.raises(ValueError, match='ttl'):
        redis.session_store(ttl=0)


async def test_sessions_fail_loudly_during_an_outage(redis_server, redis):
    store = redis.session_store()
    redis_server.stop()
    with pytest.raises(StoreUnavailable):
        await store.load('abc')
    with pytest.raises(ConnectionError):  # what a session middleware catches
        await store.save('abc', {})


async def test_lease_script_keeps_the_token_bucket_semantics(redis):
    store = redis.bandwidth_store()
    assert await store.lease('b:download', '', 1000, 500, 500) == (0.0, 1000.0)
    wait, rate = await store.lease('b:download', '', 1000, 500, 250)
    assert 0.2 < wait <= 0.25 and rate == 1000
    await store.lease('b:download', '', 1000, 500, -10_000)  # given back, up to the burst
    tokens = float(await redis.client.hget('tremolo:bandwidth:{b:download}:', 'tokens'))
    assert tokens == 500
    assert await store.set_rate('b:download', 4000, 500)
    assert (await store.lease('b:download', '', 1000, 500, 100))[1] == 4000.0
    ttl = await redis.client.pttl('tremolo:bandwidth:{b:download}:')
    assert 59_000 < ttl <= 61_000  # forgotten a minute after it is full again


# -- the scripts compute what the pure functions compute --------------------------------------

def on_a_clock(source: str) -> str:
    """A script that reads the time from its fourth argument instead of Redis's clock."""
    line = "local clock = redis.call('TIME')"
    assert source.count(line) == 1
    return source.replace(line, "local clock = {ARGV[4], '0'}")


@pytest.mark.parametrize('algorithm', ['gcra', 'sliding-window'])
@pytest.mark.parametrize('limit, period', [(5, 10.0), (3, 2.5), (10, 1.0), (4, 0.3)])
async def test_the_scripts_are_the_algorithms(redis, algorithm, limit, period):
    """Fed the same times, a script in Redis and its pure function in Python give the same
    answers, request after request, at the scale of real clocks (1.7e9 s)."""
    rate = Rate(limit, period)
    source = on_a_clock(GCRA_SCRIPT if algorithm == 'gcra' else SLIDING_WINDOW_SCRIPT)
    random = Random(f'{algorithm} {rate}')
    now = 1_700_000_000.0 + random.random()
    state: object = 0.0 if algorithm == 'gcra' else (0.0, 0, 0)
    outcomes = []
    for _ in range(150):
        # Gaps around the interval, so that requests are refused and allowed in turn; never
        # shorter than 20 ms, so that a key never expires (in real time) before its time.
        now += max(0.02, random.expovariate(1.5 / rate.interval))
        cost = random.choice((1, 1, 1, 2))
        if algorithm == 'gcra':
            state, expected = gcra(state, now, rate, cost)
        else:
            state, expected = sliding_window(state, now, rate, cost)
        allowed, remaining, retry_after, reset_after = await redis.client.eval(
            source, 1, 'tremolo:test:key', limit, period, cost, repr(now))
        assert (bool(allowed), remaining) == (expected.allowed, expected.remaining), now
        assert float(retry_after) == pytest.approx(expected.retry_after, abs=2e-6)
        assert float(reset_after) == pytest.approx(expected.reset_after, abs=2e-6)
        outcomes.append(expected.allowed)
    assert 10 < sum(outcomes) < 140  # both answers were compared, many times


async def test_rate_limit_store_sliding_window(redis):
    store = redis.rate_limit_store('sliding-window')
    assert store.algorithm == 'sliding-window'
    results = await asyncio.gather(*(store.hit('client:1', 10, 60) for _ in range(15)))
    assert sum(result.allowed for result in results) == 10
    assert sorted(r.remaining for r in results if r.allowed) == list(range(10))
    refused = [result for result in results if not result.allowed]
    # Full in this window: not before the next one.
    assert all(0 < result.retry_after <= 120 for result in refused)
    assert 0 < await redis.client.pttl('tremolo:ratelimit:window:client:1') <= 120_000
    # GCRA counts apart: another algorithm, another key.
    assert (await redis.rate_limit_store().hit('client:1', 10, 60)).remaining == 9
    with pytest.raises(ValueError, match='algorithm must be one of gcra, sliding-window'):
        redis.rate_limit_store('fixed-window')


async def test_a_request_is_one_round_trip(redis_server, redis):
    """One EVALSHA per request: the reads and writes of the count are inside the script."""
    store = redis.rate_limit_store()
    await store.hit('warm', 100, 60)  # the script is loaded
    before = _commandstats(redis_server)
    for _ in range(20):
        assert (await store.hit('client', 100, 60)).allowed
    after = _commandstats(redis_server)
    called = {name: after[name] - before.get(name, 0) for name in after
              if after[name] != before.get(name, 0) and name != 'info'}
    assert called == {'evalsha': 20, 'time': 20, 'get': 20, 'set': 20}


def _commandstats(redis_server) -> dict[str, int]:
    calls = {}
    for line in redis_server.command('INFO', 'commandstats').decode().splitlines():
        if line.startswith('cmdstat_'):
            name, _, fields = line[len('cmdstat_'):].partition(':')
            calls[name] = int(fields.split(',')[0].split('=')[1])
    return calls


async def test_a_hung_redis_costs_one_timeout(redis_server, redis, caplog):
    """Redis frozen: the calls in flight fail after ``timeout`` (not sent again), the next
    ones at once; it answers again by itself once it wakes."""
    store = redis.rate_limit_store()
    assert (await store.hit('client', 10, 60)).allowed
    loop = asyncio.get_running_loop()
    with caplog.at_level(logging.WARNING, 'tremolo.redis'):
        redis_server.pause()
        try:
            started = loop.time()
            failures = await asyncio.gather(*(store.hit('client', 10, 60) for _ in range(5)),
                                            return_exceptions=True)
            waited = loop.time() - started
            assert all(isinstance(failure, StoreUnavailable) for failure in failures)
            assert 0.4 < waited < 0.9, waited  # timeout=0.5, once
            started = loop.time()
            with pytest.raises(StoreUnavailable):
                await store.hit('client', 10, 60)
            assert loop.time() - started < 0.05
        finally:
            redis_server.resume()
        for _ in range(100):
            if redis.available:
                break
            await asyncio.sleep(0.05)
    assert redis.available
    assert (await store.hit('client', 10, 60)).allowed
    messages = [record.getMessage() for record in caplog.records]
    assert sum('is unreachable' in m for m in messages) == 1


async def test_refusals_are_outages_for_the_stores(redis_server, redis):
    """A Redis that refuses to write (out of memory here; a read-only replica during a
    failover) makes the stores unavailable, without marking Redis down."""
    redis_server.command('CONFIG', 'SET', 'maxmemory', '1')
    try:
        with pytest.raises(StoreUnavailable, match="refused: .*maxmemory"):
            await redis.rate_limit_store().hit('client', 10, 60)
        with pytest.raises(StoreUnavailable, match="refused: .*maxmemory"):
            await redis.session_store().save('abcdefghijklmnopq', {'a': 1})
        assert redis.available
    finally:
        redis_server.command('CONFIG', 'SET', 'maxmemory', '0')
    assert (await redis.rate_limit_store().hit('client', 10, 60)).allowed


async def test_session_store_ignores_what_it_did_not_write(redis_server, redis):
    redis_server.command('SET', 'tremolo:session:forged', '{not json')
    assert await redis.session_store().load('forged') is None
    redis_server.command('SET', 'tremolo:session:listed', '[1,2]')
    assert await redis.session_store().load('listed') is None
