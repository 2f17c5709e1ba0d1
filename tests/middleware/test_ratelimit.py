"""Request-rate limits: the algorithms on a fake clock, the memory store's bounds, keys, route
quotas, the 429 answer and the IETF fields, startup checks, and a store of one's own."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from tremolo.middleware.ratelimit import RateLimiter
from tremolo.middleware.ratelimit_store import (
    MemoryRateLimitStore,
    Rate,
    RateLimitResult,
    gcra,
    sliding_window,
)

from tremolo import RegistrationError, Tremolo
from tremolo.testing import TestClient, serve


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- rates and algorithms ------------------------------------------------------------------------

@pytest.mark.parametrize('text, limit, period', [
    ('100/minute', 100, 60), ('10/second', 10, 1), ('5 per 10 seconds', 5, 10),
    ('1000/h', 1000, 3600), ('20/5m', 20, 300), ('1/day', 1, 86400), (' 3 / 2.5s ', 3, 2.5),
])
def test_rates_parse(text, limit, period):
    assert Rate.parse(text) == Rate(limit, period)


@pytest.mark.parametrize('text', ['abc', '10', '0/minute', '10/fortnight', '-1/s', ''])
def test_bad_rates(text):
    with pytest.raises(ValueError):
        Rate.parse(text)


def test_gcra_allows_the_quota_at_once_then_one_per_interval():
    rate = Rate(3, 3.0)  # a request a second, bursts of 3
    tat, now = 0.0, 100.0
    decisions = []
    for _ in range(4):
        tat, decision = gcra(tat, now, rate)
        decisions.append(decision)
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[3].retry_after == pytest.approx(1.0)
    assert decisions[3].reset_after == pytest.approx(3.0)
    tat, decision = gcra(tat, now + 1.0, rate)  # one interval later: one more
    assert decision.allowed and decision.remaining == 0
    tat, decision = gcra(tat, now + 10.0, rate)  # quiet long enough: the whole burst again
    assert decision.allowed and decision.remaining == 2


def test_sliding_window_counts_the_overlap_of_the_previous_window():
    rate = Rate(4, 10.0)
    state = (0.0, 0, 0)
    for _ in range(4):
        state, decision = sliding_window(state, 105.0, rate)
        assert decision.allowed
    state, refused = sliding_window(state, 109.0, rate)
    assert not refused.allowed
    # Next window, 1 s in: the previous window's 4 weigh 4 * 0.9 = 3.6, and one more is over.
    state, decision = sliding_window(state, 111.0, rate)
    assert not decision.allowed
    # 4 * (1 - t / 10) + 1 <= 4 once t >= 2.5: 1.5 s from now.
    assert decision.retry_after == pytest.approx(1.5)
    state, decision = sliding_window(state, 112.5, rate)
    assert decision.allowed and decision.remaining == 0
    state, decision = sliding_window(state, 117.5, rate)  # 4 * 0.25 + 1 = 2 in the window
    assert decision.allowed and decision.remaining == 1


def test_sliding_window_retry_after_when_the_current_window_is_full():
    rate = Rate(2, 10.0)
    state = (0.0, 0, 0)
    state, _ = sliding_window(state, 100.0, rate)
    state, _ = sliding_window(state, 101.0, rate)
    state, decision = sliding_window(state, 102.0, rate)
    assert not decision.allowed
    # The next window starts in 8 s; then 2 * (1 - t/10) + 1 <= 2 needs t >= 5.
    assert decision.retry_after == pytest.approx(8 + 5)
    state, later = sliding_window(state, 102.0 + decision.retry_after, rate)
    assert later.allowed


def test_sliding_window_carries_the_previous_window_whatever_the_rounding():
    """With a period of 0.1 s, floor(3.5) * 0.1 - floor(2.5) * 0.1 is 0.10000000000000003: the
    window before is still the window before."""
    rate = Rate(2, 0.1)
    state = (0.0, 0, 0)
    for _ in range(2):
        state, decision = sliding_window(state, 0.25, rate)
        assert decision.allowed
    state, decision = sliding_window(state, 0.31, rate)  # 2 * 0.9 + 1 > 2
    assert not decision.allowed
    assert state[1] == 2


async def test_the_memory_store_forgets_what_no_longer_limits():
    clock = Clock()
    store = MemoryRateLimitStore(max_keys=100, clock=clock)
    for number in range(100):
        assert (await store.hit(f'k{number}', 1, 1.0)).allowed
    assert len(store) == 100
    clock.now += 5  # every key has decayed
    await store.hit('new', 1, 1.0)
    assert len(store) == 1
    # Still full of live keys: the least recently used go.
    window = MemoryRateLimitStore('sliding-window', max_keys=100, clock=clock)
    for number in range(150):
        await window.hit(f'live{number}', 1, 1000.0)
    assert len(window) <= 100
    with pytest.raises(ValueError, match='algorithm'):
        MemoryRateLimitStore('leaky')


async def test_a_request_can_cost_more_than_one():
    store = MemoryRateLimitStore(clock=Clock())
    first = await store.hit('k', 10, 10.0, cost=6)
    second = await store.hit('k', 10, 10.0, cost=6)
    assert first.allowed and first.remaining == 4
    assert not second.allowed and second.retry_after == pytest.approx(2.0)


def test_the_quick_count_agrees_with_gcra():
    # hit_ahead is GCRA without a result object: the same decisions, the same numbers.
    import random

    chooser = random.Random(7)
    clock = Clock(50.0)
    quick = MemoryRateLimitStore(clock=clock)
    full = MemoryRateLimitStore(clock=clock)
    rate = Rate(5, 2.0)
    for _ in range(500):
        clock.now += chooser.choice((0.0, 0.0, 0.05, 0.3, 0.4, 2.5))
        key = chooser.choice('ab')
        ahead = quick.hit_ahead(key, rate.period, rate.interval)
        result = full.hit_now(key, rate.limit, rate.period)
        assert (ahead > 0) == result.allowed
        if result.allowed:
            assert ahead == pytest.approx(result.reset_after)
            remaining = max(0, int((rate.period - ahead) / rate.interval + 1e-9))
            assert remaining == result.remaining


# -- the middleware ------------------------------------------------------------------------------

def make_app(clock=None, **options):
    app = Tremolo()
    if clock is not None:
        options['store'] = MemoryRateLimitStore(options.pop('algorithm', 'gcra'), clock=clock)
    app.install(RateLimiter(**options))

    @app.route('/')
    async def index(**server):
        return 'ok'

    @app.route('/other')
    async def other(**server):
        return 'other'

    @app.post('/login', rate_limit='2/minute')
    async def login(**server):
        return 'login'

    @app.route('/user/{id}', rate_limit='1/minute')
    async def user(id):
        return id

    @app.route('/health', rate_limit=False)
    async def health(**server):
        return 'healthy'

    return app


async def test_429_with_retry_after_and_the_ietf_fields():
    clock = Clock()
    async with TestClient(make_app(clock, rate='2/second')) as client:
        first = await client.get('/')
        second = await client.get('/')
        third = await client.get('/')
        clock.now += 0.5
        fourth = await client.get('/')
    assert [first.status, second.status, third.status, fourth.status] == [200, 200, 429, 200]
    assert first.header('ratelimit-policy') == '"ratelimit";q=2;w=1'
    assert first.header('ratelimit') == '"ratelimit";r=1;t=1'
    assert third.header('retry-after') == '1'
    assert third.header('ratelimit') == '"ratelimit";r=0;t=1'
    assert third.text.startswith('Too many requests')


async def test_the_default_quota_is_shared_and_route_quotas_are_their_own():
    clock = Clock()
    async with TestClient(make_app(clock, rate='3/minute')) as client:
        shared = [(await client.get(path)).status for path in ('/', '/other', '/', '/other')]
        logins = [(await client.post('/login')).status for _ in range(3)]
        health = [(await client.get('/health')).status for _ in range(5)]
        users = [(await client.get(path)).status for path in ('/user/1', '/user/2')]
    assert shared == [200, 200, 200, 429]
    assert logins == [200, 200, 429]
    assert health == [200] * 5  # exempt: no count, no fields
    # One quota for the route, whatever its parameters.
    assert users == [200, 429]


async def test_the_policy_is_the_routes_and_the_state_the_clients():
    clock = Clock()
    async with TestClient(make_app(clock, rate='3/minute')) as client:
        index = await client.get('/')
        login = await client.post('/login')
        health = await client.get('/health')
        missing = await client.get('/missing')
    assert index.header('ratelimit-policy') == '"ratelimit";q=3;w=60'
    assert index.header('ratelimit') == '"ratelimit";r=2;t=20'
    assert login.header('ratelimit-policy') == '"ratelimit";q=2;w=60'
    assert login.header('ratelimit') == '"ratelimit";r=1;t=30'
    assert health.header('ratelimit-policy') is None and health.header('ratelimit') is None
    assert missing.status == 404
    assert missing.header('ratelimit-policy') == '"ratelimit";q=3;w=60'
    assert missing.header('ratelimit') == '"ratelimit";r=1;t=40'


async def test_a_quota_a_hook_sets_for_one_request_is_the_policy_it_gets():
    clock = Clock()
    app = make_app(clock, rate='100/minute')

    @app.on_request(priority=0)
    def anonymous(request, context):
        if 'x-api-key' not in request.headers:
            context.options['rate_limit'] = '2/minute'

    async with TestClient(app) as client:
        anonymous_calls = [await client.get('/') for _ in range(3)]
        known = await client.get('/', headers={'X-API-Key': 'k'})
    assert [response.status for response in anonymous_calls] == [200, 200, 429]
    assert anonymous_calls[0].header_list.count(
        ('RateLimit-Policy', '"ratelimit";q=2;w=60')) == 1
    assert anonymous_calls[0].header('ratelimit-policy') == '"ratelimit";q=2;w=60'
    assert anonymous_calls[2].header('ratelimit-policy') == '"ratelimit";q=2;w=60'
    assert known.header('ratelimit-policy') == '"ratelimit";q=100;w=60'


async def test_clients_are_counted_apart():
    clock = Clock()
    async with TestClient(make_app(clock, rate='1/minute')) as client:
        a = client.connect(peer=('10.0.0.1', 1000))
        b = client.connect(peer=('10.0.0.2', 1000))
        assert (await a.request('GET', '/')).status == 200
        assert (await a.request('GET', '/')).status == 429
        assert (await b.request('GET', '/')).status == 200


async def test_counts_outlive_the_limiters_table_of_client_keys():
    # Past 4096 addresses the table of store keys by address starts over; the counts are the
    # store's, and stay.
    clock = Clock()
    async with TestClient(make_app(clock, rate='1/minute')) as client:
        first = client.connect(peer=('10.0.0.1', 1000))
        assert (await first.request('GET', '/')).status == 200
        for number in range(4200):
            other = client.connect(peer=(f'10.1.{number // 256}.{number % 256}', 1000))
            assert (await other.request('GET', '/')).status == 200
        assert (await first.request('GET', '/')).status == 429


async def test_behind_a_trusted_proxy_the_forwarded_client_is_counted():
    clock = Clock()
    async with TestClient(make_app(clock, rate='1/minute'),
                          trusted_proxies=['127.0.0.1']) as client:
        one = await client.get('/', headers={'X-Forwarded-For': '203.0.113.1'})
        two = await client.get('/', headers={'X-Forwarded-For': '203.0.113.2'})
        again = await client.get('/', headers={'X-Forwarded-For': '203.0.113.1'})
    assert [one.status, two.status, again.status] == [200, 200, 429]


async def test_keys_from_a_header_and_from_a_function():
    clock = Clock()
    by_header = make_app(clock, rate='1/minute', key='header:X-API-Key')
    async with TestClient(by_header) as client:
        statuses = [(await client.get('/', headers={'X-API-Key': key})).status
                    for key in ('a', 'b', 'a')]
    assert statuses == [200, 200, 429]

    def tenant(request):
        return request.query.get('tenant')  # None: not limited

    by_function = make_app(clock, rate='1/minute', key=tenant)
    async with TestClient(by_function) as client:
        statuses = [(await client.get(path)).status
                    for path in ('/?tenant=x', '/?tenant=x', '/', '/')]
    assert statuses == [200, 429, 200, 200]


async def test_sliding_window_through_the_middleware():
    clock = Clock(1000.0)
    async with TestClient(make_app(clock, rate='2/10s', algorithm='sliding-window')) as client:
        statuses = [(await client.get('/')).status for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_a_bad_route_quota_stops_the_server_at_startup_naming_the_route():
    app = make_app()
    sub = Tremolo()

    @sub.route('/bad', rate_limit='abc')
    async def bad(**server):
        return 'x'

    app.mount('/sub', sub)
    with pytest.raises(RegistrationError, match=r"route '/sub/bad': option 'rate_limit'"):
        async with TestClient(app):
            pass


@pytest.mark.parametrize('options, message', [
    ({'rate': 'abc'}, 'rate'), ({'algorithm': 'leaky-bucket'}, 'algorithm'),
    ({'key': 'cookie:x'}, 'key'), ({'name': 'has space'}, 'name'),
    ({'name': 'tab\there'}, 'name'), ({'name': 'caf\xe9'}, 'name'),
])
def test_bad_configuration_names_the_option(options, message):
    with pytest.raises(ValueError, match=message):
        RateLimiter(**options)
    with pytest.raises(TypeError, match='store'):
        RateLimiter(store=object())  # type: ignore[arg-type]


async def test_several_workers_with_a_memory_store_are_warned_about(caplog):
    app = make_app()
    caplog.set_level(logging.WARNING, logger='tremolo.ratelimit')
    async with TestClient(app, worker_num=2):
        pass
    assert any('each of the 2 workers counts its own' in record.getMessage()
               for record in caplog.records)


class CountingStore:
    """A store of one's own (as a shared one is): the interface is one async method."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, int, float]] = []
        self.fail = fail

    async def hit(self, key: str, limit: int, period: float, cost: int = 1
                  ) -> RateLimitResult:
        await asyncio.sleep(0)  # a real store waits for its server
        if self.fail:
            raise ConnectionError('the store cannot be reached')
        self.calls.append((key, limit, period))
        allowed = len(self.calls) <= limit
        return RateLimitResult(allowed, max(0, limit - len(self.calls)),
                               0.0 if allowed else 30.0, 60.0)


async def test_a_store_of_ones_own_plugs_in():
    store = CountingStore()
    app = Tremolo()
    app.install(RateLimiter('2/minute', store=store, name='api'))

    @app.route('/')
    async def index(**server):
        return 'ok'

    async with TestClient(app) as client:
        statuses = [(await client.get('/')).status for _ in range(3)]
        refused = await client.get('/')
    assert statuses == [200, 200, 429]
    assert refused.header('retry-after') == '30'
    assert store.calls[0] == ('api:*:127.0.0.1', 2, 60)
    assert refused.header('ratelimit-policy') == '"api";q=2;w=60'


@pytest.mark.parametrize('fail_open, expected', [
    (False, [200, 200, 429]),  # counted in the worker meanwhile
    (True, [200, 200, 200]),   # not limited meanwhile
])
async def test_a_store_that_cannot_be_reached(fail_open, expected):
    app = Tremolo()
    app.install(RateLimiter('2/minute', store=CountingStore(fail=True), fail_open=fail_open))

    @app.route('/')
    async def index(**server):
        return 'ok'

    async with TestClient(app) as client:
        statuses = [(await client.get('/')).status for _ in range(3)]
    assert statuses == expected


def test_the_algorithm_of_a_given_store_is_its_own():
    with pytest.raises(ValueError, match='algorithm'):
        RateLimiter(store=CountingStore(), algorithm='sliding-window')
    limiter = RateLimiter(store=MemoryRateLimitStore('sliding-window'))
    assert limiter.algorithm == 'sliding-window'


async def test_over_real_sockets():
    async with serve(make_app(rate='3/minute')) as server:
        async with aiohttp.ClientSession() as session:
            statuses = []
            for _ in range(4):
                async with session.get(server.url + '/') as response:
                    statuses.append(response.status)
                    last = response
            assert statuses == [200, 200, 200, 429]
            assert int(last.headers['Retry-After']) >= 1
            assert last.headers['RateLimit'].startswith('"ratelimit";r=0;')
