"""Byte ranges (RFC 9110 §14): the ``Range`` header, ``Content-Range`` values and the
``multipart/byteranges`` framing of a response with several ranges.

`parse_range` tells the three possible outcomes apart:

- ``None``: ignore the header and send the whole representation with 200. That is the answer
  to a header that is not a valid ``bytes`` ranges-specifier (RFC 9110 §14.2: "An origin
  server MUST ignore a Range header field that contains a range unit it does not
  understand"; an invalid ranges-specifier MAY be ignored), and to one that looks like an
  attack (see below).
- an empty tuple: no range overlaps the representation: 416 with
  ``Content-Range: bytes */<size>`` (RFC 9110 §15.5.17).
- a tuple of `ByteRange`: 206, with one part or a ``multipart/byteranges`` body.

Abuse (RFC 9110 §14.2, "indications of either a broken client or a deliberate
denial-of-service attack"): a header with more than ``max_ranges`` range-specs (32 by default)
is ignored whole. When the satisfiable ranges are out of order or overlap, they are sorted and
coalesced (ranges that overlap or are separated by less than `COALESCE_GAP` bytes become one),
which the same section allows "regardless of the order in which the corresponding range-spec
appeared". So ``bytes=0-,0-,0-`` costs one copy of the file, not three, and a thousand
one-byte ranges cannot multiply the response size by the per-part overhead. Ranges that are
already ascending and disjoint are served as asked.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Optional, Union

#: Most range-specs honoured in one header; more and the header is ignored (200).
MAX_RANGES = 32

#: Ranges closer than this (in bytes) are merged when coalescing: a gap that small costs less
#: to send than the headers of another part (RFC 9110 §14.2).
COALESCE_GAP = 80

# RFC 9110 §14.1.1: int-range = first-pos "-" [ last-pos ] / suffix-range = "-" suffix-length.
_SPEC = re.compile(r'([0-9]*)-([0-9]*)')
# Numbers longer than this are clipped rather than converted: no file is that big, and int()
# of thousands of digits costs time (and fails past sys.int_info.str_digits_check_threshold).
_MAX_DIGITS = 18
_HUGE = 10 ** _MAX_DIGITS


class ByteRange(NamedTuple):
    """A satisfiable byte range: ``start`` included, ``stop`` excluded (0 <= start < stop)."""

    start: int
    stop: int

    @property
    def length(self) -> int:
        """The number of bytes in the range."""
        return self.stop - self.start

    def content_range(self, size: int) -> str:
        """The ``Content-Range`` value, e.g. ``'bytes 0-499/1234'`` (RFC 9110 §14.4)."""
        return f'bytes {self.start}-{self.stop - 1}/{size}'


def unsatisfied_range(size: int) -> str:
    """The ``Content-Range`` value of a 416 response, e.g. ``'bytes */1234'``."""
    return f'bytes */{size}'


def _number(digits: str) -> int:
    return int(digits) if len(digits) <= _MAX_DIGITS else _HUGE


def parse_range(
    value: Union[str, bytes], size: int, max_ranges: int = MAX_RANGES
) -> Optional[tuple[ByteRange, ...]]:
    """Resolve a ``Range`` header value against a representation of ``size`` bytes.

    Args:
        value: The field value, e.g. ``'bytes=0-99, -100'``.
        size: The length of the selected representation.
        max_ranges: Most range-specs accepted before the header is ignored.

    Returns:
        ``None`` to ignore the header (send 200), ``()`` when no range is satisfiable (send
        416), else the ranges to send (see the module documentation).
    """
    if isinstance(value, bytes):
        value = value.decode('latin-1')
    unit, equals, range_set = value.partition('=')
    # RFC 9110 §14.1: range units are compared case-insensitively; there is no whitespace
    # around "=" in the grammar, so "bytes = 0-1" is not a ranges-specifier.
    if not equals or unit.lower() != 'bytes':
        return None
    specs = []
    for element in range_set.split(','):
        element = element.strip(' \t')
        if not element:
            continue  # RFC 9110 §5.6.1: empty list elements are allowed and ignored
        match = _SPEC.fullmatch(element)
        if match is None:
            return None
        first, last = match.groups()
        if not first and not last:
            return None  # a lone "-"
        specs.append((first, last))
        if len(specs) > max_ranges:
            return None
    if not specs:
        return None
    ranges = []
    for first, last in specs:
        if first:
            start = _number(first)
            if last:
                end = _number(last)
                if end < start:
                    return None  # RFC 9110 §14.1.1: an invalid range-spec
                stop = min(end + 1, size)  # a last-pos past the end means "to the end"
            else:
                stop = size
            if start >= size:
                continue  # unsatisfiable: starts past the end
        else:
            suffix = _number(last)
            if suffix == 0 or size == 0:
                # RFC 9110 §14.1.1: a zero suffix-length is unsatisfiable; a suffix of an
                # empty representation selects no byte and cannot be written as a
                # Content-Range either.
                continue
            start = max(size - suffix, 0)  # a suffix longer than the file: the whole file
            stop = size
        ranges.append(ByteRange(start, stop))
    return coalesce(ranges)


def coalesce(ranges: list[ByteRange]) -> tuple[ByteRange, ...]:
    """Keep ascending, disjoint ranges as they are; otherwise sort them and merge those that
    overlap or lie closer than `COALESCE_GAP` bytes (RFC 9110 §14.2)."""
    ordered = all(
        ranges[i].stop + COALESCE_GAP <= ranges[i + 1].start for i in range(len(ranges) - 1)
    )
    if ordered:
        return tuple(ranges)
    merged: list[ByteRange] = []
    for current in sorted(ranges):
        if merged and current.start <= merged[-1].stop + COALESCE_GAP:
            last = merged[-1]
            if current.stop > last.stop:
                merged[-1] = ByteRange(last.start, current.stop)
        else:
            merged.append(current)
    return tuple(merged)


class MultipartRanges:
    """The ``multipart/byteranges`` framing of several ranges (RFC 9110 §14.6).

    The body is, for each range, a delimiter line and the part's header fields followed by
    that range of the file, then the close delimiter. Only the framing is here; the caller
    sends the file bytes between the pieces. The whole length is known before anything is
    sent, so the response carries a ``Content-Length``.

    Args:
        ranges: The ranges, in the order they are sent.
        size: The length of the whole representation.
        content_type: The Content-Type of the representation (repeated in each part).
        boundary: The boundary; it must not occur in the file, which is why it is random
            (e.g. ``secrets.token_hex(16)``).

    Attributes:
        content_type: The value of the response's Content-Type header.
        content_length: The exact length of the body.
    """

    __slots__ = ('ranges', 'boundary', 'content_type', 'content_length', '_heads', '_close')

    def __init__(
        self, ranges: tuple[ByteRange, ...], size: int, content_type: str, boundary: str
    ) -> None:
        self.ranges = ranges
        self.boundary = boundary
        self.content_type = f'multipart/byteranges; boundary={boundary}'
        delimiter = b'--' + boundary.encode('ascii')
        part_type = content_type.encode('latin-1')
        self._heads = []
        for index, byte_range in enumerate(ranges):
            # The CRLF before each delimiter after the first belongs to the delimiter
            # (RFC 2046 §5.1.1); the first one starts the body.
            self._heads.append(b'%s%s\r\nContent-Type: %s\r\nContent-Range: %s\r\n\r\n' % (
                b'\r\n' if index else b'', delimiter, part_type,
                byte_range.content_range(size).encode('ascii'),
            ))
        self._close = b'\r\n%s--\r\n' % delimiter
        self.content_length = (
            sum(len(head) for head in self._heads)
            + sum(byte_range.length for byte_range in ranges)
            + len(self._close)
        )

    def parts(self) -> list[tuple[bytes, ByteRange]]:
        """Each part's header block (delimiter included) with the range that follows it."""
        return list(zip(self._heads, self.ranges))

    @property
    def closing(self) -> bytes:
        """The close delimiter that ends the body."""
        return self._close
