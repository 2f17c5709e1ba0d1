"""Request body decoders for the two framings of RFC 9112 §6: Content-Length and chunked.

Both take whatever bytes arrived and return the body data found in them; a decoder that has
seen the end of its body sets `done` and keeps the bytes that followed in `rest`
(the start of a pipelined request). Data may be split anywhere across calls.
"""

from __future__ import annotations

import re

from .errors import BadRequest, HeaderFieldsTooLarge
from .head import parse_trailers

_EMPTY = b''


class ContentLengthDecoder:
    """Passes through exactly ``length`` bytes."""

    __slots__ = ('remaining', 'done', 'rest', 'trailers')

    def __init__(self, length: int) -> None:
        self.remaining = length
        self.done = length == 0
        self.rest = _EMPTY
        self.trailers: dict[bytes, bytes] = {}

    def feed(self, data: bytes) -> list[bytes]:
        """Consume ``data``; return the body bytes it holds (possibly none)."""
        if self.done:
            # Bytes fed after the end accumulate in ``rest`` (as ChunkedDecoder does) instead of
            # replacing what an earlier call left there.
            self.rest += data
            return []
        remaining = self.remaining
        size = len(data)
        if size < remaining:
            self.remaining = remaining - size
            return [data] if size else []
        self.remaining = 0
        self.done = True
        if size == remaining:
            return [data]
        self.rest = data[remaining:]
        return [data[:remaining]]


# RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF, chunk-size = 1*HEXDIG (no sign, no
# "0x"), and §7.1.1: chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ). Extensions
# are accepted and ignored, but only in their grammar's bytes. Whitespace is allowed only where
# BWS is, around ';' and '=': "5 ;a=b" is valid, "5 " or "5;a=b " is not. Accepting whitespace
# after a bare size is a leniency some parsers have and others not, which is exactly the kind
# of disagreement between two hops that request smuggling feeds on; the grammar is the only
# rule every hop can agree on.
_CHUNK_SIZE_LINE = re.compile(
    rb'([0-9A-Fa-f]+)(?:[\t ]*;[\t ]*[!#$%&\'*+\-.^_`|~0-9A-Za-z]+'
    rb'(?:[\t ]*=[\t ]*(?:[!#$%&\'*+\-.^_`|~0-9A-Za-z]+|"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e'
    rb'\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"))?)*'
)
# 16 hex digits (leading zeros aside) already exceed any size a peer could mean (2**64 - 1);
# more is an overflow attempt on a peer that parses into a fixed-size integer.
_MAX_SIZE_DIGITS = 16

_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


class ChunkedDecoder:
    """Decodes the chunked transfer coding (RFC 9112 §7.1) incrementally.

    Args:
        max_line: Longest chunk-size line (with extensions) accepted, in bytes.
        max_trailer_size: Largest trailer section accepted, in bytes (431 above it).
        max_trailer_count: Most trailer fields accepted (431 above it).
    """

    __slots__ = (
        'max_line', 'max_trailer_size', 'max_trailer_count', 'done', 'rest', 'trailers',
        '_state', '_remaining', '_pending',
    )

    def __init__(self, max_line: int = 4096, max_trailer_size: int = 16384,
                 max_trailer_count: int = 100) -> None:
        self.max_line = max_line
        self.max_trailer_size = max_trailer_size
        self.max_trailer_count = max_trailer_count
        self.done = False
        self.rest = _EMPTY
        self.trailers: dict[bytes, bytes] = {}
        self._state = _SIZE
        self._remaining = 0
        self._pending = _EMPTY  # an incomplete line carried over to the next feed

    def feed(self, data: bytes) -> list[bytes]:
        """Consume ``data``; return the decoded body pieces it holds (possibly none)."""
        if self._pending:
            data = self._pending + data
            self._pending = _EMPTY
        out: list[bytes] = []
        pos = 0
        size = len(data)
        while pos < size:
            state = self._state
            if state == _DATA:
                end = pos + self._remaining
                if end >= size:
                    out.append(data[pos:] if pos else data)
                    self._remaining = end - size
                    if not self._remaining:
                        self._state = _DATA_END
                    return out
                out.append(data[pos:end])
                self._remaining = 0
                self._state = _DATA_END
                pos = end
            elif state == _SIZE:
                line_end = data.find(b'\r\n', pos, pos + self.max_line + 2)
                if line_end == -1:
                    self._keep_partial(data, pos, self.max_line)
                    return out
                self._remaining = self._parse_size(data[pos:line_end])
                pos = line_end + 2
                self._state = _DATA if self._remaining else _TRAILER
            elif state == _DATA_END:
                if size - pos < 2:
                    if data[pos:] != b'\r':
                        raise BadRequest('chunk data not followed by CRLF')
                    self._pending = b'\r'
                    return out
                if data[pos:pos + 2] != b'\r\n':
                    raise BadRequest('chunk data not followed by CRLF')
                pos += 2
                self._state = _SIZE
            elif state == _TRAILER:
                if data.startswith(b'\r\n', pos):
                    # No trailer fields: the chunked body ends right here.
                    return self._finish(out, data, pos + 2)
                end = data.find(b'\r\n\r\n', pos)
                if end == -1:
                    # A bare LF here is caught by the field grammar once the section ends.
                    self._keep_partial(data, pos, self.max_trailer_size)
                    return out
                if end - pos > self.max_trailer_size:
                    raise HeaderFieldsTooLarge('trailer section too large')
                section = data[pos:end + 2]
                # The same message as _keep_partial gives when the section arrives in pieces.
                if section.count(b'\n') != section.count(b'\r\n'):
                    raise BadRequest('bare LF in trailer section')
                self.trailers = parse_trailers(section, self.max_trailer_count)
                return self._finish(out, data, end + 4)
            else:
                self.rest += data[pos:]
                return out
        return out

    def _finish(self, out: list[bytes], data: bytes, pos: int) -> list[bytes]:
        self._state = _DONE
        self.done = True
        self.rest = data[pos:]
        return out

    def _keep_partial(self, data: bytes, pos: int, limit: int) -> None:
        partial = data[pos:]
        # A complete line or section may still be missing the CR of its CRLF (size line) or up
        # to 3 bytes of its CRLFCRLF (trailers): allow for them, or a size line or trailer
        # section exactly at its limit would pass whole but fail when it arrives in pieces.
        if self._state == _TRAILER:
            if len(partial) > limit + 3:
                raise HeaderFieldsTooLarge('trailer section too large')
            # RFC 9112 §2.2: a bare LF is rejected now, not when a CRLFCRLF arrives: a client
            # that ends its trailers with LF LF or LF CRLF never sends one, and would hang.
            if partial.count(b'\n') != partial.count(b'\r\n'):
                raise BadRequest('bare LF in trailer section')
        else:
            if len(partial) > limit + 1:
                raise BadRequest('chunk size line too long')
            if b'\n' in partial:
                raise BadRequest('bare LF in chunk size line')
        self._pending = partial

    @staticmethod
    def _parse_size(line: bytes) -> int:
        match = _CHUNK_SIZE_LINE.fullmatch(line)
        if match is None:
            if b'\n' in line:
                # As _keep_partial says it when the line arrives in pieces (RFC 9112 §2.2).
                raise BadRequest('bare LF in chunk size line')
            raise BadRequest('malformed chunk size line')
        digits = match.group(1)
        if len(digits.lstrip(b'0')) > _MAX_SIZE_DIGITS:
            raise BadRequest('chunk size too large')
        return int(digits, 16)
