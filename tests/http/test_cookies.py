"""The Cookie request header and the Set-Cookie response header (tremolo.http.cookies)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tremolo.http.cookies import format_set_cookie, parse_cookie_header

# -- parse_cookie_header --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('header', 'expected'),
    [
        ('', {}),
        ('a=1', {'a': '1'}),
        ('a=1; b=2', {'a': '1', 'b': '2'}),
        ('a=1;b=2;', {'a': '1', 'b': '2'}),
        ('  a = 1 ;\tb=2  ', {'a': '1', 'b': '2'}),
        ('a=', {'a': ''}),
        ('a=b=c', {'a': 'b=c'}),
        ('a="quoted value"; b=""', {'a': 'quoted value', 'b': ''}),
        ('a="', {'a': '"'}),
        ('a="half; b=x"', {'a': '"half', 'b': 'x"'}),
        ('a=1; a=2; b=3; b=4', {'a': '1', 'b': '3'}),
        ('flag; a=1', {'a': '1'}),
        ('=orphan; a=1', {'a': '1'}),
        ('bad name=1; a=1', {'a': '1'}),
        ('(x)=1; a=1', {'a': '1'}),
        ('caf\u00e9=1; a=1', {'a': '1'}),
        ('a=1, b=2', {'a': '1, b=2'}),
        ("x!#$%&'*+-.^_`|~=ok", {"x!#$%&'*+-.^_`|~": 'ok'}),
        ('a=caf\u00e9', {'a': 'caf\u00e9'}),
    ],
)
def test_parse_cookie_header(header, expected):
    assert parse_cookie_header(header) == expected


def test_parse_cookie_header_first_wins_even_after_a_bad_pair():
    assert parse_cookie_header('sid=first; junk; sid=second') == {'sid': 'first'}


# -- format_set_cookie ----------------------------------------------------------------------------


def test_defaults():
    assert format_set_cookie('sid', 'abc') == 'sid=abc; Path=/; HttpOnly; SameSite=Lax'


def test_empty_value_and_quoted_value():
    assert format_set_cookie('a') == 'a=; Path=/; HttpOnly; SameSite=Lax'
    assert format_set_cookie('a', '"xy"') == 'a="xy"; Path=/; HttpOnly; SameSite=Lax'


def test_every_attribute_in_order():
    value = format_set_cookie(
        'sid', 'v1', max_age=3600, expires=datetime(2015, 10, 21, 7, 28, tzinfo=timezone.utc),
        path='/app', domain='example.com', secure=True, httponly=True, samesite='strict',
        partitioned=True,
    )
    assert value == (
        'sid=v1; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Max-Age=3600; Domain=example.com; '
        'Path=/app; Secure; HttpOnly; SameSite=Strict; Partitioned'
    )


def test_attributes_switched_off():
    assert format_set_cookie('a', 'b', path=None, httponly=False, samesite=None) == 'a=b'


@pytest.mark.parametrize(
    ('samesite', 'expected'), [('Lax', 'Lax'), ('STRICT', 'Strict'), ('none', 'None')]
)
def test_samesite_is_canonicalised(samesite, expected):
    value = format_set_cookie('a', 'b', samesite=samesite, secure=True)
    assert value == f'a=b; Path=/; Secure; HttpOnly; SameSite={expected}'


@pytest.mark.parametrize(
    ('expires', 'text'),
    [
        (0, 'Thu, 01 Jan 1970 00:00:00 GMT'),
        (1445412480.9, 'Wed, 21 Oct 2015 07:28:00 GMT'),
        (datetime(2015, 10, 21, 7, 28), 'Wed, 21 Oct 2015 07:28:00 GMT'),  # naive = UTC
        (datetime(2015, 10, 21, 9, 28, tzinfo=timezone(timedelta(hours=2))),
         'Wed, 21 Oct 2015 07:28:00 GMT'),
        ('Wed, 21 Oct 2015 07:28:00 GMT', 'Wed, 21 Oct 2015 07:28:00 GMT'),
    ],
    ids=['epoch', 'float', 'naive', 'other-zone', 'string'],
)
def test_expires(expires, text):
    value = format_set_cookie('a', 'b', expires=expires, path=None, samesite=None)
    assert value == f'a=b; Expires={text}; HttpOnly'


def test_max_age_zero_and_float():
    assert format_set_cookie('a', max_age=0, path=None, samesite=None) == 'a=; Max-Age=0; HttpOnly'
    assert format_set_cookie('a', max_age=9.7, path=None, samesite=None) == (
        'a=; Max-Age=9; HttpOnly'
    )


@pytest.mark.parametrize(
    'kwargs',
    [
        {'name': ''},
        {'name': 'a b'},
        {'name': 'a;b'},
        {'name': 'a=b'},
        {'name': 'a\r\nSet-Cookie: x'},
        {'name': 'a\n'},
        {'name': 'caf\u00e9'},
        {'value': 'a;b'},
        {'value': 'a b'},
        {'value': 'a,b'},
        {'value': 'a\\b'},
        {'value': 'a"b'},
        {'value': '"open'},
        {'value': 'x\r\nSet-Cookie: evil=1'},
        {'value': 'x\nEvil: 1'},
        {'value': 'x\r'},
        {'value': 'caf\u00e9'},
        {'path': '/a;b'},
        {'path': '/a\r\nX: y'},
        {'path': '/a\n'},
        {'path': '/a\x00'},
        {'domain': 'example.com; Secure'},
        {'domain': 'example.com\r\n'},
        {'expires': 'Wed; Secure'},
        {'expires': 'Wed\r\nX: y'},
        {'samesite': 'None'},
        {'samesite': 'bogus', 'secure': True},
        {'partitioned': True},
    ],
)
def test_rejects_what_would_corrupt_the_header(kwargs):
    arguments = {'name': 'sid', 'value': 'v', **kwargs}
    name = arguments.pop('name')
    value = arguments.pop('value')
    with pytest.raises(ValueError):
        format_set_cookie(name, value, **arguments)


def test_samesite_none_requires_secure_message():
    with pytest.raises(ValueError, match='secure'):
        format_set_cookie('a', 'b', samesite='none')
    assert format_set_cookie('a', 'b', samesite='none', secure=True).endswith('SameSite=None')
