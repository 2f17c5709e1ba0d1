"""The WebSocket opening handshake (RFC 6455 §4.2) and the permessage-deflate negotiation
(RFC 7692 §5, §7), sans-IO."""

from __future__ import annotations

import pytest

from tremolo.http.deflate import negotiate, parse_extensions
from tremolo.http.handshake import (
    HandshakeError,
    accept_key,
    check_request,
    is_websocket_request,
    select_subprotocol,
    subprotocols,
    tokens,
)

KEY = b'dGhlIHNhbXBsZSBub25jZQ=='


def headers(**fields: str) -> dict[bytes, bytes]:
    base = {b'host': b'example.com', b'upgrade': b'websocket', b'connection': b'Upgrade',
            b'sec-websocket-version': b'13', b'sec-websocket-key': KEY}
    for name, value in fields.items():
        key = name.replace('_', '-').encode()
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value.encode()
    return base


def test_accept_key_rfc_example():
    # RFC 6455 §1.3.
    assert accept_key('dGhlIHNhbXBsZSBub25jZQ==') == 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='


def test_valid_handshake():
    assert check_request('GET', headers(), False) == KEY.decode()


@pytest.mark.parametrize('upgrade,connection', [
    ('websocket', 'Upgrade'),
    ('WebSocket', 'keep-alive, Upgrade'),
    ('h2c, websocket', 'upgrade,keep-alive'),
    (' websocket ', 'Keep-Alive ,  UPGRADE'),
])
def test_token_lists_are_case_insensitive(upgrade, connection):
    fields = headers(upgrade=upgrade, connection=connection)
    assert is_websocket_request('1.1', fields)
    assert check_request('GET', fields, False) == KEY.decode()


def test_what_is_a_websocket_request():
    assert not is_websocket_request('1.1', headers(upgrade=None))
    assert not is_websocket_request('1.1', headers(upgrade='h2c'))
    assert not is_websocket_request('1.1', headers(upgrade='websocketx'))
    # RFC 9110 §7.8: Upgrade is ignored in HTTP/1.0.
    assert not is_websocket_request('1.0', headers())


@pytest.mark.parametrize('method,fields,body,status', [
    ('POST', {}, False, 400),
    ('GET', {}, True, 400),
    ('GET', {'connection': 'keep-alive'}, False, 400),
    ('GET', {'connection': None}, False, 400),
    ('GET', {'connection': 'upgrades'}, False, 400),
    ('GET', {'sec_websocket_version': None}, False, 426),
    ('GET', {'sec_websocket_version': '8'}, False, 426),
    ('GET', {'sec_websocket_version': '13, 8'}, False, 426),
    ('GET', {'sec_websocket_key': None}, False, 400),
    ('GET', {'sec_websocket_key': ''}, False, 400),
    ('GET', {'sec_websocket_key': 'dGhlIHNhbXBsZSBub25jZQ'}, False, 400),  # unpadded
    ('GET', {'sec_websocket_key': 'dGhlIHNhbXBsZSBub25jZQ==='}, False, 400),
    ('GET', {'sec_websocket_key': 'dGhlIHNhbXBsZSBub25j'}, False, 400),  # 15 bytes
    ('GET', {'sec_websocket_key': 'AAAAAAAAAAAAAAAAAAAAAAAAAA=='}, False, 400),  # 19 bytes
    ('GET', {'sec_websocket_key': 'dGhlIHNhbXBsZSBub25jZ!=='}, False, 400),  # not base64
    ('GET', {'sec_websocket_key': f'{KEY.decode()}, {KEY.decode()}'}, False, 400),  # repeated
])
def test_bad_handshakes(method, fields, body, status):
    with pytest.raises(HandshakeError) as info:
        check_request(method, headers(**fields), body)
    assert info.value.status == status
    if status == 426:
        assert ('Sec-WebSocket-Version', '13') in info.value.headers


def test_tokens():
    assert tokens(None) == []
    assert tokens(b' a , ,B,') == [b'a', b'b']


def test_subprotocols():
    assert subprotocols(headers(sec_websocket_protocol='chat.v2, Chat.v1 ,,')) == [
        'chat.v2', 'Chat.v1']
    assert subprotocols(headers()) == []
    assert select_subprotocol(['a', 'b'], ['b', 'a']) == 'b'
    assert select_subprotocol(['a'], ['A']) is None  # names are case-sensitive
    assert select_subprotocol([], ['a']) is None


# -- permessage-deflate ------------------------------------------------------------------------

def test_parse_extensions():
    assert parse_extensions('permessage-deflate; client_max_window_bits, foo; a="1"; b') == [
        ('permessage-deflate', {'client_max_window_bits': None}),
        ('foo', {'a': '1', 'b': None}),
    ]
    with pytest.raises(ValueError):
        parse_extensions('a b')
    with pytest.raises(ValueError):
        parse_extensions('a=1')


@pytest.mark.parametrize('offer,response', [
    ('permessage-deflate', 'permessage-deflate'),
    ('permessage-deflate; client_max_window_bits', 'permessage-deflate'),
    ('Permessage-Deflate; Client_Max_Window_Bits=10', 'permessage-deflate'),
    ('permessage-deflate; server_no_context_takeover',
     'permessage-deflate; server_no_context_takeover'),
    ('permessage-deflate; client_no_context_takeover',
     'permessage-deflate; client_no_context_takeover'),
    ('permessage-deflate; server_max_window_bits=10',
     'permessage-deflate; server_max_window_bits=10'),
    ('permessage-deflate; server_max_window_bits="12"',
     'permessage-deflate; server_max_window_bits=12'),
    # Offers that must be declined are skipped for the next one (RFC 7692 §5).
    ('permessage-deflate; server_max_window_bits=8, permessage-deflate',
     'permessage-deflate'),
    ('permessage-deflate; unknown=1, permessage-deflate; client_no_context_takeover',
     'permessage-deflate; client_no_context_takeover'),
    ('x-webkit-deflate-frame, permessage-deflate', 'permessage-deflate'),
])
def test_negotiation(offer, response):
    agreed = negotiate(offer)
    assert agreed is not None and agreed.response == response


@pytest.mark.parametrize('offer', [
    'x-webkit-deflate-frame',
    'permessage-deflate; server_max_window_bits',  # a value is required in an offer
    'permessage-deflate; server_max_window_bits=16',
    'permessage-deflate; server_max_window_bits=7',
    'permessage-deflate; server_max_window_bits=010',
    'permessage-deflate; server_max_window_bits=8',
    'permessage-deflate; client_max_window_bits=16',
    'permessage-deflate; server_no_context_takeover=1',
    'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
    'permessage-deflate; foo',
    'permessage-deflate; =',
    '',
])
def test_declined_offers(offer):
    assert negotiate(offer) is None


def test_negotiated_parameters_drive_the_codecs():
    agreed = negotiate('permessage-deflate; server_no_context_takeover; '
                       'client_no_context_takeover; server_max_window_bits=9')
    assert agreed is not None
    deflater, inflater = agreed.deflater(), agreed.inflater()
    assert deflater.no_context_takeover and deflater.window_bits == 9
    assert inflater.no_context_takeover
    assert inflater.inflate(deflater.deflate(b'x' * 1000), True, 1000) == b'x' * 1000
