"""Range requests, sans-IO (RFC 9110 §14)."""

from __future__ import annotations

import pytest

from tremolo.http.ranges import (
    COALESCE_GAP,
    MAX_RANGES,
    ByteRange,
    MultipartRanges,
    parse_range,
    unsatisfied_range,
)

R = ByteRange


@pytest.mark.parametrize('value, size, expected', [
    # RFC 9110 §14.1.2 examples, for a representation of 10000 bytes.
    ('bytes=0-499', 10000, (R(0, 500),)),
    ('bytes=500-999', 10000, (R(500, 1000),)),
    ('bytes=-500', 10000, (R(9500, 10000),)),
    ('bytes=9500-', 10000, (R(9500, 10000),)),
    ('bytes=0-0,-1', 10000, (R(0, 1), R(9999, 10000))),
    ('bytes= 0-999, 4500-5499, -1000', 10000, (R(0, 1000), R(4500, 5500), R(9000, 10000))),
    ('bytes=500-600,601-999', 10000, (R(500, 1000),)),  # adjacent: coalesced
    ('bytes=500-700,601-999', 10000, (R(500, 1000),)),  # overlapping: coalesced
    # Edges.
    ('bytes=0-0', 10, (R(0, 1),)),
    ('bytes=0-', 10, (R(0, 10),)),
    ('bytes=9-', 10, (R(9, 10),)),
    ('bytes=5-100', 10, (R(5, 10),)),  # last-pos clipped to size - 1
    ('bytes=-100', 10, (R(0, 10),)),  # a suffix bigger than the file: the whole file
    ('bytes=-10', 10, (R(0, 10),)),
    ('bytes=0-99999999999999999999999999', 10, (R(0, 10),)),  # huge last-pos: clipped
    ('Bytes=1-2', 10, (R(1, 3),)),  # the unit is case-insensitive
    ('BYTES=1-2', 10, (R(1, 3),)),
    ('bytes=1-2,', 10, (R(1, 3),)),  # empty list elements are ignored
    ('bytes=,1-2', 10, (R(1, 3),)),
    ('bytes=1-2 ,\t3-4', 10, (R(1, 5),)),  # whitespace around commas; adjacent: merged
    (b'bytes=1-2', 10, (R(1, 3),)),  # bytes values
    # Unsatisfiable: 416.
    ('bytes=10-', 10, ()),
    ('bytes=10-20', 10, ()),
    ('bytes=-0', 10, ()),  # a zero suffix-length
    ('bytes=99999999999999999999999-', 10, ()),
    ('bytes=0-', 0, ()),  # an empty file has no byte to send
    ('bytes=-1', 0, ()),
    ('bytes=20-30,-0', 10, ()),
    # Unsatisfiable ranges among satisfiable ones are dropped.
    ('bytes=20-30,0-1', 10, (R(0, 2),)),
])
def test_parse_range(value, size, expected):
    assert parse_range(value, size) == expected


@pytest.mark.parametrize('value', [
    'bytes=5-2',  # last-pos before first-pos: invalid
    'items=0-1',  # unknown unit
    'bytes 0-1',
    'bytes = 0-1',  # no whitespace around "=" in the grammar
    'bytes=',
    'bytes=,',
    'bytes=-',
    'bytes=a-b',
    'bytes=1-2-3',
    'bytes=+1-2',
    'bytes=0x10-20',
    'bytes=1 -2',
    'bytes=0-1;x',
    'bytes=0-1, bytes=2-3',  # two Range fields combined by the parser
    '',
    '=0-1',
])
def test_invalid_range_is_ignored(value):
    assert parse_range(value, 10000) is None


def test_too_many_ranges_are_ignored():
    value = 'bytes=' + ','.join(f'{i * 200}-{i * 200 + 9}' for i in range(MAX_RANGES))
    assert len(parse_range(value, 10 ** 6)) == MAX_RANGES
    value += f',{MAX_RANGES * 200}-{MAX_RANGES * 200 + 9}'
    assert parse_range(value, 10 ** 6) is None
    assert parse_range('bytes=0-1,4-5,8-9', 100, max_ranges=2) is None


def test_many_overlapping_ranges_cost_one_copy():
    assert parse_range('bytes=' + ','.join(['0-'] * MAX_RANGES), 1000) == (R(0, 1000),)


def test_out_of_order_small_ranges_are_sorted_and_coalesced():
    # Descending one-byte ranges 100 bytes apart: sorted, kept apart (gap >= COALESCE_GAP).
    value = 'bytes=' + ','.join(f'{i}-{i}' for i in range(3000, 0, -100))
    ranges = parse_range(value, 10000)
    assert list(ranges) == sorted(ranges) and len(ranges) == 30
    # Small gaps are filled: one part instead of many.
    value = 'bytes=' + ','.join(f'{i}-{i}' for i in range(100, 0, -10))
    assert parse_range(value, 10000) == (R(10, 101),)


def test_ascending_disjoint_ranges_keep_their_order():
    gap = COALESCE_GAP
    value = f'bytes=0-9,{10 + gap}-{19 + gap}'
    assert parse_range(value, 10000) == (R(0, 10), R(10 + gap, 20 + gap))
    # Closer than the gap: merged.
    assert parse_range(f'bytes=0-9,{9 + gap}-{19 + gap}', 10000) == (R(0, 20 + gap),)


def test_content_range_values():
    assert R(0, 500).content_range(1234) == 'bytes 0-499/1234'
    assert R(0, 500).length == 500
    assert unsatisfied_range(1234) == 'bytes */1234'


def test_multipart_byteranges_framing():
    data = bytes(range(256)) * 4
    ranges = (R(0, 10), R(100, 120), R(1000, 1024))
    multipart = MultipartRanges(ranges, len(data), 'text/plain; charset=utf-8', 'BOUNDARY')
    assert multipart.content_type == 'multipart/byteranges; boundary=BOUNDARY'
    body = b''.join(head + data[r.start:r.stop] for head, r in multipart.parts())
    body += multipart.closing
    assert len(body) == multipart.content_length
    assert body.startswith(
        b'--BOUNDARY\r\nContent-Type: text/plain; charset=utf-8\r\n'
        b'Content-Range: bytes 0-9/1024\r\n\r\n' + data[:10] + b'\r\n--BOUNDARY\r\n')
    assert body.endswith(data[1000:] + b'\r\n--BOUNDARY--\r\n')
    # Parsed back with the standard library's MIME parser.
    from email.parser import BytesParser
    message = BytesParser().parsebytes(
        b'Content-Type: ' + multipart.content_type.encode() + b'\r\n\r\n' + body)
    parts = message.get_payload()
    assert [part['Content-Range'] for part in parts] == [
        'bytes 0-9/1024', 'bytes 100-119/1024', 'bytes 1000-1023/1024']
    assert [part.get_payload(decode=True) for part in parts] == [
        data[0:10], data[100:120], data[1000:1024]]
