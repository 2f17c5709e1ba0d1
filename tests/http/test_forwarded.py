"""Forwarding fields of trusted proxies (tremolo.http.forwarded): RFC 7239 ``Forwarded``,
``X-Forwarded-For`` / ``-Proto`` / ``-Host``, and the walk that keeps clients from spoofing.
"""

from __future__ import annotations

import pytest

from tremolo.http.forwarded import (
    Forwarding,
    MalformedForwarding,
    TrustedProxies,
    parse_forwarded,
    parse_node,
    parse_x_forwarded_for,
    resolve,
)

# -- Forwarded grammar (RFC 7239 §4, examples of §4 and §7) ---------------------------------------


@pytest.mark.parametrize('value, elements', [
    ('for="_gazonk"', [{'for': '_gazonk'}]),
    ('For="[2001:db8:cafe::17]:4711"', [{'for': '[2001:db8:cafe::17]:4711'}]),
    ('for=192.0.2.60;proto=http;by=203.0.113.43',
     [{'for': '192.0.2.60', 'proto': 'http', 'by': '203.0.113.43'}]),
    ('for=192.0.2.43, for=198.51.100.17', [{'for': '192.0.2.43'}, {'for': '198.51.100.17'}]),
    # Several fields, as the head reader joins them.
    ('for=192.0.2.43, for="[2001:db8::1]";proto=https, for=unknown',
     [{'for': '192.0.2.43'}, {'for': '[2001:db8::1]', 'proto': 'https'}, {'for': 'unknown'}]),
    # Quoted strings may hold the list and pair separators, and quoted pairs.
    ('for="_a,b;c";host="x\\"y"', [{'for': '_a,b;c', 'host': 'x"y'}]),
    # Empty pairs and elements, whitespace around the separators.
    ('for=192.0.2.1 ; ;proto=https , , for=192.0.2.2;', [
        {'for': '192.0.2.1', 'proto': 'https'}, {'for': '192.0.2.2'}]),
    ('', []),
])
def test_parse_forwarded(value, elements):
    assert parse_forwarded(value) == elements


@pytest.mark.parametrize('value', [
    'for', 'for=', '=x', 'for="unterminated', 'for=a b', 'for=1.2.3.4;for=1.2.3.5',
    'for=[::1]', 'for=1.2.3.4 proto=http', 'for="a"b', 'for=a@b', 'for="\x01"',
])
def test_malformed_forwarded(value):
    with pytest.raises(MalformedForwarding):
        parse_forwarded(value)


@pytest.mark.parametrize('value, node', [
    ('192.0.2.43', ('192.0.2.43', 0)),
    ('192.0.2.43:8080', ('192.0.2.43', 8080)),
    ('[2001:DB8:cafe::17]:4711', ('2001:db8:cafe::17', 4711)),
    ('[::1]', ('::1', 0)),
    ('unknown', ('unknown', 0)),
    ('_gazonk', ('_gazonk', 0)),
    ('192.0.2.43:_port9', ('192.0.2.43', 0)),
    ('[2001:db8::1]:_p', ('2001:db8::1', 0)),
])
def test_parse_node(value, node):
    assert parse_node(value) == node


@pytest.mark.parametrize('value', [
    '2001:db8::1', '[2001:db8::1', '[2001:db8::1]x', '[1.2.3.4]', '192.0.2.300', 'example.com',
    '192.0.2.1:65536', '192.0.2.1:', '192.0.2.1:-1', '192.0.2.1:123456', '_', 'unknown:port',
])
def test_malformed_node(value):
    with pytest.raises(MalformedForwarding):
        parse_node(value)


def test_parse_x_forwarded_for():
    assert parse_x_forwarded_for('203.0.113.7, 2001:db8::1,[2001:db8::2]:81 ,, 10.0.0.1:80') == [
        ('203.0.113.7', 0), ('2001:db8::1', 0), ('2001:db8::2', 81), ('10.0.0.1', 80)]
    assert parse_x_forwarded_for('') == []


@pytest.mark.parametrize('value', ['unknown', '_hidden', 'example.com', '1.2.3.4 5.6.7.8', ':::'])
def test_malformed_x_forwarded_for(value):
    with pytest.raises(MalformedForwarding):
        parse_x_forwarded_for(value)


# -- trusted proxies ------------------------------------------------------------------------------


def test_trusted_addresses_and_networks():
    trusted = TrustedProxies(['127.0.0.1', ' 10.0.0.0/8', '2001:db8::/32', '::1', '_edge'])
    for host in ('127.0.0.1', '10.1.2.3', '::ffff:10.1.2.3', '::ffff:127.0.0.1', '2001:db8::5',
                 '::1', '0:0:0:0:0:0:0:1', '2001:db8::5%eth0', '_edge'):
        assert trusted.trusts(host), host
    for host in ('127.0.0.2', '11.0.0.1', '2001:db9::1', 'unknown', '_other', 'not an ip', None):
        assert not trusted.trusts(host), host
    assert trusted


def test_trust_everyone_and_unix():
    assert TrustedProxies(['*']).trusts('203.0.113.1')
    assert TrustedProxies(['*']).trusts(None)
    unix = TrustedProxies(['unix'])
    assert unix.trusts(None) and not unix.trusts('127.0.0.1')
    assert not TrustedProxies([])


@pytest.mark.parametrize('entry', ['localhost', '10.0.0.0/33', '1.2.3', '', 'unix:/x'])
def test_invalid_entries(entry):
    with pytest.raises(ValueError, match='trusted_proxies'):
        TrustedProxies([entry])


def test_invalid_mode():
    with pytest.raises(ValueError, match='forwarded_headers'):
        TrustedProxies(['*'], 'both')


# -- the walk from the right ----------------------------------------------------------------------

PEER = ('127.0.0.1', 50000)
LOCAL = TrustedProxies(['127.0.0.1', '10.0.0.0/8'])


def walk(headers: dict[str, str], trusted: TrustedProxies = LOCAL, peer=PEER,
         scheme: str = 'http') -> Forwarding:
    fields = {name.lower().encode(): value.encode('latin-1') for name, value in headers.items()}
    return resolve(peer, scheme, fields, trusted)


def test_x_forwarded_for_names_the_client():
    assert walk({'X-Forwarded-For': '203.0.113.7'}) == (('203.0.113.7', 0), 'http', None)


def test_a_client_cannot_spoof_by_prepending():
    # The client sent "X-Forwarded-For: 10.0.0.9, 1.1.1.1"; its proxy appended its address.
    forwarded = walk({'X-Forwarded-For': '10.0.0.9, 1.1.1.1, 203.0.113.7'})
    assert forwarded.client == ('203.0.113.7', 0)


def test_trusted_hops_are_skipped():
    forwarded = walk({'X-Forwarded-For': '198.51.100.1, 203.0.113.7, 10.0.0.2, 10.0.0.3'})
    assert forwarded.client == ('203.0.113.7', 0)


def test_every_hop_trusted_gives_the_leftmost():
    assert walk({'X-Forwarded-For': '10.0.0.1, 10.0.0.2'}).client == ('10.0.0.1', 0)


def test_proto_and_host_line_up_with_the_addresses():
    forwarded = walk({
        'X-Forwarded-For': '203.0.113.7, 10.0.0.2',
        'X-Forwarded-Proto': 'HTTPS, http',
        'X-Forwarded-Host': 'example.com, internal:8080',
    })
    assert forwarded == (('203.0.113.7', 0), 'https', 'example.com')


def test_proto_of_the_nearest_proxy_when_lists_differ():
    forwarded = walk({'X-Forwarded-For': '203.0.113.7, 10.0.0.2', 'X-Forwarded-Proto': 'https'})
    assert forwarded.scheme == 'https'


def test_x_forwarded_proto_alone_keeps_the_peer():
    assert walk({'X-Forwarded-Proto': 'https'}) == (PEER, 'https', None)


def test_forwarded_walk():
    forwarded = walk({'Forwarded': 'for=10.0.0.9;proto=http, for="[2001:db8::7]:4711";'
                                   'proto=https;host=example.com, for=10.0.0.2;proto=http'})
    assert forwarded == (('2001:db8::7', 4711), 'https', 'example.com')


def test_forwarded_obfuscated_and_unknown_clients():
    assert walk({'Forwarded': 'for=_hidden'}).client == ('_hidden', 0)
    assert walk({'Forwarded': 'for=unknown;proto=https'}) == (('unknown', 0), 'https', None)


def test_forwarded_obfuscated_trusted_proxy():
    trusted = TrustedProxies(['127.0.0.1', '_edge'])
    assert walk({'Forwarded': 'for=203.0.113.7, for=_edge'}, trusted).client == (
        '203.0.113.7', 0)


def test_forwarded_element_without_for_stops_the_walk():
    forwarded = walk({'Forwarded': 'for=203.0.113.7, proto=https'})
    assert forwarded == (PEER, 'https', None)


def test_precedence_auto_prefers_x_forwarded():
    headers = {'Forwarded': 'for=198.51.100.66;proto=https', 'X-Forwarded-For': '203.0.113.7'}
    assert walk(headers).client == ('203.0.113.7', 0)
    only_forwarded = TrustedProxies(['127.0.0.1'], 'forwarded')
    assert walk(headers, only_forwarded) == (('198.51.100.66', 0), 'https', None)
    only_x = TrustedProxies(['127.0.0.1'], 'x-forwarded')
    assert walk({'Forwarded': 'for=198.51.100.66'}, only_x).client == PEER


def test_unix_peer():
    trusted = TrustedProxies(['unix'])
    assert walk({'X-Forwarded-For': '203.0.113.7'}, trusted, peer=None).client == (
        '203.0.113.7', 0)
    assert walk({}, trusted, peer=None) == (None, 'http', None)


def test_tls_scheme_is_kept_without_proto():
    assert walk({'X-Forwarded-For': '203.0.113.7'}, scheme='https').scheme == 'https'


@pytest.mark.parametrize('headers', [
    {'X-Forwarded-For': '203.0.113.7, nonsense'},
    {'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Proto': 'ht tp'},
    {'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Proto': '1http'},
    {'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Host': 'a/b'},
    {'Forwarded': 'for=203.0.113.7;proto="https:"'},
    {'Forwarded': 'for=203.0.113.7;host="a b"'},
    {'Forwarded': 'for="2001:db8::1"'},
    {'Forwarded': 'for=203.0.113.7;;proto'},
])
def test_malformed_fields_raise(headers):
    with pytest.raises(MalformedForwarding):
        walk(headers)
