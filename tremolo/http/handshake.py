"""The WebSocket opening handshake (RFC 6455 §4.2), sans-IO: what makes a request a WebSocket
request, what makes it a valid one, and the values of the answer."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from typing import Optional

#: RFC 6455 §1.3: appended to the client's key before hashing.
GUID = b'258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
#: The only version of the protocol (RFC 6455 §4.1); also the value sent with a 426.
VERSION = '13'
#: Headers of the answer to a request for another version, or one without an upgrade.
UPGRADE_HEADERS = (('Upgrade', 'websocket'), ('Connection', 'Upgrade'),
                   ('Sec-WebSocket-Version', VERSION))


class HandshakeError(Exception):
    """A handshake that must be refused with `status` (and `headers`).

    Attributes:
        status: 400 for a malformed handshake, 426 for a version other than 13.
        message: What was wrong, for the log and the response body.
        headers: Headers for the refusal.
    """

    def __init__(self, status: int, message: str,
                 headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def tokens(value: Optional[bytes]) -> list[bytes]:
    """The comma-separated elements of a field value, trimmed and lower-cased
    (RFC 9110 §5.6.1: empty elements are ignored)."""
    if not value:
        return []
    return [item for item in (part.strip(b' \t').lower() for part in value.split(b',')) if item]


def is_websocket_request(version: str, headers: dict[bytes, bytes]) -> bool:
    """Whether a request asks to switch to WebSocket: its ``Upgrade`` lists ``websocket``.

    An HTTP/1.0 request never does: a server MUST ignore ``Upgrade`` there (RFC 9110 §7.8).
    """
    if version == '1.0':
        return False
    upgrade = headers.get(b'upgrade')
    if upgrade is None:
        return False
    # "websocket/13" would be a protocol version: RFC 6455 §4.1 names the plain token.
    return b'websocket' in tokens(upgrade)


def check_request(method: str, headers: dict[bytes, bytes], has_body: bool) -> str:
    """Validate the handshake of a WebSocket request (RFC 6455 §4.2.1); return its key.

    Raises:
        HandshakeError: 400 for a method other than GET, a body, a ``Connection`` without
            ``upgrade`` or a missing or malformed ``Sec-WebSocket-Key``; 426 (with
            ``Sec-WebSocket-Version: 13``) for a missing or other version.
    """
    if method != 'GET':
        raise HandshakeError(400, 'a WebSocket handshake is a GET request')
    if has_body:
        raise HandshakeError(400, 'a WebSocket handshake has no body')
    if b'upgrade' not in tokens(headers.get(b'connection')):
        raise HandshakeError(400, 'the Connection header does not list "upgrade"')
    version = headers.get(b'sec-websocket-version')
    if version is None or version.strip(b' \t') != VERSION.encode():
        # §4.4: refuse with the versions we speak, so the client can retry with one.
        raise HandshakeError(426, 'unsupported WebSocket version (13 is supported)',
                             UPGRADE_HEADERS)
    key = headers.get(b'sec-websocket-key', b'').strip(b' \t')
    # §4.1: a base64-encoded 16-byte value, so 24 characters (repeated keys, joined by the
    # parser with ", ", fail here as they should).
    try:
        valid = len(key) == 24 and len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        raise HandshakeError(400, 'missing or malformed Sec-WebSocket-Key')
    return key.decode('ascii')


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value for a client's key (RFC 6455 §4.2.2, step 5.4)."""
    digest = hashlib.sha1(key.encode('ascii') + GUID).digest()
    return base64.b64encode(digest).decode('ascii')


def subprotocols(headers: dict[bytes, bytes]) -> list[str]:
    """The subprotocols the client offers, in its order of preference (case is kept:
    subprotocol names are compared exactly, RFC 6455 §11.3.4)."""
    value = headers.get(b'sec-websocket-protocol')
    if not value:
        return []
    items = (part.strip(' \t') for part in value.decode('latin-1').split(','))
    return [item for item in items if item]


def select_subprotocol(offered: Iterable[str], supported: Iterable[str]) -> Optional[str]:
    """The first of ``supported`` (the server's order of preference) that the client offered."""
    offered = list(offered)
    for name in supported:
        if name in offered:
            return name
    return None
