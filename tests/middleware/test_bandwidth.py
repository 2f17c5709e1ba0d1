"""Speed limiters: each scope limits, shares and cleans up; per-route and run-time limits.

Timing bounds here are generous (they prove that a limiter limits, not how exactly: that is
measured by ``make bench-bandwidth``).
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from tremolo.middleware.bandwidth import BandwidthLimiter, Pacer, throttle

from tremolo import RegistrationError, Tremolo
from tremolo.options import Options
from tremolo.testing import TestClient, serve

KiB = 1024


async def timed(awaitable):
    started = time.monotonic()
    result = await awaitable
    return result, time.monotonic() - started


@pytest.fixture
def app():
    app = Tremolo()

    @app.route('/whole')
    async def whole(rate=512 * KiB, **server):
        return b'w' * (384 * KiB)

    @app.route('/stream')
    async def stream(rate=512 * KiB, **server):
        for _ in range(24):
            yield b's' * (16 * KiB)

    @app.route('/free')
    async def free(**server):
        return b'f' * (384 * KiB)

    @app.route('/upload', methods=['POST'], upload_rate=512 * KiB)
    async def upload(request, context):
        size = len(await request.body())
        return {'size': size, 'buffer': context.options['body_buffer_size']}

    @app.route('/dynamic')
    async def dynamic(response, request):
        throttle(response, rate=int(request.query['rate']))
        return b'd' * (384 * KiB)

    @app.route('/slowdown')
    async def slowdown(response):
        throttle(response, rate=64 * 1024 * KiB)  # fast for the first half
        for i in range(24):
            if i == 12:
                throttle(response, rate=256 * KiB)
            yield b'x' * (16 * KiB)

    return app


async def test_route_rate_limits_a_whole_body_and_keeps_its_length(app):
    async with TestClient(app) as client:
        response, seconds = await timed(client.get('/whole'))
    assert response.status == 200 and len(response.body) == 384 * KiB
    assert response.header('content-length') == str(384 * KiB)
    assert 0.55 < seconds < 5  # (384 - 25.6) KiB at 512 KiB/s = 0.7 s


async def test_route_rate_limits_a_stream(app):
    async with TestClient(app) as client:
        response, seconds = await timed(client.get('/stream'))
    assert response.body == b's' * (384 * KiB)
    assert 0.55 < seconds < 5


async def test_head_of_a_limited_route_sends_no_body_and_does_not_wait(app):
    async with TestClient(app) as client:
        response, seconds = await timed(client.head('/whole'))
    assert response.status == 200 and response.body == b''
    assert response.header('content-length') == str(384 * KiB)
    assert seconds < 0.5


async def test_a_route_without_a_rate_is_not_limited(app):
    async with TestClient(app) as client:
        response, seconds = await timed(client.get('/free'))
    assert len(response.body) == 384 * KiB
    assert seconds < 0.5


async def test_upload_rate_paces_reading_and_keeps_the_body_buffer_small(app):
    async with TestClient(app) as client:
        response, seconds = await timed(client.post('/upload', body=b'u' * (384 * KiB)))
    assert response.json() == {'size': 384 * KiB, 'buffer': 64 * KiB}
    assert 0.55 < seconds < 5


async def test_a_limited_upload_stops_reading_the_socket(app):
    async with TestClient(app) as client:
        connection = client.connect()
        body = b'u' * (1024 * KiB)
        connection.send(b'POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n'
                        % len(body))
        for start in range(0, len(body), 16 * KiB):  # as a kernel hands it over: in pieces
            connection.send(body[start:start + 16 * KiB])
        await asyncio.sleep(0.3)
        # The handler reads at 512 KiB/s and only 64 KiB may wait unread: the rest of the
        # megabyte is still with the "kernel" (the transport is not reading).
        assert not connection.transport.reading
        assert connection.transport._pending
        response = await connection.read_response()
        assert response.json()['size'] == 1024 * KiB
        await connection.close()


async def test_throttle_sets_a_rate_at_run_time(app):
    async with TestClient(app) as client:
        slow, slow_seconds = await timed(client.get('/dynamic?rate=524288'))
        fast, fast_seconds = await timed(client.get('/dynamic?rate=0'))
    assert len(slow.body) == len(fast.body) == 384 * KiB
    assert 0.55 < slow_seconds < 5
    assert fast_seconds < 0.5


async def test_throttle_changes_the_rate_mid_transfer(app):
    async with TestClient(app) as client:
        response, seconds = await timed(client.get('/slowdown'))
    assert len(response.body) == 384 * KiB
    assert 0.6 < seconds < 5  # the second half alone takes (192 - 12.8) KiB / 256 KiB/s


async def test_invalid_throttle_is_a_handler_error(app):
    @app.route('/bad')
    async def bad(response):
        throttle(response, rate=-5)
        return b'never'

    async with TestClient(app) as client:
        response = await client.get('/bad')
    assert response.status == 500


# -- scopes ---------------------------------------------------------------------------------


def transfer_app(**limiter):
    app = Tremolo()
    app.add_middleware(BandwidthLimiter(**limiter), priority=0)

    @app.route('/data')
    async def data(**server):
        for _ in range(8):
            yield b'x' * (16 * KiB)

    return app


async def download_from(client, peer):
    connection = client.connect(peer=peer)
    try:
        started = time.monotonic()
        response = await connection.request('GET', '/data')
        assert len(response.body) == 128 * KiB
        return time.monotonic() - started
    finally:
        await connection.close()


async def parallel(client, peers):
    started = time.monotonic()
    durations = await asyncio.gather(*(download_from(client, peer) for peer in peers))
    return time.monotonic() - started, durations


async def test_connection_scope_gives_each_connection_the_whole_rate():
    app = transfer_app(download_rate=256 * KiB, scope='connection')
    async with TestClient(app) as client:
        total, _ = await parallel(client, [('10.0.0.1', 1), ('10.0.0.1', 2)])
    assert 0.3 < total < 0.9  # each: (128 - 16) KiB at 256 KiB/s = 0.44 s, side by side


async def test_client_scope_shares_the_rate_among_one_address_connections():
    app = transfer_app(download_rate=256 * KiB, scope='client')
    async with TestClient(app) as client:
        shared, _ = await parallel(client, [('10.0.0.1', 1), ('10.0.0.1', 2)])
        apart, _ = await parallel(client, [('10.0.0.1', 3), ('10.0.0.2', 4)])
    assert shared > 0.75  # 256 KiB together at 256 KiB/s
    assert apart < 0.75


def test_idle_buckets_are_forgotten_when_the_table_grows():
    limiter = BandwidthLimiter(download_rate=1000, scope='client')
    busy = limiter._scopes['busy'] = scope_with_bucket(limiter, now=100.0)
    busy.down.reserve(5000, 100.0)  # in debt: still in use
    for number in range(1100):
        limiter._scopes[f'10.0.{number // 256}.{number % 256}'] = scope_with_bucket(limiter, 0.0)
    limiter._prune(now=101.0)
    assert list(limiter._scopes) == ['busy']
    assert limiter._prune_at == 1024


def scope_with_bucket(limiter, now):
    from tremolo.middleware.bandwidth import _Scope
    from tremolo.middleware.token_bucket import TokenBucket

    return _Scope(TokenBucket(limiter.download_rate, 1000, now), None)


async def test_client_scope_uses_the_forwarded_address_behind_a_trusted_proxy():
    app = transfer_app(download_rate=256 * KiB, scope='client')

    async def via_proxy(client, port, forwarded_for):
        connection = client.connect(peer=('10.9.9.9', port))
        try:
            response = await connection.request(
                'GET', '/data', headers={'X-Forwarded-For': forwarded_for})
            assert len(response.body) == 128 * KiB
        finally:
            await connection.close()

    async with TestClient(app, trusted_proxies=['10.9.9.9']) as client:
        started = time.monotonic()
        await asyncio.gather(via_proxy(client, 1, '203.0.113.1'),
                             via_proxy(client, 2, '203.0.113.2'))
        apart = time.monotonic() - started
        started = time.monotonic()
        await asyncio.gather(via_proxy(client, 3, '203.0.113.3'),
                             via_proxy(client, 4, '203.0.113.3'))
        shared = time.monotonic() - started
    assert apart < 0.75 < shared


async def test_worker_scope_shares_the_rate_fairly_among_everyone():
    app = transfer_app(download_rate=512 * KiB, scope='worker')
    async with TestClient(app) as client:
        total, durations = await parallel(
            client, [('10.0.0.1', 1), ('10.0.0.2', 2), ('10.0.0.3', 3), ('10.0.0.4', 4)])
    assert total > 0.75  # 512 KiB together at 512 KiB/s
    # Fair shares: the four transfers end together.
    assert max(durations) - min(durations) < 0.3 * max(durations)


async def test_upload_scope_limits_reading():
    app = Tremolo()
    app.add_middleware(BandwidthLimiter(upload_rate=512 * KiB), priority=0)

    @app.route('/up', methods=['POST'])
    async def up(request):
        return str(len(await request.body()))

    async with TestClient(app) as client:
        response, seconds = await timed(client.post('/up', body=b'u' * (384 * KiB)))
    assert response.text == str(384 * KiB)
    assert 0.55 < seconds < 5


async def test_run_options_install_the_limiter():
    app = Tremolo()

    @app.route('/data')
    async def data(**server):
        return b'x' * (384 * KiB)

    async with TestClient(app, download_rate=512 * KiB, rate_scope='worker') as client:
        response, seconds = await timed(client.get('/data'))
        missing, _ = await timed(client.get('/missing'))
    assert len(response.body) == 384 * KiB
    assert 0.55 < seconds < 5
    assert missing.status == 404


async def test_scope_and_route_limits_combine_the_lowest_wins():
    app = Tremolo()
    app.add_middleware(BandwidthLimiter(download_rate=4096 * KiB), priority=0)

    @app.route('/data')
    async def data(rate=512 * KiB, **server):
        return b'x' * (384 * KiB)

    async with TestClient(app) as client:
        _, seconds = await timed(client.get('/data'))
    assert 0.55 < seconds < 5


# -- free when off, configuration errors ------------------------------------------------------


def test_no_limit_means_no_hook_and_no_filter():
    app = Tremolo()

    @app.route('/plain')
    async def plain(**server):
        return b'ok'

    @app.route('/limited')
    async def limited(rate=1000, **server):
        return b'ok'

    compiled = app.compile(Options())
    plain_endpoint = compiled.router.lookup('GET', '/plain')[0]
    limited_endpoint = compiled.router.lookup('GET', '/limited')[0]
    assert plain_endpoint.request_hooks == () and plain_endpoint.direct
    assert len(limited_endpoint.request_hooks) == 1
    assert 'tremolo.middleware.bandwidth' in limited_endpoint.request_hooks[0].func.__module__


@pytest.mark.parametrize('kwargs, message', [
    ({'download_rate': -1}, 'download_rate'),
    ({'upload_rate': -10}, 'upload_rate'),
    ({'rate_burst': -1}, 'rate_burst'),
    ({'rate_scope': 'planet'}, 'rate_scope'),
])
def test_invalid_run_options_fail_at_startup(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Options(**kwargs)


@pytest.mark.parametrize('kwargs, message', [
    ({'download_rate': -1}, 'download_rate must be'),
    ({'upload_rate': 'fast'}, 'upload_rate must be'),
    ({'download_rate': 10, 'burst': 0}, 'burst must be'),
    ({'download_rate': 10, 'scope': 'galaxy'}, 'scope must be one of'),
    ({}, 'needs a download_rate or an upload_rate'),
])
def test_invalid_limiter_fails_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BandwidthLimiter(**kwargs)


@pytest.mark.parametrize('value', [-1, 'fast', True])
def test_invalid_route_rate_fails_at_registration(value):
    app = Tremolo()
    with pytest.raises(RegistrationError, match='rate'):
        @app.route('/x', rate=value)
        async def x(**server):
            return b''


def test_pacer_stays_at_the_wire_end_of_the_filters(app):
    order = []

    def compress(data, final):
        order.append('compress')
        return data

    @app.route('/ordered')
    async def ordered(request, response):
        throttle(response, rate=10 * 1024 * KiB)
        response.add_filter(compress)   # added after the pacer, applied before it
        assert isinstance(response.filters[-1], Pacer)
        return b'x'

    async def run():
        async with TestClient(app) as client:
            return await client.get('/ordered')

    assert asyncio.run(run()).body == b'x'
    assert order == ['compress']


# -- real sockets ------------------------------------------------------------------------------


async def test_download_and_upload_limits_over_real_sockets(app):
    async with serve(app) as server, aiohttp.ClientSession() as session:
        started = time.monotonic()
        async with session.get(server.url + '/stream') as response:
            pieces = [piece async for piece in response.content.iter_any()]
        download_seconds = time.monotonic() - started
        started = time.monotonic()
        async with session.post(server.url + '/upload', data=b'u' * (384 * KiB)) as response:
            result = await response.json()
        upload_seconds = time.monotonic() - started
    assert sum(map(len, pieces)) == 384 * KiB
    assert len(pieces) > 4  # it arrived over time, not at once
    assert 0.55 < download_seconds < 5
    assert result['size'] == 384 * KiB
    assert 0.55 < upload_seconds < 5
