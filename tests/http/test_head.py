"""The request head: request line, header fields and framing (tremolo.http.head).

Every case goes through the ``parse_head`` / ``head_error`` fixtures of ``conftest.py``, which
feed it whole, byte by byte and with a pipelined request appended.
"""

from __future__ import annotations

import pytest

from tremolo.http import errors
from tremolo.http.head import (
    HeadReader,
    RequestHead,
    check_framing,
    parse_content_length,
    parse_fields,
    parse_request_line,
    parse_trailers,
)

# -- accepted heads ------------------------------------------------------------------------------

# (id, raw head, expected attributes). Attributes not named take the defaults of _DEFAULTS.
_DEFAULTS = {
    'method': 'GET', 'target': b'/', 'version': '1.1', 'content_length': None,
    'chunked': False, 'keep_alive': True, 'expect_continue': False, 'upgrade': None,
}

VALID = [
    (
        'get-with-query',
        b'GET /path/to?a=1&b=two&c= HTTP/1.1\r\nHost: example.com\r\n\r\n',
        {'target': b'/path/to?a=1&b=two&c=', 'headers': {b'host': b'example.com'}},
    ),
    (
        'post-content-length',
        b'POST /submit HTTP/1.1\r\nHost: a.test\r\nContent-Type: text/plain\r\n'
        b'Content-Length: 5\r\n\r\n',
        {
            'method': 'POST', 'target': b'/submit', 'content_length': 5,
            'headers': {
                b'host': b'a.test', b'content-type': b'text/plain', b'content-length': b'5',
            },
        },
    ),
    (
        'content-length-zero',
        b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n',
        {'method': 'POST', 'content_length': 0,
         'headers': {b'host': b'a', b'content-length': b'0'}},
    ),
    (
        'content-length-leading-zeros',
        b'PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 000012\r\n\r\n',
        {'method': 'PUT', 'target': b'/x', 'content_length': 12,
         'headers': {b'host': b'a', b'content-length': b'000012'}},
    ),
    (
        'content-length-identical-list',
        b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n',
        {'method': 'POST', 'content_length': 5,
         'headers': {b'host': b'a', b'content-length': b'5, 5'}},
    ),
    (
        'content-length-identical-repeated-fields',
        b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n',
        {'method': 'POST', 'content_length': 7,
         'headers': {b'host': b'a', b'content-length': b'7, 7'}},
    ),
    (
        'content-length-largest',
        b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\n',
        {'method': 'POST', 'content_length': 10**18 - 1,
         'headers': {b'host': b'a', b'content-length': b'999999999999999999'}},
    ),
    (
        'chunked',
        b'POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n',
        {'method': 'POST', 'target': b'/up', 'chunked': True,
         'headers': {b'host': b'a', b'transfer-encoding': b'chunked'}},
    ),
    (
        'chunked-case-and-ows',
        b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \t ChUnKeD \t\r\n\r\n',
        {'method': 'POST', 'chunked': True,
         'headers': {b'host': b'a', b'transfer-encoding': b'ChUnKeD'}},
    ),
    (
        'chunked-empty-list-elements',
        b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked,\r\n\r\n',
        {'method': 'POST', 'chunked': True,
         'headers': {b'host': b'a', b'transfer-encoding': b', chunked,'}},
    ),
    (
        'http10-no-headers',
        b'GET /old HTTP/1.0\r\n\r\n',
        {'target': b'/old', 'version': '1.0', 'keep_alive': False, 'headers': {}},
    ),
    (
        'http10-without-host',
        b'GET / HTTP/1.0\r\nAccept: */*\r\n\r\n',
        {'version': '1.0', 'keep_alive': False, 'headers': {b'accept': b'*/*'}},
    ),
    (
        'http10-keep-alive',
        b'GET / HTTP/1.0\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n',
        {'version': '1.0', 'keep_alive': True,
         'headers': {b'host': b'a', b'connection': b'Keep-Alive'}},
    ),
    (
        'http10-keep-alive-and-close',
        b'GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n',
        {'version': '1.0', 'keep_alive': False,
         'headers': {b'connection': b'keep-alive, close'}},
    ),
    (
        'http10-content-length',
        b'POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\n',
        {'method': 'POST', 'version': '1.0', 'keep_alive': False, 'content_length': 3,
         'headers': {b'content-length': b'3'}},
    ),
    (
        'connection-close',
        b'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
        {'keep_alive': False, 'headers': {b'host': b'a', b'connection': b'close'}},
    ),
    (
        'connection-close-in-list',
        b'GET / HTTP/1.1\r\nHost: a\r\nConnection: TE, Close\r\n\r\n',
        {'keep_alive': False, 'headers': {b'host': b'a', b'connection': b'TE, Close'}},
    ),
    (
        'connection-closed-is-not-close',
        b'GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n',
        {'keep_alive': True, 'headers': {b'host': b'a', b'connection': b'closed'}},
    ),
    (
        'expect-100-continue',
        b'PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 10\r\n\r\n',
        {'method': 'PUT', 'expect_continue': True, 'content_length': 10,
         'headers': {b'host': b'a', b'expect': b'100-Continue', b'content-length': b'10'}},
    ),
    (
        'expect-100-continue-ignored-in-http10',
        b'PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n',
        {'method': 'PUT', 'version': '1.0', 'keep_alive': False, 'content_length': 1,
         'expect_continue': False,
         'headers': {b'expect': b'100-continue', b'content-length': b'1'}},
    ),
    (
        'upgrade',
        b'GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n'
        b'Upgrade: WebSocket\r\n\r\n',
        {'target': b'/ws', 'upgrade': b'websocket',
         'headers': {b'host': b'a', b'connection': b'keep-alive, Upgrade',
                     b'upgrade': b'WebSocket'}},
    ),
    (
        'upgrade-field-without-connection-option',
        b'GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n',
        {'upgrade': None, 'headers': {b'host': b'a', b'upgrade': b'websocket'}},
    ),
    (
        'upgrade-ignored-in-http10',
        b'GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n',
        {'version': '1.0', 'keep_alive': False, 'upgrade': None,
         'headers': {b'connection': b'upgrade', b'upgrade': b'websocket'}},
    ),
    (
        'absolute-form',
        b'GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\n\r\n',
        {'target': b'http://example.com:8080/a/b?c=d',
         'headers': {b'host': b'example.com:8080'}},
    ),
    (
        'absolute-form-https-upper-case-scheme',
        b'GET HTTPS://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n',
        {'target': b'HTTPS://example.com/', 'headers': {b'host': b'example.com'}},
    ),
    (
        'options-asterisk',
        b'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n',
        {'method': 'OPTIONS', 'target': b'*', 'headers': {b'host': b'a'}},
    ),
    (
        'one-empty-line-first',
        b'\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n',
        {'headers': {b'host': b'a'}},
    ),
    (
        'four-empty-lines-first',
        b'\r\n\r\n\r\n\r\nDELETE /item/1 HTTP/1.1\r\nHost: a\r\n\r\n',
        {'method': 'DELETE', 'target': b'/item/1', 'headers': {b'host': b'a'}},
    ),
    (
        'obs-text-in-value',
        b'GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9 \x80\xff\r\n\r\n',
        {'headers': {b'host': b'a', b'x-name': b'caf\xc3\xa9 \x80\xff'}},
    ),
    (
        'ows-trimmed-inner-whitespace-kept',
        b'GET / HTTP/1.1\r\nHost:a\r\nX-A: \t value  with\tinner  spaces \t \r\nX-B:\r\n'
        b'X-C:   \r\n\r\n',
        {'headers': {b'host': b'a', b'x-a': b'value  with\tinner  spaces', b'x-b': b'',
                     b'x-c': b''}},
    ),
    (
        'repeated-fields-combined',
        b'GET / HTTP/1.1\r\nHost: a\r\nAccept: text/html\r\nX-Other: 1\r\naccept: */*\r\n'
        b'Cookie: a=1\r\nCOOKIE: b=2; c=3\r\n\r\n',
        {'headers': {b'host': b'a', b'accept': b'text/html, */*', b'x-other': b'1',
                     b'cookie': b'a=1; b=2; c=3'}},
    ),
    (
        'names-lower-cased-colon-in-value',
        b'GET / HTTP/1.1\r\nHOST: example.com:443\r\nX-Weird_Name!#$%&\'*+.^`|~: v:w\r\n\r\n',
        {'headers': {b'host': b'example.com:443', b"x-weird_name!#$%&'*+.^`|~": b'v:w'}},
    ),
    (
        'empty-host-value',
        b'GET / HTTP/1.1\r\nHost:\r\n\r\n',
        {'headers': {b'host': b''}},
    ),
    (
        'extension-method-case-kept',
        b'purge /cache HTTP/1.1\r\nHost: a\r\n\r\n',
        {'method': 'purge', 'target': b'/cache', 'headers': {b'host': b'a'}},
    ),
    # RFC 9112 §2.3: a higher minor version of HTTP/1 is served as HTTP/1.1.
    (
        'http-1.2-served-as-1.1',
        b'GET / HTTP/1.2\r\nHost: a\r\n\r\n',
        {'version': '1.1', 'headers': {b'host': b'a'}, 'host': b'a'},
    ),
    (
        'http-1.9-slow-path',
        b'OPTIONS * HTTP/1.9\r\nHost: a\r\n\r\n',
        {'method': 'OPTIONS', 'target': b'*', 'version': '1.1', 'headers': {b'host': b'a'}},
    ),
    # Host syntax (RFC 9110 §7.2, RFC 3986 §3.2.2) and the effective host (RFC 9112 §3.2.2).
    (
        'host-ipv4-port',
        b'GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n',
        {'headers': {b'host': b'127.0.0.1:8080'}, 'host': b'127.0.0.1:8080'},
    ),
    (
        'host-ipv6',
        b'GET / HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n',
        {'headers': {b'host': b'[2001:db8::1]:443'}, 'host': b'[2001:db8::1]:443'},
    ),
    (
        'host-ipvfuture-empty-port',
        b'GET / HTTP/1.1\r\nHost: [v1.fe80::a+en1]:\r\n\r\n',
        {'headers': {b'host': b'[v1.fe80::a+en1]:'}, 'host': b'[v1.fe80::a+en1]:'},
    ),
    (
        'host-reg-name-every-byte',
        b"GET / HTTP/1.1\r\nHost: Ex-a_m.p~l%C3%A9!$&'()*+,;=\r\n\r\n",
        {'headers': {b'host': b"Ex-a_m.p~l%C3%A9!$&'()*+,;="},
         'host': b"Ex-a_m.p~l%C3%A9!$&'()*+,;="},
    ),
    (
        'absolute-form-authority-wins',
        b'GET http://target.test:81/x HTTP/1.1\r\nHost: other.test\r\n\r\n',
        {'target': b'http://target.test:81/x', 'headers': {b'host': b'other.test'},
         'host': b'target.test:81'},
    ),
    (
        'absolute-form-empty-path',
        b'GET http://a.test?q=1 HTTP/1.1\r\nHost: a.test\r\n\r\n',
        {'target': b'http://a.test?q=1', 'headers': {b'host': b'a.test'}, 'host': b'a.test'},
    ),
    (
        'absolute-form-http10-without-host',
        b'GET http://[::1]:80/ HTTP/1.0\r\n\r\n',
        {'target': b'http://[::1]:80/', 'version': '1.0', 'keep_alive': False, 'headers': {},
         'host': b'[::1]:80'},
    ),
    (
        'http10-no-host-empty-effective-host',
        b'GET / HTTP/1.0\r\n\r\n',
        {'version': '1.0', 'keep_alive': False, 'headers': {}, 'host': b''},
    ),
    (
        'chunked-uppercase-then-ows',
        b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  CHUNKED\r\n\r\n',
        {'method': 'POST', 'chunked': True,
         'headers': {b'host': b'a', b'transfer-encoding': b'CHUNKED'}},
    ),
    (
        'connection-options-kept',
        b'GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, x-custom\r\nX-Custom: 1\r\n\r\n',
        {'headers': {b'host': b'a', b'connection': b'keep-alive, x-custom', b'x-custom': b'1'}},
    ),
    (
        'target-with-every-visible-byte',
        b"GET /a%20b/~!$&'()*+,;=:@?q=[x]{y}|\\^`\"<> HTTP/1.1\r\nHost: a\r\n\r\n",
        {'target': b"/a%20b/~!$&'()*+,;=:@?q=[x]{y}|\\^`\"<>", 'headers': {b'host': b'a'}},
    ),
]


@pytest.mark.parametrize(('data', 'expected'), [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_valid_head(parse_head, data, expected):
    head = parse_head(data)
    assert isinstance(head, RequestHead)
    attributes = {**_DEFAULTS, **expected}
    actual = {name: getattr(head, name) for name in attributes}
    assert actual == attributes


def test_body_bytes_are_left_in_the_buffer():
    data = b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello'
    head, consumed = HeadReader().read(data)
    assert head.content_length == 5
    assert data[consumed:] == b'hello'


def test_pipelined_heads_with_one_reader():
    first = b'GET /1 HTTP/1.1\r\nHost: a\r\n\r\n'
    second = b'\r\nGET /2 HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n'
    reader = HeadReader()
    buffer = first + second[:10]
    head, consumed = reader.read(buffer)
    assert (head.target, head.headers) == (b'/1', {b'host': b'a'})
    buffer = buffer[consumed:]
    assert reader.read(buffer) is None
    buffer += second[10:]
    head, consumed = reader.read(buffer)
    assert (head.target, head.headers, head.keep_alive) == (
        b'/2', {b'host': b'b', b'connection': b'close'}, False,
    )
    assert consumed == len(second)


@pytest.mark.parametrize('data', [c[1] for c in VALID[:12]], ids=[c[0] for c in VALID[:12]])
def test_valid_head_split_at_every_position(data):
    whole, _ = HeadReader().read(data)
    for i in range(1, len(data)):
        reader = HeadReader()
        assert reader.read(data[:i]) is None
        head, consumed = reader.read(data)
        assert consumed == len(data)
        assert head.headers == whole.headers and head.target == whole.target


def test_has_body_and_repr():
    reader = HeadReader()
    head, _ = reader.read(b'GET /x HTTP/1.1\r\nHost: a\r\n\r\n')
    assert head.has_body is False
    assert repr(head) == "<RequestHead GET b'/x' HTTP/1.1>"
    head, _ = reader.read(b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n')
    assert head.has_body is False
    head, _ = reader.read(b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n')
    assert head.has_body is True
    head, _ = reader.read(b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n')
    assert head.has_body is True


# -- rejected heads -----------------------------------------------------------------------------

INVALID = [
    # Host (RFC 9112 §3.2)
    ('missing-host', b'GET / HTTP/1.1\r\nAccept: */*\r\n\r\n', 400),
    ('missing-host-no-fields', b'GET / HTTP/1.1\r\n\r\n', 400),
    ('repeated-host', b'GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n', 400),
    ('repeated-host-case', b'GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n', 400),
    # line endings (RFC 9112 §2.2)
    ('bare-lf-request-line', b'GET / HTTP/1.1\nHost: a\r\n\r\n', 400),
    ('bare-lf-header', b'GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n', 400),
    ('bare-lf-everywhere', b'GET / HTTP/1.1\nHost: a\n\n', 400),
    ('bare-lf-last-field', b'GET / HTTP/1.1\r\nHost: a\n\r\n', 400),
    ('bare-lf-end-of-head', b'GET / HTTP/1.1\r\nHost: a\r\n\n', 400),
    ('bare-lf-before-request-line', b'\nGET / HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    ('bare-lf-after-empty-line', b'\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    ('bare-cr-in-field', b'GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n', 400),
    ('bare-cr-in-request-line', b'GET /\r HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    ('five-empty-lines-first', b'\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    # field syntax (RFC 9112 §5)
    ('obs-fold-space', b'GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n', 400),
    ('obs-fold-tab', b'GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n', 400),
    ('leading-whitespace-first-field', b'GET / HTTP/1.1\r\n Host: a\r\n\r\n', 400),
    ('space-before-colon', b'GET / HTTP/1.1\r\nHost : a\r\n\r\n', 400),
    ('tab-before-colon', b'GET / HTTP/1.1\r\nHost\t: a\r\n\r\n', 400),
    ('no-colon', b'GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n', 400),
    ('empty-name', b'GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n', 400),
    ('space-in-name', b'GET / HTTP/1.1\r\nHost: a\r\nX Y: b\r\n\r\n', 400),
    ('separator-in-name', b'GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n', 400),
    ('nul-in-name', b'GET / HTTP/1.1\r\nHost: a\r\nX\x00Y: b\r\n\r\n', 400),
    ('non-ascii-in-name', b'GET / HTTP/1.1\r\nHost: a\r\nX\xe9: b\r\n\r\n', 400),
    ('nul-in-value', b'GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n', 400),
    ('control-in-value', b'GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n', 400),
    ('escape-in-value', b'GET / HTTP/1.1\r\nHost: a\r\nX: \x1b[31m\r\n\r\n', 400),
    ('del-in-value', b'GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n', 400),
    ('nul-in-host', b'GET / HTTP/1.1\r\nHost: a\x00\r\n\r\n', 400),
    ('whitespace-only-line', b'GET / HTTP/1.1\r\nHost: a\r\n \r\n\r\n', 400),
    # Host syntax (RFC 9112 §3.2: 400 for an invalid Host value; RFC 3986 §3.2.2)
    ('host-space', b'GET / HTTP/1.1\r\nHost: a b\r\n\r\n', 400),
    ('host-slash', b'GET / HTTP/1.1\r\nHost: a/b\r\n\r\n', 400),
    ('host-two-colons', b'GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n', 400),
    ('host-port-letters', b'GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n', 400),
    ('host-userinfo', b'GET / HTTP/1.1\r\nHost: user@a\r\n\r\n', 400),
    ('host-list', b'GET / HTTP/1.1\r\nHost: a, b\r\n\r\n', 400),
    ('host-bad-pct', b'GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n', 400),
    ('host-non-ascii', b'GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n', 400),
    ('host-unclosed-bracket', b'GET / HTTP/1.1\r\nHost: [::1\r\n\r\n', 400),
    ('host-bad-ipv6', b'GET / HTTP/1.1\r\nHost: [1::2::3]\r\n\r\n', 400),
    ('host-ipv6-zone', b'GET / HTTP/1.1\r\nHost: [fe80::1%25en0]\r\n\r\n', 400),
    ('host-invalid-http10', b'GET / HTTP/1.0\r\nHost: a b\r\n\r\n', 400),
    ('host-invalid-with-absolute-form',
     b'GET http://a.test/ HTTP/1.1\r\nHost: a^b\r\n\r\n', 400),
    ('absolute-form-missing-host-field', b'GET http://a.test/ HTTP/1.1\r\n\r\n', 400),
    # request line (RFC 9112 §3)
    ('bad-method-token', b'G@T / HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    ('empty-method', b' / HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    ('non-ascii-method', b'G\xc3\x89T / HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    ('two-spaces', b'GET  / HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    ('trailing-space', b'GET / HTTP/1.1 \r\nHost: a\r\n\r\n', 400),
    ('tab-separator', b'GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    # RFC 9112 §3.2: no form of request-target carries a fragment
    ('fragment', b'GET /page#top HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    ('fragment-after-query', b'GET /page?a=1#top HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    ('fragment-only', b'GET /# HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    ('fragment-http10', b'GET /a#b HTTP/1.0\r\n\r\n', 400),
    ('fragment-absolute-form', b'GET http://a.test/p#f HTTP/1.1\r\nHost: a.test\r\n\r\n', 400),
    ('no-version', b'GET /\r\nHost: a\r\n\r\n', 400),
    ('space-in-target', b'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    ('control-in-target', b'GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    ('del-in-target', b'GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    ('non-ascii-target', b'GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    ('relative-target', b'GET a/b HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    ('authority-form-not-connect', b'GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    ('other-scheme', b'GET ftp://example.com/ HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    ('absolute-userinfo', b'GET http://u:p@a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n', 400),
    ('absolute-empty-host', b'GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    ('absolute-port-only', b'GET http://:80/x HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    ('absolute-bad-host', b'GET http://a^b/x HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    ('absolute-fragment', b'GET http://a.test/x#f HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    ('absolute-no-slashes', b'GET http:a.test/x HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    ('asterisk-not-options', b'GET * HTTP/1.1\r\nHost: a\r\n\r\n', 400),
    ('http-2', b'GET / HTTP/2.0\r\nHost: a\r\n\r\n', 505),
    ('http-0.9', b'GET / HTTP/0.9\r\nHost: a\r\n\r\n', 505),
    ('http-3', b'GET / HTTP/3.0\r\nHost: a\r\n\r\n', 505),
    ('http-0.0', b'GET / HTTP/0.0\r\nHost: a\r\n\r\n', 505),
    ('http-2-preface', b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 505),
    ('http-1.2-still-needs-host', b'GET / HTTP/1.2\r\n\r\n', 400),
    ('http-0.9-simple-request', b'GET /\r\n\r\n', 400),
    ('version-letter-minor', b'GET / HTTP/1.x\r\nHost: a\r\n\r\n', 400),
    ('version-lower-case', b'GET / http/1.1\r\nHost: a\r\n\r\n', 400),
    ('version-no-minor', b'GET / HTTP/1\r\nHost: a\r\n\r\n', 400),
    ('version-two-digits', b'GET / HTTP/11.1\r\nHost: a\r\n\r\n', 400),
    ('version-suffix', b'GET / HTTP/1.1x\r\nHost: a\r\n\r\n', 400),
    ('version-garbage', b'GET / FOO\r\nHost: a\r\n\r\n', 400),
    ('connect-authority', b'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n', 501),
    ('connect-origin-form', b'CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n', 501),
    # framing (RFC 9112 §6)
    ('cl-and-te', b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n'
                  b'Transfer-Encoding: chunked\r\n\r\n', 400),
    ('te-and-cl', b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n'
                  b'Content-Length: 3\r\n\r\n', 400),
    ('conflicting-cl-list', b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n', 400),
    ('conflicting-cl-fields', b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n'
                              b'Content-Length: 50\r\n\r\n', 400),
    ('cl-letters', b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n', 400),
    ('cl-negative', b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n', 400),
    ('cl-plus', b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n', 400),
    ('cl-hex', b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n', 400),
    ('cl-decimal', b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5.0\r\n\r\n', 400),
    ('cl-inner-space', b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n', 400),
    ('cl-empty', b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n', 400),
    ('cl-unicode-digit', b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \xd9\xa3\r\n\r\n', 400),
    ('cl-huge', b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000000000\r\n\r\n',
     413),
    ('cl-overflow', b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ' + b'9' * 40 + b'\r\n\r\n',
     413),
    ('te-in-http10', b'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', 400),
    ('te-gzip-only', b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n', 400),
    ('te-identity', b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n', 400),
    ('te-chunked-not-last', b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip'
                            b'\r\n\r\n', 400),
    ('te-empty', b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n', 400),
    ('te-chunkedx', b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedx\r\n\r\n', 400),
    ('te-gzip-chunked', b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked'
                        b'\r\n\r\n', 501),
    ('te-gzip-chunked-fields', b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n'
                               b'Transfer-Encoding: chunked\r\n\r\n', 501),
    ('te-chunked-twice', b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked'
                         b'\r\n\r\n', 400),
    ('te-xchunked', b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n', 400),
    ('te-quoted', b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "chunked"\r\n\r\n', 400),
    ('te-parameter', b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n',
     400),
    ('te-vertical-tab', b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n',
     400),
    ('te-space-before-colon', b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n'
                              b'\r\n', 400),
    ('te-folded', b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n', 400),
    ('te-chunked-then-identity', b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n'
                                 b'Transfer-Encoding: identity\r\n\r\n', 400),
    ('te-and-cl-http10', b'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3'
                         b'\r\n\r\n', 400),
    ('cl-trailing-comma', b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n', 400),
    ('cl-leading-zero-list', b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 05, 5\r\n\r\n',
     400),
    ('te-chunked-twice-fields', b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n'
                                b'Transfer-Encoding: chunked\r\n\r\n', 400),
    # Expect (RFC 9110 §10.1.1)
    ('expect-other', b'POST / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n', 417),
    ('expect-list', b'POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, x\r\n\r\n', 417),
    ('expect-other-http10', b'POST / HTTP/1.0\r\nExpect: 200-ok\r\n\r\n', 417),
]

_ERROR_CLASSES = {
    400: errors.BadRequest, 413: errors.PayloadTooLarge, 414: errors.URITooLong,
    417: errors.ExpectationFailed, 431: errors.HeaderFieldsTooLarge,
    501: errors.NotImplementedByServer, 505: errors.VersionNotSupported,
}


@pytest.mark.parametrize(
    ('data', 'status'), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_head(head_error, data, status):
    error = head_error(data)
    assert error.status == status
    assert isinstance(error, _ERROR_CLASSES[status])
    assert error.message


# -- limits ---------------------------------------------------------------------------------------

def _head_with_line(length: int) -> bytes:
    """A valid head whose request line is exactly ``length`` bytes long."""
    prefix, suffix = b'GET /', b' HTTP/1.1'
    return prefix + b'a' * (length - len(prefix) - len(suffix)) + suffix + b'\r\nHost: a\r\n\r\n'


def test_request_line_at_limit_accepted(parse_head):
    data = _head_with_line(64)
    head = parse_head(data, max_request_line=64)
    assert head.target == b'/' + b'a' * 50


def test_request_line_at_limit_after_empty_line_accepted(parse_head):
    head = parse_head(b'\r\n' + _head_with_line(64), max_request_line=64)
    assert len(head.target) == 51


@pytest.mark.parametrize('prefix', [b'', b'\r\n'], ids=['plain', 'after-empty-line'])
def test_request_line_too_long(head_error, prefix):
    error = head_error(prefix + _head_with_line(65), max_request_line=64)
    assert error.status == 414
    assert isinstance(error, errors.URITooLong)


def test_request_line_longer_than_head_limit_is_414(head_error):
    # The same status whether the head arrives whole or in pieces.
    error = head_error(_head_with_line(300), max_request_line=64, max_head_size=128)
    assert error.status == 414


def test_request_line_too_long_rejected_before_its_end():
    reader = HeadReader(max_request_line=64)
    assert reader.read(b'GET /' + b'a' * 50) is None
    with pytest.raises(errors.URITooLong):
        reader.read(b'GET /' + b'a' * 200)


def _head_of_size(size: int) -> bytes:
    """A valid head with ``size`` bytes before its final CRLFCRLF."""
    base = b'GET / HTTP/1.1\r\nHost: a\r\nX: '
    return base + b'v' * (size - len(base)) + b'\r\n\r\n'


def test_head_at_size_limit_accepted(parse_head):
    data = _head_of_size(128)
    head = parse_head(data, max_head_size=128)
    assert head.headers[b'x'] == b'v' * 100


def test_head_at_size_limit_after_empty_lines_accepted(parse_head):
    head = parse_head(b'\r\n\r\n' + _head_of_size(128), max_head_size=128)
    assert head.headers[b'x'] == b'v' * 100


def test_head_too_large(head_error):
    error = head_error(_head_of_size(129), max_head_size=128)
    assert error.status == 431
    assert isinstance(error, errors.HeaderFieldsTooLarge)


def test_endless_head_rejected_early():
    reader = HeadReader(max_head_size=128)
    data = b'GET / HTTP/1.1\r\nHost: a\r\nX: ' + b'v' * 100
    assert reader.read(data) is None
    with pytest.raises(errors.HeaderFieldsTooLarge):
        reader.read(data + b'v' * 10)


def _head_with_fields(count: int) -> bytes:
    fields = b''.join(b'X-%d: %d\r\n' % (i, i) for i in range(count - 1))
    return b'GET / HTTP/1.1\r\nHost: a\r\n' + fields + b'\r\n'


def test_header_count_at_limit_accepted(parse_head):
    head = parse_head(_head_with_fields(5), max_header_count=5)
    assert head.headers == {b'host': b'a', b'x-0': b'0', b'x-1': b'1', b'x-2': b'2', b'x-3': b'3'}


def test_too_many_headers(head_error):
    error = head_error(_head_with_fields(6), max_header_count=5)
    assert error.status == 431
    assert isinstance(error, errors.HeaderFieldsTooLarge)


def test_default_limits():
    reader = HeadReader()
    assert (reader.max_request_line, reader.max_head_size, reader.max_header_count) == (
        8190, 16384, 100,
    )
    assert reader.read(_head_with_line(8190)) is not None
    with pytest.raises(errors.URITooLong):
        HeadReader().read(_head_with_line(8191))


# -- the module functions -------------------------------------------------------------------------

def test_parse_request_line():
    head = parse_request_line(b'PATCH /a?b HTTP/1.0')
    assert (head.method, head.target, head.version, head.headers) == (
        'PATCH', b'/a?b', '1.0', {},
    )
    assert head.keep_alive is False
    with pytest.raises(errors.URITooLong):
        parse_request_line(b'GET /abcdef HTTP/1.1', max_length=10)


def test_parse_fields_into_existing_headers():
    head = parse_request_line(b'GET / HTTP/1.1')
    parse_fields(b'Host: a\r\nVary: x\r\nVary:  y \r\n', head)
    assert head.headers == {b'host': b'a', b'vary': b'x, y'}
    with pytest.raises(errors.BadRequest):
        parse_fields(b'Host: a\r\nX: y', head)  # the last line must end with CRLF
    with pytest.raises(errors.HeaderFieldsTooLarge):
        parse_fields(b'A: 1\r\nB: 2\r\nC: 3\r\n', parse_request_line(b'GET / HTTP/1.1'), 2)


def test_parse_trailers():
    assert parse_trailers(b'Server-Timing: db;dur=5\r\nX-Sum: 1\r\nx-sum: 2\r\n') == {
        b'server-timing': b'db;dur=5', b'x-sum': b'1, 2',
    }
    with pytest.raises(errors.BadRequest):
        parse_trailers(b'X : 1\r\n')
    with pytest.raises(errors.HeaderFieldsTooLarge):
        parse_trailers(b'A: 1\r\nB: 2\r\n', max_count=1)


@pytest.mark.parametrize(
    ('value', 'expected'),
    [(b'0', 0), (b'42', 42), (b'007', 7), (b'3,3', 3), (b'3 ,\t3, 3', 3),
     (b'0' * 40 + b'1', 1)],
)
def test_parse_content_length(value, expected):
    assert parse_content_length(value) == expected


@pytest.mark.parametrize(
    ('value', 'status'),
    [(b'', 400), (b'1,2', 400), (b'1,', 400), (b'a', 400), (b'1e3', 400),
     (b'1' + b'0' * 18, 413)],
)
def test_parse_content_length_rejects(value, status):
    with pytest.raises(errors.ParseError) as info:
        parse_content_length(value)
    assert info.value.status == status


def test_check_framing_on_a_built_head():
    head = RequestHead('POST', b'/', '1.1', {b'host': b'a', b'transfer-encoding': b'chunked'})
    check_framing(head)
    assert (head.chunked, head.content_length, head.has_body) == (True, None, True)
    head = RequestHead('GET', b'/', '1.1', {})
    with pytest.raises(errors.BadRequest, match='Host'):
        check_framing(head)


def test_parse_error_status_override_and_message():
    error = errors.ParseError('boom', status=418)
    assert (error.status, error.message) == (418, 'boom')
    assert errors.ParseError('x').status == 400


@pytest.mark.parametrize(
    ('line', 'message'),
    [
        (b'X: b\r\n c', 'obsolete line folding'),
        (b'X : b', 'whitespace between field name and colon'),
        (b'X(y): b', 'invalid field name'),
        (b'NoColon', 'field line without a colon'),
        (b'X: a\x01b', 'invalid byte in field value'),
        (b'X: a\rb', 'bare CR or LF in a field line'),
    ],
)
def test_field_errors_say_which_rule(line, message):
    # The precise reason reaches the debug log of the rejected request.
    with pytest.raises(errors.BadRequest, match=message):
        HeadReader().read(b'GET / HTTP/1.1\r\nHost: a\r\n' + line + b'\r\n\r\n')


def test_forbidden_trailers_are_dropped_not_combined():
    # A repeated Host in a trailer section is dropped with the rest, not a 400.
    assert parse_trailers(b'Host: a\r\nHost: b\r\nX: 1\r\nContent-Length: 9\r\n') == {b'x': b'1'}


def test_fragment_is_named_in_the_error(head_error):
    # Answered 400 rather than routed by the path before the '#' (a 404 then hid the mistake).
    error = head_error(b'GET /page#top HTTP/1.1\r\nHost: a\r\n\r\n')
    assert (error.status, error.message) == (400, 'fragment in the request target')
