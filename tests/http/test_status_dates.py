"""Status lines and reason phrases (tremolo.http.status); the Date cache (tremolo.http.dates)."""

from __future__ import annotations

import re

import pytest

from tremolo.http.dates import DateCache, dates
from tremolo.http.status import (
    REASONS,
    STATUS_LINES_11,
    body_allowed,
    reason,
    status_line,
)

# -- status ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('status', 'phrase'),
    [
        (100, 'Continue'), (101, 'Switching Protocols'), (200, 'OK'), (204, 'No Content'),
        (404, 'Not Found'), (413, 'Content Too Large'), (414, 'URI Too Long'),
        (416, 'Range Not Satisfiable'), (417, 'Expectation Failed'),
        (422, 'Unprocessable Content'), (431, 'Request Header Fields Too Large'),
        (505, 'HTTP Version Not Supported'),
    ],
)
def test_reason(status, phrase):
    assert reason(status) == phrase
    assert REASONS[status] == phrase


def test_reason_unknown():
    assert reason(599) == ''
    assert 599 not in REASONS


def test_status_line_precomputed():
    assert status_line(200) == b'HTTP/1.1 200 OK\r\n'
    assert status_line(200) is STATUS_LINES_11[200]
    assert status_line(413) == b'HTTP/1.1 413 Content Too Large\r\n'


def test_status_line_custom_and_unknown():
    assert status_line(200, phrase='Fine') == b'HTTP/1.1 200 Fine\r\n'
    assert status_line(200, phrase='') == b'HTTP/1.1 200 \r\n'
    # RFC 9112 §4: the reason phrase may be empty but the space before it is not optional.
    assert status_line(599) == b'HTTP/1.1 599 \r\n'
    assert status_line(599, phrase='Custom') == b'HTTP/1.1 599 Custom\r\n'


def test_status_tables_cover_every_reason():
    assert set(STATUS_LINES_11) == set(REASONS)
    for status, line in STATUS_LINES_11.items():
        assert line == b'HTTP/1.1 %d %s\r\n' % (status, REASONS[status].encode('latin-1'))


@pytest.mark.parametrize(
    ('status', 'allowed'),
    [(100, False), (101, False), (103, False), (199, False), (200, True), (201, True),
     (204, False), (206, True), (301, True), (304, False), (404, True), (500, True)],
)
def test_body_allowed(status, allowed):
    assert body_allowed(status) is allowed


# -- dates ----------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.now


def test_date_value_and_header():
    cache = DateCache(FakeClock(1445412480.25))
    assert cache.value() == b'Wed, 21 Oct 2015 07:28:00 GMT'
    assert cache.header() == b'Date: Wed, 21 Oct 2015 07:28:00 GMT\r\n'


def test_date_epoch():
    assert DateCache(FakeClock(0)).value() == b'Thu, 01 Jan 1970 00:00:00 GMT'


def test_date_cached_within_a_second():
    clock = FakeClock(1000.1)
    cache = DateCache(clock)
    first = cache.value()
    clock.now = 1000.99
    assert cache.value() is first
    assert clock.calls == 2  # one clock read per call, no more


def test_date_refreshed_when_the_second_changes():
    clock = FakeClock(59.9)
    cache = DateCache(clock)
    assert cache.header() == b'Date: Thu, 01 Jan 1970 00:00:59 GMT\r\n'
    clock.now = 60.0
    assert cache.value() == b'Thu, 01 Jan 1970 00:01:00 GMT'
    assert cache.header() == b'Date: Thu, 01 Jan 1970 00:01:00 GMT\r\n'
    clock.now = 59.0  # a clock stepped back is followed, not ignored
    assert cache.value() == b'Thu, 01 Jan 1970 00:00:59 GMT'


def test_shared_instance_is_an_imf_fixdate():
    assert re.fullmatch(
        rb'(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)'
        rb' \d{4} \d\d:\d\d:\d\d GMT',
        dates.value(),
    )
