"""The token-bucket arithmetic, exactly, on a fake clock."""

from __future__ import annotations

import math

import pytest
from tremolo.middleware.token_bucket import (
    TokenBucket,
    check_burst,
    check_rate,
    default_burst,
)


def test_a_fresh_bucket_is_full():
    bucket = TokenBucket(1000, 100, now=5.0)
    assert bucket.reserve(100, 5.0) == 0.0
    assert bucket.tokens == 0.0


def test_a_debt_is_waited_for_at_the_rate():
    bucket = TokenBucket(1000, 100, now=0.0)
    assert bucket.reserve(100, 0.0) == 0.0
    assert bucket.reserve(100, 0.0) == pytest.approx(0.1)
    # The next sender queues behind the first one's debt.
    assert bucket.reserve(100, 0.0) == pytest.approx(0.2)
    # 0.2 s later, 200 tokens have paid the debt back exactly.
    assert bucket.reserve(100, 0.2) == pytest.approx(0.1)


def test_a_piece_bigger_than_the_burst_is_allowed_with_a_wait():
    bucket = TokenBucket(1000, 100, now=0.0)
    assert bucket.reserve(600, 0.0) == pytest.approx(0.5)


def test_refill_never_exceeds_the_burst():
    bucket = TokenBucket(1000, 100, now=0.0)
    bucket.reserve(100, 0.0)
    assert bucket.reserve(0, 3600.0) == 0.0
    assert bucket.tokens == 100.0
    assert bucket.reserve(101, 3600.0) == pytest.approx(0.001)


def test_time_going_backwards_changes_nothing():
    bucket = TokenBucket(1000, 100, now=10.0)
    bucket.reserve(100, 10.0)
    assert bucket.reserve(0, 9.0) == 0.0
    assert bucket.tokens == 0.0


def test_delay_does_not_take_tokens():
    bucket = TokenBucket(1000, 100, now=0.0)
    assert bucket.delay(50, 0.0) == 0.0
    assert bucket.delay(300, 0.0) == pytest.approx(0.2)
    assert bucket.tokens == 100.0


@pytest.mark.parametrize('piece', [1, 1000, 16384, 100_000])
def test_a_transfer_takes_size_minus_burst_over_rate(piece):
    rate, burst, size = 1_048_576, 52_428, 10 * 1_048_576
    bucket = TokenBucket(rate, burst, now=0.0)
    now = 0.0
    sent = 0
    while sent < size:
        n = min(piece, size - sent)
        now += bucket.reserve(n, now)  # wait, then send at once
        sent += n
    assert now == pytest.approx((size - burst) / rate, rel=1e-9)


def test_senders_sharing_a_bucket_get_equal_shares():
    # A discrete-event run of three senders taking 16 KiB pieces from one bucket.
    bucket = TokenBucket(3 * 65536, 16384, now=0.0)
    ready = [0.0, 0.0, 0.0]
    sent = [0, 0, 0]
    for _ in range(3000):
        who = min(range(3), key=lambda i: ready[i])
        now = ready[who]
        ready[who] = now + bucket.reserve(16384, now)
        sent[who] += 16384
    assert max(sent) - min(sent) <= 2 * 16384  # a piece or two apart, out of a thousand
    assert max(ready) == pytest.approx(sum(sent) / (3 * 65536), rel=0.01)


def test_set_rate_accounts_the_past_at_the_old_rate():
    bucket = TokenBucket(1000, 1000, now=0.0)
    bucket.reserve(1000, 0.0)           # empty
    bucket.set_rate(100, now=0.5)       # 500 tokens earned at the old rate
    assert bucket.tokens == 500.0
    assert bucket.reserve(600, 0.5) == pytest.approx(1.0)  # 100 missing at 100 B/s
    bucket.set_rate(100, now=0.5, burst=50)
    assert bucket.burst == 50.0


def test_default_burst_is_a_twentieth_of_a_second_within_bounds():
    assert default_burst(1_048_576) == 52_428
    assert default_burst(1000) == 16384
    assert default_burst(1e12) == 1 << 20


@pytest.mark.parametrize('rate', [0, -1, math.nan, True, '1000', None])
def test_invalid_rates_are_named(rate):
    with pytest.raises(ValueError, match='upload_rate must be a number'):
        check_rate(rate, 'upload_rate')
    with pytest.raises(ValueError):
        TokenBucket(rate, 100, 0.0)  # type: ignore[arg-type]


@pytest.mark.parametrize('burst', [0, 0.5, -3, False, 'big'])
def test_invalid_bursts(burst):
    with pytest.raises(ValueError, match='burst must be'):
        check_burst(burst)
