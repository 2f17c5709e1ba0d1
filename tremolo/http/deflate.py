"""The permessage-deflate extension (RFC 7692): negotiation, compression and bounded
decompression of WebSocket messages, sans-IO.

A compressed message is the raw DEFLATE data of its payload with the final four bytes of a
sync flush (``00 00 ff ff``) removed (§7.2.1); the receiver appends them back (§7.2.2).
Decompression never produces more than the room left under the message size limit: a small
frame that would inflate to gigabytes (a zip bomb) is refused after at most the limit.
"""

from __future__ import annotations

import re
import zlib
from typing import Any, Optional

_TAIL = b'\x00\x00\xff\xff'
_PARAMETERS = ('server_no_context_takeover', 'client_no_context_takeover',
               'server_max_window_bits', 'client_max_window_bits')
# RFC 6455 §9.1 / RFC 7230 tokens, and the quoted-string form a parameter value may take.
_EXTENSION = re.compile(r"\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)\s*(?:=\s*(\"[^\"]*\"|[^;,\s]+))?\s*")
_WINDOW_BITS = re.compile(r'(?:[89]|1[0-5])')  # §7.1.2: 8 to 15, no leading zero


class Inflater:
    """Decompresses the messages a peer sends.

    Args:
        no_context_takeover: Whether the peer resets its compressor after each message
            (then so can we, which frees the window between messages).
    """

    __slots__ = ('no_context_takeover', '_inflate')

    def __init__(self, no_context_takeover: bool = False) -> None:
        self.no_context_takeover = no_context_takeover
        # A window of 15 bits decodes data compressed with any smaller window.
        self._inflate = zlib.decompressobj(-15)

    def inflate(self, data: bytes, last: bool, room: int) -> Optional[bytes]:
        """Decompress one piece of a message; ``last`` marks its final piece.

        Returns:
            The decompressed bytes, or ``None`` when they would exceed ``room`` bytes.

        Raises:
            ValueError: The data is not valid DEFLATE data.
        """
        inflate = self._inflate
        try:
            # max_length=room + 1: one byte beyond the room proves the message too big
            # without inflating any further (0 would mean "no limit").
            out = inflate.decompress(data, room + 1) if data else b''
            if len(out) > room:
                return None
            if last:
                out += inflate.decompress(_TAIL, room - len(out) + 1)
                if len(out) > room:
                    return None
                if self.no_context_takeover:
                    self._inflate = zlib.decompressobj(-15)
        except zlib.error as exc:
            raise ValueError(f'invalid compressed data: {exc}') from None
        return out


class Deflater:
    """Compresses the messages sent to a peer.

    Args:
        no_context_takeover: Whether to reset the compressor after each message (the peer
            asked for ``server_no_context_takeover``).
        window_bits: The LZ77 window, at most what the peer allows (9 to 15).
        level: The zlib compression level.
    """

    __slots__ = ('no_context_takeover', 'window_bits', 'level', '_deflate')

    def __init__(self, no_context_takeover: bool = False, window_bits: int = 15,
                 level: int = 6) -> None:
        self.no_context_takeover = no_context_takeover
        self.window_bits = window_bits
        self.level = level
        self._deflate = self._new()

    def _new(self) -> Any:
        return zlib.compressobj(self.level, zlib.DEFLATED, -self.window_bits)

    def deflate(self, data: bytes, last: bool = True) -> bytes:
        """Compress one piece of a message; ``last`` marks its final piece.

        Every piece ends with a sync flush so that the peer can decompress it on arrival; the
        flush marker is removed from the final piece only (RFC 7692 §7.2.1).
        """
        out: bytes = self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        if last:
            if out.endswith(_TAIL):
                out = out[:-4]
            if self.no_context_takeover:
                self._deflate = self._new()
        return out


def parse_extensions(value: str) -> list[tuple[str, dict[str, Optional[str]]]]:
    """Parse a ``Sec-WebSocket-Extensions`` value (RFC 6455 §9.1) into ``(name, params)``
    pairs in order; a repeated parameter name makes the value ``'\\x00'`` (invalid).

    Raises:
        ValueError: The value does not follow the grammar.
    """
    offers: list[tuple[str, dict[str, Optional[str]]]] = []
    for item in value.split(','):
        if not item.strip():
            continue
        parts = item.split(';')
        match = _EXTENSION.fullmatch(parts[0])
        if match is None or match.group(2) is not None:
            raise ValueError(f'malformed extension: {item.strip()!r}')
        params: dict[str, Optional[str]] = {}
        for part in parts[1:]:
            match = _EXTENSION.fullmatch(part)
            if match is None:
                raise ValueError(f'malformed extension parameter: {part.strip()!r}')
            key, raw = match.group(1).lower(), match.group(2)
            if raw is not None and raw.startswith('"'):
                raw = raw[1:-1]
            params[key] = '\x00' if key in params else raw
        offers.append((parts[0].strip().lower(), params))
    return offers


class DeflateParameters:
    """What was agreed for permessage-deflate on one connection.

    Attributes:
        response: The ``Sec-WebSocket-Extensions`` value to answer with.
        server_no_context_takeover: We reset our compressor after each message.
        client_no_context_takeover: The client resets its compressor after each message.
        server_max_window_bits: The largest window we may compress with.
    """

    __slots__ = ('response', 'server_no_context_takeover', 'client_no_context_takeover',
                 'server_max_window_bits')

    def __init__(self, response: str, server_no_context_takeover: bool,
                 client_no_context_takeover: bool, server_max_window_bits: int) -> None:
        self.response = response
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits

    def deflater(self, level: int = 6) -> Deflater:
        return Deflater(self.server_no_context_takeover, self.server_max_window_bits, level)

    def inflater(self) -> Inflater:
        return Inflater(self.client_no_context_takeover)


def negotiate(value: str) -> Optional[DeflateParameters]:
    """Accept the first acceptable permessage-deflate offer of a client's
    ``Sec-WebSocket-Extensions`` value, or ``None`` (the connection is then uncompressed).

    An offer with an unknown or repeated parameter, or an invalid value, is declined
    (RFC 7692 §5). ``server_max_window_bits=8`` is declined too: zlib cannot produce raw
    DEFLATE data with a 256-byte window.
    """
    try:
        offers = parse_extensions(value)
    except ValueError:
        return None
    for name, params in offers:
        if name != 'permessage-deflate':
            continue
        if any(key not in _PARAMETERS or value == '\x00' for key, value in params.items()):
            continue
        if 'server_no_context_takeover' in params and params['server_no_context_takeover']:
            continue
        if 'client_no_context_takeover' in params and params['client_no_context_takeover']:
            continue
        window = params.get('server_max_window_bits', '15')
        if window is None or not _WINDOW_BITS.fullmatch(window) or window == '8':
            continue
        client_window = params.get('client_max_window_bits')
        if client_window is not None and not _WINDOW_BITS.fullmatch(client_window):
            continue
        response = ['permessage-deflate']
        server_reset = 'server_no_context_takeover' in params
        client_reset = 'client_no_context_takeover' in params
        if server_reset:
            response.append('server_no_context_takeover')
        if client_reset:
            response.append('client_no_context_takeover')
        if 'server_max_window_bits' in params:
            response.append(f'server_max_window_bits={window}')
        # client_max_window_bits is left out of the answer: we inflate with the largest
        # window, which reads whatever window the client compresses with (§7.1.2.2).
        return DeflateParameters('; '.join(response), server_reset, client_reset, int(window))
    return None
