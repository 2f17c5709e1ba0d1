"""The PROXY protocol header reader (tremolo.http.proxy_protocol).

Every case is fed whole, one byte at a time, and followed by the first bytes of an HTTP
request, which must be left over in ``reader.rest``.
"""

from __future__ import annotations

import ipaddress
import struct

import pytest

from tremolo.http.proxy_protocol import (
    PP2_TYPE_SSL,
    V2_SIGNATURE,
    ProxyHeader,
    ProxyHeaderReader,
    ProxyProtocolError,
)

from .conftest import TRAILING


def read(data: bytes, mode: str, **limits: int) -> ProxyHeader:
    reader = ProxyHeaderReader(**limits)
    if mode == 'bytewise':
        for i in range(len(data) - 1):
            assert reader.feed(data[i:i + 1]) is None, f'complete after {i + 1} bytes'
        header = reader.feed(data[-1:])
        rest = b''
    else:
        rest = TRAILING if mode == 'trailing' else b''
        header = reader.feed(data + rest)
    assert header is not None, 'a complete header was reported incomplete'
    assert reader.rest == rest
    return header


def read_error(data: bytes, mode: str, **limits: int) -> ProxyProtocolError:
    reader = ProxyHeaderReader(**limits)
    if mode != 'bytewise':
        with pytest.raises(ProxyProtocolError) as info:
            reader.feed(data + (TRAILING if mode == 'trailing' else b''))
        return info.value
    for i in range(len(data)):
        try:
            result = reader.feed(data[i:i + 1])
        except ProxyProtocolError as exc:
            return exc
        assert result is None
    raise AssertionError('a malformed header was never rejected: the connection would hang')


def v2(command: int = 1, family: int = 1, transport: int = 1, addresses: bytes = b'',
       tlvs: bytes = b'', version: int = 2, length: int = -1) -> bytes:
    body = addresses + tlvs
    size = len(body) if length < 0 else length
    return V2_SIGNATURE + bytes([version << 4 | command, family << 4 | transport]) + \
        struct.pack('!H', size) + body


def inet4(src: str, dst: str, sport: int, dport: int) -> bytes:
    return (ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
            + struct.pack('!HH', sport, dport))


def inet6(src: str, dst: str, sport: int, dport: int) -> bytes:
    return (ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed
            + struct.pack('!HH', sport, dport))


def tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + struct.pack('!H', len(value)) + value


# -- version 1 ------------------------------------------------------------------------------------


def test_v1_tcp4(mode):
    header = read(b'PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n', mode)
    assert header == ProxyHeader(1, ('192.0.2.1', 56324), ('198.51.100.2', 443), False, 'TCP4')


def test_v1_tcp6(mode):
    header = read(b'PROXY TCP6 2001:DB8::1 ::1 65535 0\r\n', mode)
    assert header.source == ('2001:db8::1', 65535)
    assert header.destination == ('::1', 0)
    assert header.family == 'TCP6' and not header.local


@pytest.mark.parametrize('line', [b'PROXY UNKNOWN\r\n', b'PROXY UNKNOWN ff::1 ::1 1 2\r\n'])
def test_v1_unknown_uses_the_real_peer(mode, line):
    header = read(line, mode)
    assert header.local and header.source is None and header.destination is None


def test_v1_longest_line(mode):
    # 107 bytes, the most §2.1 allows, reached with the longest TCP6 addresses.
    address = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'
    line = f'PROXY TCP6 {address} {address} 65535 65535\r\n'.encode()
    assert len(line) == 104
    assert read(line, mode).source == (address, 65535)
    padded = b'PROXY UNKNOWN ' + b'x' * (107 - 16) + b'\r\n'
    assert len(padded) == 107
    assert read(padded, mode).local


@pytest.mark.parametrize('data', [
    b'GET / HTTP/1.1\r\n\r\n',
    b'PROXZ TCP4 1.2.3.4 1.2.3.4 1 2\r\n',
    b'proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n',
    b'PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n',
    b'PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n',
    b'PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n',
    b'PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n',
    b'PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n',
    b'PROXY TCP4 ::1 1.2.3.4 1 2\r\n',
    b'PROXY TCP6 1.2.3.4 ::1 1 2\r\n',
    b'PROXY TCP4 1.2.3.256 1.2.3.4 1 2\r\n',
    b'PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n',
    b'PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n',
    b'PROXY TCP4 1.2.3.4 1.2.3.4 -1 2\r\n',
    b'PROXY TCP4 1.2.3.4 1.2.3.4 1 2' + b' ' * 80 + b'\r\n',
    b'PROXY UNKNOWN ' + b'x' * 200,
    b'\r\n\r\n\x00\r\nQUIT\r',
], ids=lambda data: repr(data[:24]))
def test_invalid_headers_are_rejected(mode, data):
    read_error(data, mode)


def test_http_is_rejected_at_its_first_byte():
    with pytest.raises(ProxyProtocolError):
        ProxyHeaderReader().feed(b'G')


# -- version 2 ------------------------------------------------------------------------------------


def test_v2_tcp4(mode):
    header = read(v2(addresses=inet4('192.0.2.1', '198.51.100.2', 56324, 443)), mode)
    assert header == ProxyHeader(2, ('192.0.2.1', 56324), ('198.51.100.2', 443), False, 'TCP4')


def test_v2_tcp6(mode):
    header = read(v2(family=2, addresses=inet6('2001:db8::1', '::1', 1, 8443)), mode)
    assert header.source == ('2001:db8::1', 1)
    assert header.destination == ('::1', 8443)
    assert header.family == 'TCP6'


def test_v2_unix_has_no_address(mode):
    paths = b'/run/client.sock'.ljust(108, b'\0') + b'/run/server.sock'.ljust(108, b'\0')
    header = read(v2(family=3, addresses=paths), mode)
    assert header.family == 'UNIX'
    assert header.source is None and not header.local


def test_v2_local_ignores_the_addresses(mode):
    header = read(v2(command=0, addresses=inet4('10.0.0.1', '10.0.0.2', 1, 2)), mode)
    assert header.local and header.source is None


def test_v2_local_unspec_with_no_address(mode):
    header = read(v2(command=0, family=0, transport=0), mode)
    assert header.local and header.family == 'UNKNOWN'


def test_v2_unspec_skips_whatever_follows(mode):
    header = read(v2(family=0, transport=0, addresses=b'\xff' * 7), mode)
    assert header.local and header.tlvs == ()


def test_v2_tlvs_are_kept_and_ssl_read(mode):
    tlvs = tlv(0x01, b'h2') + tlv(0x04, b'') + tlv(PP2_TYPE_SSL, b'\x01' + b'\0' * 4)
    header = read(v2(addresses=inet4('192.0.2.1', '192.0.2.2', 1, 2), tlvs=tlvs), mode)
    assert header.tlvs == ((0x01, b'h2'), (0x04, b''), (PP2_TYPE_SSL, b'\x01\0\0\0\0'))
    assert header.ssl


def test_v2_ssl_tlv_without_the_client_flag(mode):
    tlvs = tlv(PP2_TYPE_SSL, b'\x00\0\0\0\0')
    header = read(v2(addresses=inet4('192.0.2.1', '192.0.2.2', 1, 2), tlvs=tlvs), mode)
    assert not header.ssl


def test_v2_header_up_to_the_limit(mode):
    tlvs = tlv(0xE0, b'x' * (200 - 16 - 12 - 3))
    data = v2(addresses=inet4('192.0.2.1', '192.0.2.2', 1, 2), tlvs=tlvs)
    assert len(data) == 200
    assert read(data, mode, max_size=200).tlvs[0][0] == 0xE0
    error = read_error(data, mode, max_size=199)
    assert 'above 199' in str(error)


@pytest.mark.parametrize('data', [
    v2(version=1, addresses=inet4('1.2.3.4', '1.2.3.4', 1, 2)),
    v2(command=2, addresses=inet4('1.2.3.4', '1.2.3.4', 1, 2)),
    v2(transport=2, addresses=inet4('1.2.3.4', '1.2.3.4', 1, 2)),
    v2(family=4, addresses=inet4('1.2.3.4', '1.2.3.4', 1, 2)),
    v2(addresses=inet4('1.2.3.4', '1.2.3.4', 1, 2)[:11]),
    v2(family=2, addresses=inet4('1.2.3.4', '1.2.3.4', 1, 2)),
    v2(family=3, addresses=b'/p'.ljust(100, b'\0')),
    v2(addresses=inet4('1.2.3.4', '1.2.3.4', 1, 2), tlvs=b'\x01\x00'),
    v2(addresses=inet4('1.2.3.4', '1.2.3.4', 1, 2), tlvs=tlv(1, b'abc')[:-1]),
    v2(length=65535),
], ids=['version', 'command', 'dgram', 'family', 'short-tcp4', 'short-tcp6', 'short-unix',
        'tlv-cut', 'tlv-too-long', 'too-large'])
def test_invalid_v2_headers_are_rejected(mode, data):
    read_error(data, mode)
