"""Conditional requests and HTTP dates, sans-IO (RFC 9110 §13, §5.6.7)."""

from __future__ import annotations

import calendar
import time

import pytest

from tremolo.http.conditional import (
    EntityTag,
    evaluate,
    make_etag,
    parse_etag,
    parse_etag_list,
    range_allowed,
)
from tremolo.http.dates import http_date, parse_http_date

ETAG = '"xyzzy"'
MODIFIED = calendar.timegm((1994, 11, 6, 8, 49, 37))  # Sun, 06 Nov 1994 08:49:37 GMT
SAME = 'Sun, 06 Nov 1994 08:49:37 GMT'
EARLIER = 'Sat, 05 Nov 1994 08:49:37 GMT'
LATER = 'Mon, 07 Nov 1994 08:49:37 GMT'


def check(method='GET', etag=ETAG, last_modified=MODIFIED, **fields):
    return evaluate(method, etag=etag, last_modified=last_modified, **fields)


# -- HTTP dates ----------------------------------------------------------------------------------

@pytest.mark.parametrize('value', [
    'Sun, 06 Nov 1994 08:49:37 GMT',  # IMF-fixdate
    'Sunday, 06-Nov-94 08:49:37 GMT',  # obsolete RFC 850 format
    'Sun Nov  6 08:49:37 1994',  # ANSI C's asctime() format
    b'Sun, 06 Nov 1994 08:49:37 GMT',
    ' Sun, 06 Nov 1994 08:49:37 GMT ',
])
def test_http_date_formats(value):
    assert parse_http_date(value) == MODIFIED


@pytest.mark.parametrize('value', [
    '', 'yesterday', 'Sun, 06 Nov 1994 08:49:37 UTC', 'Sun, 6 Nov 1994 08:49:37 GMT',
    'sun, 06 nov 1994 08:49:37 GMT', 'Sun, 31 Feb 1994 08:49:37 GMT',
    'Sun, 06 Nov 1994 24:00:00 GMT', 'Sun, 06 Foo 1994 08:49:37 GMT', '784111777',
    'Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT',
])
def test_invalid_http_dates(value):
    assert parse_http_date(value) is None


def test_rfc850_two_digit_years():
    now = calendar.timegm((2026, 1, 1, 0, 0, 0))
    assert parse_http_date('Sunday, 06-Nov-94 08:49:37 GMT', now) == MODIFIED
    # More than 50 years ahead of 2026 means the past century; up to 50 years is this one.
    assert time_year(parse_http_date('Friday, 01-Jan-77 00:00:00 GMT', now)) == 1977
    assert time_year(parse_http_date('Saturday, 01-Jan-76 00:00:00 GMT', now)) == 2076


def time_year(timestamp):
    return time.gmtime(timestamp).tm_year


def test_http_date_round_trip():
    assert parse_http_date(http_date(MODIFIED)) == MODIFIED


# -- entity tags ---------------------------------------------------------------------------------

def test_etag_parsing():
    assert parse_etag('"xyzzy"') == EntityTag('xyzzy')
    assert parse_etag('W/"xyzzy"') == EntityTag('xyzzy', weak=True)
    assert parse_etag('""') == EntityTag('')
    assert str(EntityTag('a', weak=True)) == 'W/"a"'
    for bad in ('xyzzy', '"a', 'w/"a"', '"a" "b"', '"a"b'):
        assert parse_etag(bad) is None, bad
    assert parse_etag_list('"a", W/"b",,"c,d"') == [
        EntityTag('a'), EntityTag('b', True), EntityTag('c,d')]
    assert parse_etag_list('"a", b') is None
    assert make_etag(0x1234, 10) == '"1234-a"'


# -- RFC 9110 §13.2.2, step by step --------------------------------------------------------------

def test_no_preconditions():
    assert check() == 200
    assert check(etag=None, last_modified=None) == 200


@pytest.mark.parametrize('if_match, status', [
    ('"xyzzy"', 200), ('"a", "xyzzy"', 200), ('*', 200), ('"other"', 412),
    ('W/"xyzzy"', 412),  # strong comparison: a weak tag never matches
    ('garbage', 412), ('', 412),
])
def test_step1_if_match(if_match, status):
    assert check(if_match=if_match) == status


def test_if_match_against_a_weak_or_missing_etag():
    assert check(etag='W/"xyzzy"', if_match='"xyzzy"') == 412
    assert check(etag=None, if_match='"xyzzy"') == 412
    assert check(etag=None, if_match='*') == 200


@pytest.mark.parametrize('date, status', [
    (SAME, 200), (LATER, 200), (EARLIER, 412), ('not a date', 200),
])
def test_step2_if_unmodified_since(date, status):
    assert check(if_unmodified_since=date) == status


def test_if_unmodified_since_is_ignored_with_if_match_or_without_a_date():
    assert check(if_match='"xyzzy"', if_unmodified_since=EARLIER) == 200
    assert check(last_modified=None, if_unmodified_since=EARLIER) == 200


@pytest.mark.parametrize('method, if_none_match, status', [
    ('GET', '"xyzzy"', 304), ('HEAD', '"xyzzy"', 304),
    ('GET', 'W/"xyzzy"', 304),  # weak comparison
    ('GET', '"a", "xyzzy"', 304), ('GET', '"a" , W/"b"', 200),
    ('GET', '*', 304), ('GET', '"other"', 200),
    ('POST', '"xyzzy"', 412), ('PUT', '*', 412), ('DELETE', '"other"', 200),
])
def test_step3_if_none_match(method, if_none_match, status):
    assert check(method, if_none_match=if_none_match) == status


def test_weak_current_etag_matches_weakly():
    assert check(etag='W/"xyzzy"', if_none_match='"xyzzy"') == 304


@pytest.mark.parametrize('method, date, status', [
    ('GET', SAME, 304), ('GET', LATER, 304), ('GET', EARLIER, 200), ('HEAD', SAME, 304),
    ('GET', 'Sunday, 06-Nov-94 08:49:37 GMT', 304), ('GET', 'Sun Nov  6 08:49:37 1994', 304),
    ('GET', 'garbage', 200), ('GET', f'{SAME}, {SAME}', 200),  # more than one member
    ('POST', SAME, 200),  # only GET and HEAD
])
def test_step4_if_modified_since(method, date, status):
    assert check(method, if_modified_since=date) == status


def test_if_modified_since_is_ignored_with_if_none_match():
    assert check(if_none_match='"other"', if_modified_since=LATER) == 200
    assert check(if_none_match='"xyzzy"', if_modified_since=EARLIER) == 304


def test_order_412_before_304():
    # A failed If-Match wins over a matching If-None-Match (step 1 before step 3).
    assert check(if_match='"other"', if_none_match='"xyzzy"') == 412
    assert check(if_unmodified_since=EARLIER, if_modified_since=LATER) == 412


def test_fields_as_bytes():
    assert check(if_none_match=b'"xyzzy"') == 304
    assert check(if_modified_since=SAME.encode()) == 304


# -- step 5: If-Range ----------------------------------------------------------------------------

@pytest.mark.parametrize('if_range, allowed', [
    (None, True),
    ('"xyzzy"', True),
    ('"other"', False),
    ('W/"xyzzy"', False),  # a weak tag never validates a range
    (SAME, True),
    (LATER, False),  # only an exact date match
    (EARLIER, False),
    ('garbage', False),
    (b'"xyzzy"', True),
])
def test_if_range(if_range, allowed):
    assert range_allowed(if_range, etag=ETAG, last_modified=MODIFIED) is allowed


def test_if_range_without_validators():
    assert range_allowed('"xyzzy"', etag=None, last_modified=MODIFIED) is False
    assert range_allowed(SAME, etag=ETAG, last_modified=None) is False
    assert range_allowed('"xyzzy"', etag='W/"xyzzy"') is False
