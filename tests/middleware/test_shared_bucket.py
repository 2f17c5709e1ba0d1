"""Buckets and rates in memory shared by forked processes, and the ``'global'`` scope of a
multi-worker server that rests on them."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time

import pytest
from tremolo.middleware.bandwidth import BandwidthLimiter
from tremolo.middleware.shared_bucket import SharedMemory, SharedRates, SharedTokenBucket

from tests.apps.pinned import sessions_per_worker

MiB = 1024 * 1024
FORK = multiprocessing.get_context('fork')


def test_reserve_keeps_the_debt_semantics():
    bucket = SharedTokenBucket(1000, 500)
    assert bucket.reserve(500) == 0.0
    wait = bucket.reserve(250)
    assert 0.2 < wait <= 0.25  # 250 bytes of debt at 1000 B/s (minus the refill meanwhile)
    bucket.refund(10_000)
    assert bucket.tokens == 500  # never above the burst
    with pytest.raises(ValueError, match='rate'):
        SharedTokenBucket(0, 100)


def _spend(bucket: SharedTokenBucket, seconds: float, sent) -> None:
    deadline = time.monotonic() + seconds
    total = 0
    while time.monotonic() < deadline:
        wait = bucket.reserve(4096)
        if wait:
            time.sleep(wait)
        total += 4096
    sent.put(total)


def test_two_processes_share_one_rate():
    rate = 400_000
    bucket = SharedTokenBucket(rate, 20_000)
    sent = FORK.Queue()
    processes = [FORK.Process(target=_spend, args=(bucket, 1.5, sent)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(20)
    totals = [sent.get(timeout=5) for _ in processes]
    # Together, what one bucket allows (and not twice that); each about half of it.
    assert 0.85 * rate * 1.5 < sum(totals) < 1.15 * rate * 1.5 + 20_000
    assert min(totals) > 0.35 * sum(totals)


def _change(rates: SharedRates, bucket: SharedTokenBucket) -> None:
    rates.write(123.0, 456.0)
    bucket.set_rate(2000, burst=100)


def test_a_change_made_in_one_process_is_seen_by_the_others():
    rates = SharedRates(1.0, 2.0)
    bucket = SharedTokenBucket(1000, 500)
    assert rates.version == 0
    process = FORK.Process(target=_change, args=(rates, bucket))
    process.start()
    process.join(10)
    assert rates.read() == (1, 123.0, 456.0)
    assert (bucket.rate, bucket.burst) == (2000, 100)
    assert bucket.tokens <= 100


def _hold_the_lock_and_die(memory: SharedMemory) -> None:
    memory.lock()
    os._exit(0)


def test_a_process_that_dies_holding_the_lock_releases_it():
    memory = SharedMemory(8)
    process = FORK.Process(target=_hold_the_lock_and_die, args=(memory,))
    process.start()
    process.join(10)
    memory.lock()  # would block forever if the lock had outlived its holder
    memory.unlock()
    memory.close()


async def test_a_global_limiter_changes_its_rate_at_run_time(app, client_for):
    limiter = BandwidthLimiter(download_rate=64 * 1024, scope='global')
    app.add_middleware(limiter, priority=0)

    @app.route('/data')
    async def data():
        return b'x' * (128 * 1024)

    async with client_for(app) as client:
        await limiter.set_rate(download_rate=64 * MiB)
        started = time.monotonic()
        response = await client.get('/data')
        assert len(response.body) == 128 * 1024
        assert time.monotonic() - started < 1.0  # at 64 KiB/s, it would take 2 s
        with pytest.raises(ValueError, match='no upload limit'):
            await limiter.set_rate(upload_rate=1000)
        with pytest.raises(ValueError, match='download_rate'):
            await limiter.set_rate(download_rate=-1)


def test_scopes_and_stores_are_checked():
    with pytest.raises(ValueError, match="scope must be one of connection, client, worker, "
                                         "global"):
        BandwidthLimiter(download_rate=1000, scope='host')
    with pytest.raises(ValueError, match="a store shares the 'client' and 'global' scopes"):
        BandwidthLimiter(download_rate=1000, scope='worker', store=object())
    with pytest.raises(TypeError, match='store must be a bandwidth store'):
        BandwidthLimiter(download_rate=1000, scope='global', store=object())
    with pytest.raises(ValueError, match='lease_size'):
        BandwidthLimiter(download_rate=1000, scope='global', lease_size=0)


# -- a real server: two workers, one budget -----------------------------------------------------

async def timed_downloads(pinned, size: int) -> list[float]:
    """Download ``size`` bytes on every session at once; the seconds each took."""

    async def one(session) -> float:
        started = time.monotonic()
        async with session.get(f'{url}/download/{size}') as response:
            body = await response.read()
        assert len(body) == size
        return time.monotonic() - started

    url = pinned['url']
    sessions = [s for group in pinned['groups'].values() for s in group]
    return list(await asyncio.gather(*(one(session) for session in sessions)))


@pytest.mark.slow
@pytest.mark.parametrize('scope', ['global', 'worker'])
async def test_a_global_budget_spans_the_workers(procs, scope):
    """Four downloads of 1 MiB, two on each worker, under 2 MiB/s: the global budget takes
    2 s for the four together, where a budget per worker lets them through in 1 s."""
    server = procs.cli('tests.apps.shared:app', '--port', '0', '--worker-num', '2',
                       env=_env(RATE=str(2 * MiB), SCOPE=scope))
    url = (await server.url('')).rstrip('/')
    await server.serving(count=2)
    groups = await sessions_per_worker(url, per_worker=2)
    try:
        times = await timed_downloads({'url': url, 'groups': groups}, MiB)
    finally:
        for group in groups.values():
            for session in group:
                await session.close()
    # 4 MiB at 2 MiB/s cannot take less than 1.95 s (the burst is 100 KiB); two workers with a
    # budget each take about 1 s. Generous bounds on either side of 1.7 s tell them apart.
    if scope == 'global':
        assert 1.7 < max(times) < 4.0, times
    else:
        assert max(times) < 1.7, times
    if scope == 'global':
        # Fair: the four shared the budget equally, whatever worker served them.
        assert min(times) > 0.75 * max(times), times


@pytest.mark.slow
async def test_a_rate_set_in_one_worker_applies_in_the_other(procs):
    server = procs.cli('tests.apps.shared:app', '--port', '0', '--worker-num', '2',
                       env=_env(RATE=str(512 * 1024), SCOPE='connection'))
    url = (await server.url('')).rstrip('/')
    await server.serving(count=2)
    groups = await sessions_per_worker(url, per_worker=1)
    (first,), (second,) = groups.values()
    try:
        async with first.post(f'{url}/rate?rate={16 * MiB}') as response:
            assert await response.text() == 'ok'
        started = time.monotonic()
        async with second.get(f'{url}/download/{MiB}') as response:
            assert len(await response.read()) == MiB
        assert time.monotonic() - started < 1.0  # 2 s at the rate the worker started with
    finally:
        await first.close()
        await second.close()


def _env(**extra: str) -> dict[str, str]:
    from tests.apps.harness import child_env

    return child_env(**extra)
