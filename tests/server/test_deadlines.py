"""The timeouts of a connection as a plain calculation, on a fake clock (the times are given)."""

from __future__ import annotations

import pytest

from tremolo.options import Options
from tremolo.server.deadlines import (
    BODY_TOO_SLOW,
    HANDLER_TIMEOUT,
    HEAD_TIMEOUT,
    HEAD_TOO_SLOW,
    IDLE_TIMEOUT,
    ON_TIME,
    Deadlines,
)


def deadlines(**options) -> Deadlines:
    options = {'header_timeout': 10.0, 'keepalive_timeout': 30.0, 'min_data_rate': 240.0,
               'min_data_rate_grace': 5.0, **options}
    return Deadlines(Options(**options))


def idle(d: Deadlines, now: float, head: int = 0, full: bool = False) -> int:
    return d.check(now, busy=False, head_received=head, body_received=None, full=full)


def busy(d: Deadlines, now: float, body: int | None = None) -> int:
    return d.check(now, busy=True, head_received=0, body_received=body, full=False)


def test_the_first_head_is_due_within_header_timeout_of_the_connection():
    d = deadlines()
    d.connected(100.0)
    assert idle(d, 109.9) == ON_TIME
    assert idle(d, 110.0) == IDLE_TIMEOUT  # nothing came: a silent close
    d.head_pending(101.0)  # part of a head arrived meanwhile: still due at 110
    assert idle(d, 109.9, head=3000) == ON_TIME
    assert idle(d, 110.0, head=3000) == HEAD_TIMEOUT  # 408


def test_between_requests_keepalive_then_header_timeout_from_the_first_byte():
    d = deadlines()
    d.idle(0.0)
    assert idle(d, 29.9) == ON_TIME
    assert idle(d, 30.0) == IDLE_TIMEOUT
    d.idle(0.0)
    d.head_pending(25.0)  # the next head starts: header_timeout counts from its first byte
    assert idle(d, 34.9, head=6000) == ON_TIME
    assert idle(d, 35.0, head=6000) == HEAD_TIMEOUT


def test_a_head_below_the_minimum_rate_is_too_slow_after_the_grace():
    d = deadlines(header_timeout=60.0)
    d.connected(0.0)
    d.head_pending(0.0)
    assert idle(d, 4.9, head=10) == ON_TIME  # any pace within the grace
    assert idle(d, 5.0, head=10) == HEAD_TOO_SLOW  # slowloris: 10 bytes in 5 s
    assert idle(d, 5.0, head=1200) == ON_TIME  # 240 bytes per second


def test_no_minimum_rate_when_it_is_zero():
    d = deadlines(min_data_rate=0.0, header_timeout=60.0)
    d.connected(0.0)
    d.head_pending(0.0)
    assert idle(d, 59.0, head=1) == ON_TIME


def test_connections_idle_between_requests_make_room_at_max_connections():
    d = deadlines()
    d.idle(0.0)
    assert idle(d, 1.0, full=True) == IDLE_TIMEOUT
    d.connected(0.0)  # waiting for a first head is not idle: it keeps its time
    assert idle(d, 1.0, full=True) == ON_TIME


def test_the_handler_deadline():
    d = deadlines(handler_timeout=3.0)
    d.request_started(10.0, body=False, expect_continue=False)
    assert busy(d, 12.9) == ON_TIME
    assert busy(d, 13.0) == HANDLER_TIMEOUT
    d.handler_cancelled()
    assert busy(d, 100.0) == ON_TIME
    d.request_started(10.0, body=False, expect_continue=False)
    d.request_ended()
    assert busy(d, 100.0) == ON_TIME


def test_no_handler_deadline_by_default():
    d = deadlines()
    d.request_started(0.0, body=False, expect_continue=False)
    assert busy(d, 10_000.0) == ON_TIME


def test_a_body_below_the_minimum_rate_is_too_slow():
    d = deadlines()
    d.request_started(0.0, body=True, expect_continue=False)
    assert busy(d, 4.0, body=10) == ON_TIME
    assert busy(d, 6.0, body=10) == BODY_TOO_SLOW
    assert busy(d, 6.0, body=1500) == ON_TIME
    d.body_ended()  # complete: its rate is watched no more
    assert busy(d, 600.0, body=1500) == ON_TIME


def test_a_body_awaiting_100_continue_is_timed_from_the_invitation():
    d = deadlines()
    d.request_started(0.0, body=True, expect_continue=True)
    assert busy(d, 60.0, body=0) == ON_TIME  # the client waits for us, not we for it
    d.body_invited(60.0)
    assert busy(d, 64.0, body=0) == ON_TIME
    assert busy(d, 65.0, body=0) == BODY_TOO_SLOW


def test_time_paused_by_backpressure_is_not_the_clients():
    d = deadlines()
    d.request_started(0.0, body=True, expect_continue=False)
    d.reading_paused(1.0)  # the handler is behind: the server stops reading
    assert busy(d, 100.0, body=240) == ON_TIME  # only 1 s counted so far
    d.reading_resumed(100.0)  # the read began, as far as the rate goes, at 99
    assert busy(d, 103.9, body=240) == ON_TIME
    assert busy(d, 105.0, body=240) == BODY_TOO_SLOW  # 240 bytes in 6 s


def test_a_head_starts_a_new_request():
    d = deadlines()
    d.connected(0.0)
    d.head_pending(0.0)
    d.request_started(1.0, body=False, expect_continue=False)
    # The head deadline and the head's rate are over: nothing is late any more.
    assert idle(d, 500.0) == ON_TIME
    assert busy(d, 500.0) == ON_TIME


def test_an_upgraded_connection_keeps_its_own_time():
    d = deadlines(handler_timeout=1.0)
    d.request_started(0.0, body=True, expect_continue=False)
    d.upgraded()
    assert busy(d, 1000.0, body=0) == ON_TIME
    assert idle(d, 1000.0, head=5) == ON_TIME


@pytest.mark.parametrize('grace', [0.0, 2.5])
def test_the_grace_is_an_option(grace):
    d = deadlines(min_data_rate_grace=grace, header_timeout=60.0)
    d.connected(0.0)
    d.head_pending(0.0)
    if grace:
        assert idle(d, grace - 0.1, head=1) == ON_TIME
    assert idle(d, grace + 1.0, head=1) == HEAD_TOO_SLOW
