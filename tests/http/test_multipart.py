"""The sans-IO multipart parser (tremolo.http.multipart).

Every case is fed whole, byte by byte, and with trailing bytes (for a multipart body, what
follows the close delimiter is the epilogue: ignored, whatever it holds).
"""

from __future__ import annotations

import pytest

from tremolo.http import errors
from tremolo.http.multipart import DONE, PART_END, MultipartParser, PartStart, valid_boundary

TRAILING = b'\r\nepilogue --XyZ-- \r\n--XyZ\r\n'


def parse(data: bytes, mode: str, **limits: int) -> list:
    """Feed ``data`` in ``mode``; return the events with adjacent content pieces merged."""
    parser = MultipartParser(b'XyZ', **limits)
    if mode == 'whole':
        events = parser.feed(data) + parser.feed_eof()
    elif mode == 'trailing':
        events = parser.feed(data + TRAILING) + parser.feed_eof()
    else:
        events = []
        close = data.rindex(b'--XyZ--') + 7
        for i in range(len(data)):
            assert parser.done == (i >= close), f'done is {parser.done} after {i} bytes'
            events += parser.feed(data[i:i + 1])
        events += parser.feed_eof()
    assert parser.done
    return merged(events)


def parse_error(data: bytes, mode: str, **limits: int) -> errors.ParseError:
    """The error ``data`` raises, at the latest by its end."""
    parser = MultipartParser(b'XyZ', **limits)
    with pytest.raises(errors.ParseError) as info:
        if mode == 'bytewise':
            for i in range(len(data)):
                parser.feed(data[i:i + 1])
        else:
            parser.feed(data + (TRAILING if mode == 'trailing' else b''))
        parser.feed_eof()
    return info.value


def merged(events: list) -> list:
    out: list = []
    for event in events:
        if isinstance(event, bytes):
            assert event, 'an empty content piece'
            if out and isinstance(out[-1], bytes):
                out[-1] += event
                continue
        elif isinstance(event, PartStart):
            event = ('start', event.headers)
        out.append(event)
    return out


def part(headers: bytes, content: bytes) -> bytes:
    return b'--XyZ\r\n' + headers + b'\r\n' + content + b'\r\n'


DISPOSITION = b'Content-Disposition: form-data; name="a"\r\n'
A = ('start', [('content-disposition', 'form-data; name="a"')])


@pytest.fixture(params=('whole', 'bytewise', 'trailing'))
def mode(request):
    return request.param


def test_one_part(mode):
    body = part(DISPOSITION, b'hello') + b'--XyZ--\r\n'
    assert parse(body, mode) == [A, b'hello', PART_END, DONE]


def test_several_parts_headers_and_empty_content(mode):
    body = (
        part(DISPOSITION + b'Content-Type: text/plain; charset=utf-8\r\n', b'x')
        + part(b'X-Empty:\r\nCONTENT-DISPOSITION:form-data; name="b"\r\n', b'')
        + part(b'', b'no headers') + b'--XyZ--'
    )
    assert parse(body, mode) == [
        ('start', [('content-disposition', 'form-data; name="a"'),
                   ('content-type', 'text/plain; charset=utf-8')]), b'x', PART_END,
        ('start', [('x-empty', ''), ('content-disposition', 'form-data; name="b"')]), PART_END,
        ('start', []), b'no headers', PART_END, DONE,
    ]


@pytest.mark.parametrize('content', [
    b'\r\n', b'\r\n\r\n', b'line 1\r\nline 2\r\n', b'\r\n--XyZ-not\r', b'\r\n--XY', b'--XyZ',
    b'\r\r\n\r\n-', b'\n--XyZ\r\n', bytes(range(256)) * 4,
], ids=['crlf', 'two-crlf', 'lines', 'almost-delimiter', 'delimiter-prefix',
        'dashes-not-after-crlf', 'crs', 'delimiter-after-lf', 'binary'])
def test_content_that_looks_like_a_delimiter(mode, content):
    body = part(DISPOSITION, content) + b'--XyZ--\r\n'
    if content == b'\r\n--XyZ-not\r':
        # A delimiter followed by "-n" is neither a close delimiter nor padding + CRLF.
        assert parse_error(body, mode).status == 400
        return
    assert parse(body, mode) == [A, content, PART_END, DONE]


def test_preamble_padding_and_epilogue(mode):
    body = (b'preamble --XyZ-- is not a delimiter\r\n--XyZ \t \r\n' + DISPOSITION + b'\r\n1'
            b'\r\n--XyZ--  \r\nepilogue')
    assert parse(body, mode) == [A, b'1', PART_END, DONE]


def test_utf8_and_latin1_header_values(mode):
    body = part('Content-Disposition: form-data; name="f"; filename="é.txt"\r\n'.encode()
                + b'X-Latin: caf\xe9\r\n', b'') + b'--XyZ--'
    assert parse(body, mode) == [
        ('start', [('content-disposition', 'form-data; name="f"; filename="é.txt"'),
                   ('x-latin', 'café')]), PART_END, DONE,
    ]


def test_no_parts(mode):
    assert parse(b'--XyZ--', mode) == [DONE]


def test_delimiter_only_at_line_start():
    # RFC 2046 §5.1.1: at the start of the body or after CRLF; after a bare LF it is preamble.
    parser = MultipartParser(b'XyZ')
    events = parser.feed(b'x\n--XyZ\r\n' + DISPOSITION + b'\r\nv\r\n--XyZ--')
    assert merged(events) == [DONE]


@pytest.mark.parametrize(('body', 'status', 'message'), [
    (b'', 400, 'final boundary'),
    (b'no delimiter at all', 400, 'final boundary'),
    (b'--XyZ', 400, 'final boundary'),
    (b'--XyZ\r\n', 400, 'final boundary'),
    (part(DISPOSITION, b'v'), 400, 'final boundary'),
    (part(DISPOSITION, b'v') + b'--XyZ', 400, 'final boundary'),
    (b'--XyZjunk\r\n', 400, 'delimiter'),
    (b'--XyZ x\r\n', 400, 'delimiter'),
    (b'--XyZ\rx', 400, 'delimiter'),
    (b'--XyZ\r\nNo colon\r\n\r\n', 400, 'part header'),
    (b'--XyZ\r\nName : v\r\n\r\n', 400, 'part header'),
    (b'--XyZ\r\nA: b\r\n folded\r\n\r\n', 400, 'part header'),
    (b'--XyZ\r\nA: b\nB: c\r\n\r\n', 400, 'bare LF'),
    (b'--XyZ\r\nA: b\x00\r\n\r\n', 400, 'invalid characters'),
], ids=['empty', 'no-delimiter', 'dash-boundary-only', 'no-headers-end', 'no-close',
        'close-unfinished', 'junk-after-delimiter', 'junk-in-padding', 'cr-then-junk',
        'no-colon', 'space-before-colon', 'obs-fold', 'bare-lf', 'nul'])
def test_malformed(mode, body, status, message):
    error = parse_error(body, mode)
    assert error.status == status and message in error.message


@pytest.mark.parametrize(('body', 'limits', 'message'), [
    (part(b'X: ' + b'x' * 100 + b'\r\n', b'') + b'--XyZ--', {'max_header_size': 64},
     'part headers too large'),
    (part(b'X: ' + b'x' * 100, b''), {'max_header_size': 64}, 'part headers too large'),
    (b'p' * 101 + b'\r\n--XyZ--', {'max_preamble_size': 100}, 'preamble too large'),
    (b'--XyZ--\r\n' + b'e' * 101, {'max_preamble_size': 100}, 'epilogue too large'),
    (part(b'', b'c' * 101) + b'--XyZ--', {'max_part_size': 100}, 'part too large'),
    (part(b'', b'') * 4 + b'--XyZ--', {'max_parts': 3}, 'too many'),
], ids=['headers', 'headers-unfinished', 'preamble', 'epilogue', 'part-size', 'part-count'])
def test_limits(mode, body, limits, message):
    error = parse_error(body, mode, **limits)
    assert error.status == 413 and message in error.message


def test_limits_are_inclusive():
    body = (b'p' * 100 + b'\r\n' + part(b'X: ' + b'x' * 61 + b'\r\n', b'c' * 100)
            + b'--XyZ--\r\n')
    parser = MultipartParser(b'XyZ', max_preamble_size=100, max_header_size=64,
                             max_part_size=100, max_parts=1)
    events = merged(parser.feed(body + b'e' * 98) + parser.feed_eof())
    assert events[1:] == [b'c' * 100, PART_END, DONE]


def test_split_at_every_position():
    body = (b'pre\r\n' + part(DISPOSITION, b'a\r\n--XyY\r\n\r') + part(b'', b'\r\nb\r\n')
            + b'--XyZ--\r\n')
    expected = [A, b'a\r\n--XyY\r\n\r', PART_END, ('start', []), b'\r\nb\r\n', PART_END, DONE]
    for i in range(len(body) + 1):
        for j in range(i, len(body) + 1):
            parser = MultipartParser(b'XyZ')
            events = parser.feed(body[:i]) + parser.feed(body[i:j]) + parser.feed(body[j:])
            assert merged(events + parser.feed_eof()) == expected, (i, j)


def test_content_is_not_held_back():
    # Only a possible delimiter start is kept: content ending elsewhere is handed out at once.
    parser = MultipartParser(b'XyZ')
    assert merged(parser.feed(part(DISPOSITION, b'')[:-2] + b'abc')) == [A, b'abc']
    assert parser.feed(b'def\r') == [b'def']
    assert parser.feed(b'\n-') == []
    assert parser.feed(b'x') == [b'\r\n-x']
    assert parser.feed(b'\r\n--XyZ--') == [PART_END, DONE]


def test_big_part_in_pieces_is_passed_through_without_copies():
    parser = MultipartParser(b'XyZ')
    parser.feed(part(DISPOSITION, b'')[:-2])
    piece = b'x' * 65536
    assert parser.feed(piece)[0] is piece


@pytest.mark.parametrize('boundary', [b'', b'x' * 71, b'ends with space ', b'a"b', b'a\r\nb'])
def test_invalid_boundary(boundary):
    assert not valid_boundary(boundary)
    with pytest.raises(ValueError):
        MultipartParser(boundary)


@pytest.mark.parametrize('boundary', [b'x', b'x' * 70, b"----Web Kit'()+_,-./:=?", b'1'])
def test_valid_boundary(boundary):
    assert valid_boundary(boundary)
    parser = MultipartParser(boundary)
    events = parser.feed(b'--' + boundary + b'\r\n\r\nv\r\n--' + boundary + b'--')
    assert merged(events) == [('start', []), b'v', PART_END, DONE]
