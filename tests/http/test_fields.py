"""Headers, MultiDict and parse_query (tremolo.http.fields)."""

from __future__ import annotations

import pytest

from tremolo.http.fields import Headers, MultiDict, parse_query
from tremolo.http.head import HeadReader

# -- Headers --------------------------------------------------------------------------------------


@pytest.fixture
def headers() -> Headers:
    head, _ = HeadReader().read(
        b'GET / HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/html\r\n'
        b'X-Name: caf\xe9 \xff\r\nAccept: a\r\nAccept: b\r\n\r\n'
    )
    return Headers(head.headers)


def test_headers_case_insensitive(headers):
    assert headers['content-type'] == 'text/html'
    assert headers['Content-Type'] == 'text/html'
    assert headers['CONTENT-TYPE'] == 'text/html'
    assert headers.get('Host') == 'example.com'
    assert 'HOST' in headers and 'host' in headers


def test_headers_values_are_latin1(headers):
    assert headers['x-name'] == 'caf\u00e9 \u00ff'
    assert headers.raw[b'x-name'] == b'caf\xe9 \xff'


def test_headers_combined_value(headers):
    assert headers['accept'] == 'a, b'


def test_headers_missing(headers):
    with pytest.raises(KeyError):
        headers['missing']
    assert headers.get('missing') is None
    assert headers.get('missing', 'fallback') == 'fallback'
    assert headers.get('host', 'fallback') == 'example.com'
    assert 'missing' not in headers


@pytest.mark.parametrize('name', ['\u20ac', 'x-\U0001f600'])
def test_headers_non_latin1_name_is_absent(headers, name):
    assert name not in headers
    assert headers.get(name, 'd') == 'd'
    with pytest.raises(KeyError):
        headers[name]


def test_headers_non_string_key_is_absent(headers):
    assert b'host' not in headers
    assert 1 not in headers


def test_headers_mapping_protocol(headers):
    assert list(headers) == ['host', 'content-type', 'x-name', 'accept']
    assert len(headers) == 4
    assert dict(headers) == {
        'host': 'example.com', 'content-type': 'text/html', 'x-name': 'caf\u00e9 \u00ff',
        'accept': 'a, b',
    }
    assert headers == dict(headers)
    assert repr(Headers({b'a': b'1'})) == "Headers({'a': '1'})"


def test_headers_empty():
    empty = Headers({})
    assert len(empty) == 0 and list(empty) == [] and 'a' not in empty


# -- MultiDict ------------------------------------------------------------------------------------


def test_multidict():
    items = [('a', '1'), ('b', '2'), ('a', '3')]
    multi = MultiDict(items)
    assert multi['a'] == '1'
    assert multi.get('a') == '1'
    assert multi.getlist('a') == ['1', '3']
    assert multi.getlist('b') == ['2']
    assert multi.getlist('missing') == []
    assert multi.multi_items() == [('a', '1'), ('b', '2'), ('a', '3')]
    assert list(multi) == ['a', 'b']
    assert len(multi) == 2
    assert dict(multi) == {'a': '1', 'b': '2'}
    assert repr(multi) == "MultiDict([('a', '1'), ('b', '2'), ('a', '3')])"
    with pytest.raises(KeyError):
        multi['missing']


def test_multidict_returns_copies():
    multi = MultiDict([('a', '1')])
    multi.getlist('a').append('x')
    multi.multi_items().append(('b', '2'))
    assert multi.getlist('a') == ['1']
    assert multi.multi_items() == [('a', '1')]


def test_multidict_empty():
    for multi in (MultiDict(), MultiDict([])):
        assert len(multi) == 0 and multi.multi_items() == [] and multi.get('a') is None


# -- parse_query ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('query', 'expected'),
    [
        ('', []),
        ('a=1', [('a', '1')]),
        ('a=1&b=2&a=3', [('a', '1'), ('b', '2'), ('a', '3')]),
        ('a=&b', [('a', ''), ('b', '')]),
        ('a=1&&b=2&', [('a', '1'), ('b', '2')]),
        ('q=hello+world&r=a%20b%2Bc', [('q', 'hello world'), ('r', 'a b+c')]),
        ('k%C3%A9=caf%C3%A9', [('k\u00e9', 'caf\u00e9')]),
        ('bad=%ff', [('bad', '\ufffd')]),
        ('a=1;b=2', [('a', '1;b=2')]),
        ('a=b=c', [('a', 'b=c')]),
    ],
)
def test_parse_query(query, expected):
    result = parse_query(query)
    assert isinstance(result, MultiDict)
    assert result.multi_items() == expected


def test_parse_query_max_fields():
    assert parse_query('a=1&b=2', max_fields=2).multi_items() == [('a', '1'), ('b', '2')]
    with pytest.raises(ValueError):
        parse_query('a=1&b=2&c=3', max_fields=2)
