"""A sans-IO parser for multipart bodies (RFC 2046 §5.1, RFC 7578 for ``multipart/form-data``).

Bytes go in, events come out: `PartStart` (the part's header fields), content pieces as
`bytes`, `PART_END`, and `DONE` at the close delimiter. Input may be split anywhere: a
delimiter, a header section or a CRLF of the content may straddle two calls. Content is never
held longer than it takes to know it is not the start of a delimiter, so a part of any size
streams through in constant memory.

The grammar (RFC 2046 §5.1.1), with what is checked:

    multipart-body := [preamble CRLF] dash-boundary transport-padding CRLF body-part
                      *encapsulation close-delimiter transport-padding [CRLF epilogue]
    delimiter      := CRLF dash-boundary        ; dash-boundary := "--" boundary

- A delimiter counts only at the very start of the body or right after a CRLF; the parser
  sees the body as if it began with a CRLF, so both cases are one search.
- Transport padding (spaces and tabs) may follow a delimiter; anything else before the CRLF is
  malformed (400), since RFC 2046 forbids a boundary from appearing inside a part.
- Preamble and epilogue are ignored but bounded; part headers are bounded; the number of parts
  and the size of each part can be bounded (413 above a limit).
- A body that ends before the close delimiter is malformed (400, from `feed_eof`).
"""

from __future__ import annotations

import re
from typing import Union

from .errors import BadRequest, PayloadTooLarge

# RFC 2046 §5.1.1: bcharsnospace / space, 1 to 70 characters, not ending with a space.
_BOUNDARY = re.compile(rb"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PADDING = b' \t'

_PREAMBLE, _AFTER_DELIMITER, _HEADERS, _CONTENT, _EPILOGUE = range(5)


class PartStart:
    """The start of a part: its header fields, names lower-cased.

    Values are decoded as UTF-8 (RFC 7578 §5.1 lets a file name be sent as raw UTF-8), or as
    ISO-8859-1 when they are not valid UTF-8.
    """

    __slots__ = ('headers',)

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        self.headers = headers

    def __repr__(self) -> str:
        return f'PartStart({self.headers!r})'


class _Marker:
    __slots__ = ('name',)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: The current part's content is complete.
PART_END = _Marker('PART_END')
#: The close delimiter was read: no part follows (the epilogue is ignored).
DONE = _Marker('DONE')

Event = Union[PartStart, bytes, _Marker]


def valid_boundary(boundary: bytes) -> bool:
    """Whether ``boundary`` is a boundary RFC 2046 allows (1 to 70 characters)."""
    return _BOUNDARY.fullmatch(boundary) is not None


class MultipartParser:
    """Parses one multipart body incrementally.

    Args:
        boundary: The ``boundary`` parameter of the Content-Type, without the dashes.
        max_parts: Most parts (413 above it).
        max_header_size: Largest header section of one part, in bytes (413 above it).
        max_preamble_size: Largest preamble, and largest epilogue, in bytes (413 above it).
        max_part_size: Largest content of one part, in bytes (413 above it); ``0`` for no
            limit of its own.

    Raises:
        ValueError: ``boundary`` is not a valid boundary.
    """

    __slots__ = (
        'max_parts', 'max_header_size', 'max_preamble_size', 'max_part_size', 'parts', 'done',
        '_delimiter', '_state', '_buffer', '_skipped', '_part_size',
    )

    def __init__(
        self, boundary: bytes, *, max_parts: int = 1000, max_header_size: int = 8192,
        max_preamble_size: int = 16384, max_part_size: int = 0,
    ) -> None:
        if not valid_boundary(boundary):
            raise ValueError(f'invalid multipart boundary: {boundary!r}')
        self.max_parts = max_parts
        self.max_header_size = max_header_size
        self.max_preamble_size = max_preamble_size
        self.max_part_size = max_part_size
        #: Parts started so far.
        self.parts = 0
        #: Whether the close delimiter was read.
        self.done = False
        self._delimiter = b'\r\n--' + boundary
        self._state = _PREAMBLE
        # The body is read as if it began with CRLF: a first delimiter at its very start and
        # one after a preamble's CRLF are then found by the same search.
        self._buffer = b'\r\n'
        self._skipped = -2  # preamble or epilogue bytes dropped (the CRLF above is not one)
        self._part_size = 0

    def feed(self, data: bytes) -> list[Event]:
        """Consume ``data``; return the events it completes (possibly none)."""
        if self._buffer:
            data = self._buffer + data
            self._buffer = b''
        events: list[Event] = []
        pos = 0
        size = len(data)
        while pos < size:
            state = self._state
            if state == _CONTENT:
                pos = self._content(data, pos, events)
            elif state == _AFTER_DELIMITER:
                pos = self._after_delimiter(data, pos, events)
            elif state == _HEADERS:
                pos = self._headers(data, pos, events)
            elif state == _PREAMBLE:
                pos = self._preamble(data, pos)
            else:
                self._skip(size - pos, 'epilogue')
                break
            if pos < 0:  # incomplete: the rest waits for more data
                break
        return events

    def feed_eof(self) -> list[Event]:
        """The body ended.

        Raises:
            BadRequest: It ended before the close delimiter.
        """
        if not self.done:
            raise BadRequest('multipart body ended before its final boundary')
        return []

    # -- states ---------------------------------------------------------------------------------

    def _content(self, data: bytes, pos: int, events: list[Event]) -> int:
        delimiter = self._delimiter
        end = data.find(delimiter, pos)
        if end == -1:
            # Keep back only what may be the start of a delimiter cut by the end of this data:
            # a suffix starting with its CR (the only CR a delimiter holds).
            cut = len(data)
            cr = data.rfind(b'\r', max(pos, cut - len(delimiter) + 1))
            if cr != -1 and delimiter.startswith(data[cr:]):
                cut = cr
                self._buffer = data[cr:]
            if cut > pos:
                self._add_content(data[pos:cut] if pos or cut < len(data) else data, events)
            return -1
        if end > pos:
            self._add_content(data[pos:end], events)
        events.append(PART_END)
        self._state = _AFTER_DELIMITER
        return end + len(delimiter)

    def _add_content(self, piece: bytes, events: list[Event]) -> None:
        self._part_size += len(piece)
        if self.max_part_size and self._part_size > self.max_part_size:
            raise PayloadTooLarge('multipart part too large')
        events.append(piece)

    def _after_delimiter(self, data: bytes, pos: int, events: list[Event]) -> int:
        if len(data) - pos < 2:
            self._buffer = data[pos:]
            if data[pos:pos + 1] not in (b'-', b'\r') and data[pos:pos + 1].strip(_PADDING):
                raise BadRequest('malformed multipart delimiter')
            return -1
        if data.startswith(b'--', pos):
            # The close delimiter; what follows is the epilogue (RFC 2046 §5.1.1).
            self.done = True
            events.append(DONE)
            self._state = _EPILOGUE
            self._skipped = 0
            return pos + 2
        line_end = data.find(b'\r\n', pos, pos + self.max_header_size + 2)
        if line_end == -1:
            padding = data[pos:]
            if padding.rstrip(b'\r').strip(_PADDING) or len(padding) > self.max_header_size:
                raise BadRequest('malformed multipart delimiter')
            self._buffer = padding
            return -1
        if data[pos:line_end].strip(_PADDING):
            raise BadRequest('malformed multipart delimiter')
        self.parts += 1
        if self.parts > self.max_parts:
            raise PayloadTooLarge('too many multipart parts')
        self._state = _HEADERS
        return line_end + 2

    def _headers(self, data: bytes, pos: int, events: list[Event]) -> int:
        if data.startswith(b'\r\n', pos):
            end = pos  # no header fields at all
        else:
            end = data.find(b'\r\n\r\n', pos, pos + self.max_header_size + 4)
            if end == -1:
                rest = data[pos:]
                if len(rest) > self.max_header_size + 3:
                    raise PayloadTooLarge('multipart part headers too large')
                if rest.count(b'\n') != rest.count(b'\r\n'):
                    raise BadRequest('bare LF in multipart part headers')
                self._buffer = rest
                return -1
            if end - pos > self.max_header_size:
                raise PayloadTooLarge('multipart part headers too large')
        events.append(PartStart(_parse_fields(data[pos:end])))
        self._state = _CONTENT
        self._part_size = 0
        return end + (2 if end == pos else 4)

    def _preamble(self, data: bytes, pos: int) -> int:
        delimiter = self._delimiter
        end = data.find(delimiter, pos)
        if end == -1:
            keep = len(data)
            cr = data.rfind(b'\r', max(pos, keep - len(delimiter) + 1))
            if cr != -1 and delimiter.startswith(data[cr:]):
                keep = cr
                self._buffer = data[cr:]
            self._skip(keep - pos, 'preamble')
            return -1
        self._skip(end - pos, 'preamble')
        self._state = _AFTER_DELIMITER
        return end + len(delimiter)

    def _skip(self, count: int, what: str) -> None:
        self._skipped += count
        if self._skipped > self.max_preamble_size:
            raise PayloadTooLarge(f'multipart {what} too large')


def _parse_fields(block: bytes) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    if not block:
        return fields
    if b'\n' in block.replace(b'\r\n', b''):
        raise BadRequest('bare LF in multipart part headers')
    for line in block.split(b'\r\n'):
        name, colon, value = line.partition(b':')
        # RFC 9112 §5: no whitespace before the colon; obs-fold (a line starting with
        # whitespace) is not accepted (RFC 7578 §4.8 gives parts no reason to use it).
        if not colon or _TOKEN.fullmatch(name) is None:
            raise BadRequest('malformed multipart part header')
        value = value.strip(_PADDING)
        if b'\r' in value or b'\n' in value or b'\x00' in value:
            raise BadRequest('invalid characters in a multipart part header')
        fields.append((name.decode('ascii').lower(), _decode(value)))
    return fields


def _decode(value: bytes) -> str:
    try:
        return value.decode('utf-8')
    except UnicodeDecodeError:
        return value.decode('latin-1')

