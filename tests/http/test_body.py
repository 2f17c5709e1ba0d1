"""Body decoders: Content-Length and chunked (tremolo.http.body).

Every case goes through the ``decode`` / ``decode_error`` fixtures of ``conftest.py``, which feed
it whole, byte by byte and with a pipelined request appended (that must end up in ``.rest``).
"""

from __future__ import annotations

import pytest

from tremolo.http import errors
from tremolo.http.body import ChunkedDecoder, ContentLengthDecoder

from .conftest import TRAILING

# -- Content-Length -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    'body',
    [b'hello', b'x', b'\r\n\r\n0\r\n\r\n', bytes(range(256)) * 3],
    ids=['text', 'one-byte', 'looks-chunked', 'binary'],
)
def test_content_length(decode, body):
    decoder = ContentLengthDecoder(len(body))
    assert decoder.done is False
    assert decode(decoder, body) == body
    assert decoder.remaining == 0
    assert decoder.trailers == {}


def test_content_length_zero(decode):
    decoder = ContentLengthDecoder(0)
    assert decoder.done is True
    assert decode(decoder, b'') == b''


def test_content_length_counts_down():
    decoder = ContentLengthDecoder(10)
    assert decoder.feed(b'abc') == [b'abc']
    assert (decoder.remaining, decoder.done) == (7, False)
    assert decoder.feed(b'') == []
    assert decoder.remaining == 7
    assert decoder.feed(b'defghijKLM') == [b'defghij']
    assert (decoder.remaining, decoder.done, decoder.rest) == (0, True, b'KLM')


def test_content_length_rest_accumulates_after_done():
    decoder = ContentLengthDecoder(2)
    assert decoder.feed(b'ab') == [b'ab']
    assert decoder.done and decoder.rest == b''
    for byte in TRAILING:
        assert decoder.feed(bytes([byte])) == []
    assert decoder.rest == TRAILING


def test_content_length_split_at_every_position():
    data = b'0123456789' + TRAILING
    for i in range(len(data) + 1):
        decoder = ContentLengthDecoder(10)
        body = b''.join(decoder.feed(data[:i]) + decoder.feed(data[i:]))
        assert body == b'0123456789'
        assert decoder.rest == TRAILING


# -- chunked: accepted ----------------------------------------------------------------------------

# (id, wire bytes, decoded body, trailers)
CHUNKED = [
    ('one-chunk', b'5\r\nhello\r\n0\r\n\r\n', b'hello', {}),
    ('empty-body', b'0\r\n\r\n', b'', {}),
    ('several-chunks', b'5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n', b'hello world', {}),
    ('hex-sizes', b'a\r\n0123456789\r\nB\r\nabcdefghijk\r\n0\r\n\r\n',
     b'0123456789abcdefghijk', {}),
    ('leading-zeros', b'0005\r\nhello\r\n000\r\n\r\n', b'hello', {}),
    ('many-leading-zeros', b'0' * 30 + b'3\r\nabc\r\n0\r\n\r\n', b'abc', {}),
    ('crlf-in-data', b'4\r\n\r\n\r\n\r\n5\r\n0\r\n\r\n\r\n0\r\n\r\n', b'\r\n\r\n0\r\n\r\n', {}),
    ('binary-data', b'100\r\n' + bytes(range(256)) + b'\r\n0\r\n\r\n', bytes(range(256)), {}),
    ('extensions',
     b'5;name=value\r\nhello\r\n3 ; a ; b = "q\\"uo;ted"\r\nabc\r\n'
     b'2;x="";y=z\r\nde\r\n0;last=1\r\n\r\n',
     b'helloabcde', {}),
    ('extension-obs-text-quoted', b'1;a="caf\xc3\xa9"\r\nz\r\n0\r\n\r\n', b'z', {}),
    ('trailers',
     b'5\r\nhello\r\n0\r\nServer-Timing: db;dur=5\r\nX-Checksum:  abc \r\nx-checksum: def\r\n\r\n',
     b'hello', {b'server-timing': b'db;dur=5', b'x-checksum': b'abc, def'}),
    ('trailer-obs-text', b'0\r\nX-Name: \xe9\xff\r\n\r\n', b'', {b'x-name': b'\xe9\xff'}),
    ('bws-before-semicolon', b'2\t;a\r\nab\r\n0 ;b=c\r\n\r\n', b'ab', {}),
    ('sixteen-hex-digits', b'000000000000000' + b'2\r\nab\r\n0\r\n\r\n', b'ab', {}),
    # RFC 9110 §6.5.1: fields that frame, route or modify a request are dropped from trailers.
    ('forbidden-trailers-dropped',
     b'1\r\nz\r\n0\r\nContent-Length: 5\r\nX-Ok: 1\r\nTransfer-Encoding: chunked\r\n'
     b'Host: evil\r\nhost: twice\r\nAuthorization: x\r\nContent-Type: a/b\r\nTrailer: X\r\n'
     b'Connection: close\r\nCookie: a=b\r\n\r\n',
     b'z', {b'x-ok': b'1'}),
]


@pytest.mark.parametrize(
    ('data', 'body', 'trailers'), [c[1:] for c in CHUNKED], ids=[c[0] for c in CHUNKED]
)
def test_chunked(decode, data, body, trailers):
    decoder = ChunkedDecoder()
    assert decode(decoder, data) == body
    assert decoder.trailers == trailers


@pytest.mark.parametrize(
    ('data', 'body', 'trailers'), [c[1:] for c in CHUNKED], ids=[c[0] for c in CHUNKED]
)
def test_chunked_split_at_every_position(data, body, trailers):
    wire = data + TRAILING
    for i in range(len(wire) + 1):
        decoder = ChunkedDecoder()
        pieces = decoder.feed(wire[:i])
        pieces += decoder.feed(wire[i:])
        assert b''.join(pieces) == body, i
        assert decoder.done, i
        assert decoder.rest == TRAILING, i
        assert decoder.trailers == trailers, i


def test_chunked_split_at_every_pair_of_positions():
    data = b'3;e=1\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\nGET'
    for i in range(len(data) + 1):
        for j in range(i, len(data) + 1):
            decoder = ChunkedDecoder()
            pieces = decoder.feed(data[:i]) + decoder.feed(data[i:j]) + decoder.feed(data[j:])
            assert b''.join(pieces) == b'abcde', (i, j)
            assert (decoder.done, decoder.rest, decoder.trailers) == (True, b'GET', {b't': b'1'})


def test_chunked_streams_data_before_the_chunk_ends():
    decoder = ChunkedDecoder()
    assert decoder.feed(b'a\r\n0123') == [b'0123']
    assert decoder.feed(b'45') == [b'45']
    assert decoder.feed(b'6789\r') == [b'6789']
    assert decoder.done is False
    assert decoder.feed(b'\n0\r\n\r\nrest') == []
    assert (decoder.done, decoder.rest) == (True, b'rest')


def test_chunked_rest_accumulates_after_done():
    decoder = ChunkedDecoder()
    assert decoder.feed(b'0\r\n\r\nab') == []
    assert decoder.feed(b'cd') == []
    assert decoder.rest == b'abcd'


def test_chunked_largest_size_accepted():
    decoder = ChunkedDecoder()
    assert decoder.feed(b'ffffffffffffffff\r\nabc') == [b'abc']
    assert decoder.done is False
    decoder = ChunkedDecoder()
    assert decoder.feed(b'0000' + b'1' * 16 + b'\r\nx') == [b'x']


def test_chunk_size_line_at_limit(decode):
    line = b'5;' + b'e' * 14  # exactly max_line bytes
    decoder = ChunkedDecoder(max_line=16)
    assert decode(decoder, line + b'\r\nhello\r\n0\r\n\r\n') == b'hello'


def test_trailer_section_at_limit(decode):
    section = b'X-Long: ' + b'v' * 24  # 32 bytes before the final CRLFCRLF
    decoder = ChunkedDecoder(max_trailer_size=32)
    assert decode(decoder, b'1\r\nz\r\n0\r\n' + section + b'\r\n\r\n') == b'z'
    assert decoder.trailers == {b'x-long': b'v' * 24}


# -- chunked: rejected ----------------------------------------------------------------------------

INVALID_CHUNKED = [
    ('non-hex-size', b'g\r\nhello\r\n0\r\n\r\n', 400),
    ('hex-prefix', b'0x5\r\nhello\r\n0\r\n\r\n', 400),
    ('negative-size', b'-5\r\nhello\r\n0\r\n\r\n', 400),
    ('plus-size', b'+5\r\nhello\r\n0\r\n\r\n', 400),
    ('space-before-size', b' 5\r\nhello\r\n0\r\n\r\n', 400),
    ('empty-size-line', b'\r\nhello\r\n0\r\n\r\n', 400),
    ('non-hex-second-size', b'5\r\nhello\r\nzz\r\n0\r\n\r\n', 400),
    ('size-overflow', b'1' + b'0' * 16 + b'\r\nx\r\n0\r\n\r\n', 400),
    ('size-huge-overflow', b'f' * 40 + b'\r\nx\r\n0\r\n\r\n', 400),
    ('data-longer-than-size', b'5\r\nhelloX\r\n0\r\n\r\n', 400),
    ('no-crlf-after-data', b'5\r\nhello0\r\n\r\n', 400),
    ('lf-after-data', b'5\r\nhello\n0\r\n\r\n', 400),
    ('cr-only-after-data', b'5\r\nhello\r0\r\n\r\n', 400),
    ('bare-lf-size-line', b'5\nhello\r\n0\r\n\r\n', 400),
    ('bare-lf-last-chunk', b'5\r\nhello\r\n0\n\n', 400),
    ('bare-lf-end-of-body', b'5\r\nhello\r\n0\r\n\n', 400),
    ('bare-lf-trailer', b'0\r\nX: y\nZ: w\r\n\r\n', 400),
    ('bare-lf-end-of-trailers', b'0\r\nX: y\n\n', 400),
    ('bare-lf-then-crlf-trailers', b'0\r\nX: y\n\r\n', 400),
    ('bare-lf-in-trailer-end', b'0\r\nX: y\r\n\n', 400),
    ('empty-extension', b'5;\r\nhello\r\n0\r\n\r\n', 400),
    ('extension-empty-value', b'5;a=\r\nhello\r\n0\r\n\r\n', 400),
    ('extension-space-in-name', b'5;a b\r\nhello\r\n0\r\n\r\n', 400),
    ('extension-unterminated-quote', b'5;a="x\r\nhello\r\n0\r\n\r\n', 400),
    ('extension-nul', b'5;\x00\r\nhello\r\n0\r\n\r\n', 400),
    ('extension-control-in-value', b'5;a=b\x01\r\nhello\r\n0\r\n\r\n', 400),
    ('extension-obs-text-unquoted', b'5;a=\xff\r\nhello\r\n0\r\n\r\n', 400),
    ('extension-control-in-quoted', b'5;a="b\x7f"\r\nhello\r\n0\r\n\r\n', 400),
    ('junk-after-size', b'5 junk\r\nhello\r\n0\r\n\r\n', 400),
    # RFC 9112 §7.1.1: BWS only around ';' and '=' of an extension.
    ('space-after-size', b'5 \r\nhello\r\n0\r\n\r\n', 400),
    ('tab-after-size', b'5\t\r\nhello\r\n0\r\n\r\n', 400),
    ('space-after-last-size', b'5\r\nhello\r\n0 \r\n\r\n', 400),
    ('space-after-extension', b'5;a=b \r\nhello\r\n0\r\n\r\n', 400),
    ('space-after-extension-name', b'5;a \r\nhello\r\n0\r\n\r\n', 400),
    ('space-after-quoted-extension', b'5;a="b" \r\nhello\r\n0\r\n\r\n', 400),
    ('hex-prefix-upper', b'0X5\r\nhello\r\n0\r\n\r\n', 400),
    ('seventeen-hex-digits', b'10000000000000000\r\nx\r\n0\r\n\r\n', 400),
    ('underscore-size', b'1_0\r\nx\r\n0\r\n\r\n', 400),
    ('unicode-digit-size', b'\xd9\xa3\r\nx\r\n0\r\n\r\n', 400),
    ('cr-in-size-line', b'5\r\r\nhello\r\n0\r\n\r\n', 400),
    ('nul-in-size-line', b'5\x00\r\nhello\r\n0\r\n\r\n', 400),
    ('extension-without-semicolon', b'5 a=b\r\nhello\r\n0\r\n\r\n', 400),
    ('trailer-space-before-colon', b'0\r\nX : y\r\n\r\n', 400),
    ('trailer-obs-fold', b'0\r\nX: y\r\n z\r\n\r\n', 400),
    ('trailer-nul', b'0\r\nX: \x00\r\n\r\n', 400),
    ('trailer-no-colon', b'0\r\nJunk\r\n\r\n', 400),
    ('trailer-bare-cr-before-forbidden', b'0\r\nX: a\rContent-Length: 5\r\n\r\n', 400),
    ('trailer-bad-forbidden-field', b'0\r\nHost : a\r\n\r\n', 400),
]


@pytest.mark.parametrize(
    ('data', 'status'), [c[1:] for c in INVALID_CHUNKED], ids=[c[0] for c in INVALID_CHUNKED]
)
def test_invalid_chunked(decode_error, data, status):
    error = decode_error(ChunkedDecoder(), data)
    assert error.status == status
    assert isinstance(error, errors.BadRequest)


def test_chunk_size_line_too_long(decode_error):
    line = b'5;' + b'e' * 15  # one byte over max_line
    error = decode_error(ChunkedDecoder(max_line=16), line + b'\r\nhello\r\n0\r\n\r\n')
    assert error.status == 400


def test_endless_chunk_size_line_rejected_early():
    decoder = ChunkedDecoder(max_line=16)
    assert decoder.feed(b'5;' + b'e' * 10) == []
    with pytest.raises(errors.BadRequest):
        decoder.feed(b'e' * 100)


def test_trailer_section_too_large(decode_error):
    section = b'X-Long: ' + b'v' * 25  # 33 bytes
    error = decode_error(ChunkedDecoder(max_trailer_size=32), b'0\r\n' + section + b'\r\n\r\n')
    assert error.status == 431
    assert isinstance(error, errors.HeaderFieldsTooLarge)


def test_many_small_trailers_too_large(decode_error):
    section = b''.join(b'T%d: 1\r\n' % i for i in range(10))
    error = decode_error(ChunkedDecoder(max_trailer_size=32), b'0\r\n' + section + b'\r\n')
    assert error.status == 431


def test_endless_trailer_section_rejected_early():
    decoder = ChunkedDecoder(max_trailer_size=32)
    assert decoder.feed(b'0\r\nX: ' + b'v' * 20) == []
    assert decoder.done is False
    with pytest.raises(errors.HeaderFieldsTooLarge):
        decoder.feed(b'v' * 100)


def test_default_limits():
    decoder = ChunkedDecoder()
    assert (decoder.max_line, decoder.max_trailer_size) == (4096, 16384)
    assert (decoder.done, decoder.rest, decoder.trailers) == (False, b'', {})
