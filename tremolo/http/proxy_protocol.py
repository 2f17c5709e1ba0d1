"""The PROXY protocol header, versions 1 (text) and 2 (binary), as HAProxy's specification
(proxy-protocol.txt) defines them.

A load balancer that relays TCP cannot add HTTP fields, so it sends this header first on each
connection it opens: who the client is and whom it connected to. `ProxyHeaderReader` is fed
the first bytes of a connection until it returns the `ProxyHeader`; what follows the header
(the first bytes of the HTTP request) is left in `ProxyHeaderReader.rest`. Anything that is
not a valid header raises `ProxyProtocolError`: the specification requires the receiver to
close such a connection without answering (§2: "the receiver must ... abort the connection").
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple, Optional

#: §2.2: the 12-byte signature that starts a version 2 header.
V2_SIGNATURE = b'\r\n\r\n\x00\r\nQUIT\n'
_V1_PREFIX = b'PROXY '
# §2.1: a version 1 line is at most 107 bytes, CRLF included.
_V1_MAX = 107
# §2.2: the fixed part of a version 2 header; the length of what follows is in bytes 15-16.
_V2_FIXED = 16
# §2.2.7 (type 0x20): PP2_TYPE_SSL, whose first byte holds PP2_CLIENT_SSL (0x01) when the
# client connected to the proxy over TLS.
PP2_TYPE_SSL = 0x20
_PP2_CLIENT_SSL = 0x01

#: An address as the header gives it: ``(host, port)``.
Address = tuple[str, int]


class ProxyProtocolError(ValueError):
    """A connection that does not start with a valid PROXY protocol header."""


class ProxyHeader(NamedTuple):
    """A parsed PROXY protocol header.

    Attributes:
        version: 1 or 2.
        source: The client's address, or ``None`` when the header gives none (version 1
            ``UNKNOWN``, version 2 ``LOCAL`` or an unspecified family: use the real peer) or
            the client is on a UNIX socket.
        destination: The address the client connected to, or ``None`` likewise.
        local: A connection the proxy opened for itself (a health check): ``LOCAL`` in
            version 2, ``UNKNOWN`` in version 1.
        family: ``'TCP4'``, ``'TCP6'``, ``'UNIX'`` or ``'UNKNOWN'``.
        tlvs: Version 2 type-length-value extensions, ``(type, value)`` in order.
        ssl: Whether the client connected to the proxy over TLS (version 2 ``PP2_TYPE_SSL``).
    """

    version: int
    source: Optional[Address]
    destination: Optional[Address]
    local: bool
    family: str
    tlvs: tuple[tuple[int, bytes], ...] = ()
    ssl: bool = False


class ProxyHeaderReader:
    """Reads the PROXY protocol header at the start of a connection.

    Args:
        max_size: The largest version 2 header accepted, in bytes (the specification lets
            TLVs take up to 64 KiB; a proxy sends a few hundred bytes at most).
    """

    __slots__ = ('max_size', 'rest', '_buffer')

    def __init__(self, max_size: int = 4096) -> None:
        self.max_size = max_size
        #: The bytes that followed the header (set once the header is complete).
        self.rest = b''
        self._buffer = b''

    def feed(self, data: bytes) -> Optional[ProxyHeader]:
        """Add ``data``; return the header once complete, else ``None``.

        Raises:
            ProxyProtocolError: The bytes so far cannot start a valid header.
        """
        buffer = self._buffer = self._buffer + data if self._buffer else data
        if buffer[:1] == b'P':
            return self._v1(buffer)
        if buffer[:1] == b'\r':
            return self._v2(buffer)
        raise ProxyProtocolError('no PROXY protocol header')

    def _v1(self, buffer: bytes) -> Optional[ProxyHeader]:
        if not buffer.startswith(_V1_PREFIX[:len(buffer)]):
            raise ProxyProtocolError('no PROXY protocol header')
        newline = buffer.find(b'\n', 0, _V1_MAX)
        if newline == -1:
            if len(buffer) >= _V1_MAX:
                raise ProxyProtocolError('PROXY v1 line longer than 107 bytes')
            return None
        if buffer[newline - 1] != 13:
            raise ProxyProtocolError('PROXY v1 line not ended by CRLF')
        end = newline - 1
        self.rest = buffer[end + 2:]
        self._buffer = b''
        return parse_v1(buffer[:end])

    def _v2(self, buffer: bytes) -> Optional[ProxyHeader]:
        if not buffer.startswith(V2_SIGNATURE[:len(buffer)]):
            raise ProxyProtocolError('no PROXY protocol header')
        if len(buffer) < _V2_FIXED:
            return None
        size = _V2_FIXED + int.from_bytes(buffer[14:16], 'big')
        if size > self.max_size:
            raise ProxyProtocolError(f'PROXY v2 header of {size} bytes, above {self.max_size}')
        if len(buffer) < size:
            return None
        self.rest = buffer[size:]
        self._buffer = b''
        return parse_v2(buffer[:size])


def parse_v1(line: bytes) -> ProxyHeader:
    """A version 1 line without its CRLF: ``PROXY TCP4 192.0.2.1 192.0.2.2 56324 443``.

    Raises:
        ProxyProtocolError: The line is not valid (§2.1: exactly one space between fields).
    """
    fields = line.split(b' ')
    if fields[:2] == [b'PROXY', b'UNKNOWN']:
        # §2.1: anything may follow UNKNOWN; the receiver ignores it and uses the real peer.
        return ProxyHeader(1, None, None, True, 'UNKNOWN')
    if len(fields) != 6 or fields[0] != b'PROXY' or fields[1] not in (b'TCP4', b'TCP6'):
        raise ProxyProtocolError(f'invalid PROXY v1 line {line[:_V1_MAX]!r}')
    family = fields[1].decode()
    kind = ipaddress.IPv4Address if family == 'TCP4' else ipaddress.IPv6Address
    try:
        source_host = str(kind(fields[2].decode('ascii')))
        destination_host = str(kind(fields[3].decode('ascii')))
    except ValueError:
        raise ProxyProtocolError(f'invalid {family} address in {line!r}') from None
    return ProxyHeader(
        1, (source_host, _v1_port(fields[4])), (destination_host, _v1_port(fields[5])),
        False, family,
    )


def _v1_port(text: bytes) -> int:
    # §2.1: a decimal number in 0..65535 (leading zeros are not allowed).
    if (not text.isdigit() or len(text) > 5 or (len(text) > 1 and text[:1] == b'0')
            or int(text) > 65535):
        raise ProxyProtocolError(f'invalid port {text!r}')
    return int(text)


def parse_v2(header: bytes) -> ProxyHeader:
    """A whole version 2 header, signature included.

    Raises:
        ProxyProtocolError: An unknown version or command, a transport other than a stream,
            an address block or a TLV that does not fit in the announced length.
    """
    version, command = header[12] >> 4, header[12] & 0x0F
    if version != 2:
        raise ProxyProtocolError(f'PROXY v2 header with version {version}')
    if command > 1:
        raise ProxyProtocolError(f'PROXY v2 header with unknown command {command}')
    family, transport = header[13] >> 4, header[13] & 0x0F
    if transport not in (0, 1) or family > 3:
        # §2.2: only UNSPEC or STREAM make sense for an HTTP connection.
        raise ProxyProtocolError(f'PROXY v2 header with family/transport 0x{header[13]:02x}')
    body = memoryview(header)[_V2_FIXED:]
    source = destination = None
    name = 'UNKNOWN'
    if family == 1:  # AF_INET: 4 + 4 address bytes, 2 + 2 port bytes
        size, name = 12, 'TCP4'
        if len(body) < size:
            raise ProxyProtocolError('PROXY v2 TCP4 address block too short')
        source = (str(ipaddress.IPv4Address(bytes(body[0:4]))), _u16(body, 8))
        destination = (str(ipaddress.IPv4Address(bytes(body[4:8]))), _u16(body, 10))
    elif family == 2:  # AF_INET6: 16 + 16 address bytes, 2 + 2 port bytes
        size, name = 36, 'TCP6'
        if len(body) < size:
            raise ProxyProtocolError('PROXY v2 TCP6 address block too short')
        source = (str(ipaddress.IPv6Address(bytes(body[0:16]))), _u16(body, 32))
        destination = (str(ipaddress.IPv6Address(bytes(body[16:32]))), _u16(body, 34))
    elif family == 3:  # AF_UNIX: two 108-byte paths; a UNIX peer has no address here
        size, name = 216, 'UNIX'
        if len(body) < size:
            raise ProxyProtocolError('PROXY v2 UNIX address block too short')
    else:  # AF_UNSPEC: the receiver ignores whatever the block holds
        size = len(body)
    # §2.2: with LOCAL, or an unspecified family, the receiver ignores the addresses and uses
    # the real connection endpoints.
    local = command == 0 or family == 0
    if local:
        source = destination = None
    tlvs = _tlvs(body[size:])
    ssl = any(kind == PP2_TYPE_SSL and value[:1] and value[0] & _PP2_CLIENT_SSL
              for kind, value in tlvs)
    return ProxyHeader(2, source, destination, local, name, tlvs, bool(ssl))


def _u16(body: memoryview, at: int) -> int:
    return (body[at] << 8) | body[at + 1]


def _tlvs(block: memoryview) -> tuple[tuple[int, bytes], ...]:
    # §2.2.7: type (1 byte), length (2 bytes, big-endian), value. Each one must fit in the
    # header; the values are copied, never interpreted beyond PP2_TYPE_SSL.
    result = []
    at = 0
    end = len(block)
    while at < end:
        if end - at < 3:
            raise ProxyProtocolError('PROXY v2 TLV header cut short')
        length = _u16(block, at + 1)
        if at + 3 + length > end:
            raise ProxyProtocolError('PROXY v2 TLV longer than the header')
        result.append((block[at], bytes(block[at + 3:at + 3 + length])))
        at += 3 + length
    return tuple(result)
