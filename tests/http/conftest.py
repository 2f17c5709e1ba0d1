"""Feeding helpers for the sans-IO parser tests (the h11 ``test_io.py`` model).

Every parser case is fed three ways, selected by the ``mode`` fixture:

- ``whole``: the complete input in one call;
- ``bytewise``: one byte at a time, growing the buffer (head) or calling ``feed`` per byte
  (decoders); nothing may be reported complete before the last byte;
- ``trailing``: the complete input followed by bytes that belong to what comes next and must be
  left over (``buffer[consumed:]`` for the head, ``.rest`` for the body decoders).

A rejection must be raised at the latest by the last byte of the malformed input, in every mode:
a parser that keeps answering "incomplete" to a complete but malformed input hangs a client.
"""

from __future__ import annotations

from typing import Callable, Union

import pytest

from tremolo.http.body import ChunkedDecoder, ContentLengthDecoder
from tremolo.http.errors import ParseError
from tremolo.http.head import HeadReader, RequestHead

Decoder = Union[ContentLengthDecoder, ChunkedDecoder]

MODES = ('whole', 'bytewise', 'trailing')
# What follows a head or a body: the start of a pipelined request.
TRAILING = b'GET /next HTTP/1.1\r\nHost: example.com\r\n\r\n'


def feed_head(reader: HeadReader, data: bytes, mode: str) -> RequestHead:
    """Feed a complete head; check how much was consumed and return the parsed head."""
    if mode == 'whole':
        result = reader.read(data)
        assert result is not None, 'a complete head was reported incomplete'
        head, consumed = result
        assert consumed == len(data)
        return head
    if mode == 'trailing':
        buffer = data + TRAILING
        result = reader.read(buffer)
        assert result is not None, 'a complete head was reported incomplete'
        head, consumed = result
        assert consumed == len(data)
        assert buffer[consumed:] == TRAILING
        return head
    assert mode == 'bytewise'
    for i in range(1, len(data)):
        assert reader.read(data[:i]) is None, f'head reported complete after {i} bytes'
    result = reader.read(data)
    assert result is not None, 'a complete head was reported incomplete'
    head, consumed = result
    assert consumed == len(data)
    return head


def feed_head_error(reader: HeadReader, data: bytes, mode: str) -> ParseError:
    """Feed a malformed head and return the error, which must come by its last byte."""
    if mode == 'whole':
        with pytest.raises(ParseError) as info:
            reader.read(data)
        return info.value
    if mode == 'trailing':
        with pytest.raises(ParseError) as info:
            reader.read(data + TRAILING)
        return info.value
    assert mode == 'bytewise'
    for i in range(1, len(data) + 1):
        try:
            result = reader.read(data[:i])
        except ParseError as exc:
            return exc
        assert result is None, f'malformed head accepted after {i} bytes: {result!r}'
    raise AssertionError('malformed head never rejected: the client would hang')


def feed_decoder(decoder: Decoder, data: bytes, mode: str) -> bytes:
    """Feed a complete body; check ``done`` and ``rest`` and return the decoded bytes."""
    if mode == 'bytewise':
        pieces = []
        for i in range(len(data)):
            assert not decoder.done, f'body reported complete after {i} of {len(data)} bytes'
            pieces.extend(decoder.feed(data[i:i + 1]))
        rest = b''
    else:
        extra = TRAILING if mode == 'trailing' else b''
        assert mode in ('whole', 'trailing')
        pieces = decoder.feed(data + extra)
        rest = extra
    assert decoder.done, 'a complete body was reported incomplete'
    assert decoder.rest == rest
    assert all(isinstance(piece, bytes) and piece for piece in pieces), pieces
    return b''.join(pieces)


def feed_decoder_error(decoder: Decoder, data: bytes, mode: str) -> ParseError:
    """Feed a malformed body and return the error, which must come by its last byte."""
    if mode in ('whole', 'trailing'):
        with pytest.raises(ParseError) as info:
            decoder.feed(data + (TRAILING if mode == 'trailing' else b''))
        return info.value
    assert mode == 'bytewise'
    for i in range(len(data)):
        try:
            decoder.feed(data[i:i + 1])
        except ParseError as exc:
            return exc
        assert not decoder.done, f'malformed body accepted after {i + 1} bytes'
    raise AssertionError('malformed body never rejected: the client would hang')


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """The feeding mode: whole, bytewise or trailing."""
    return request.param


@pytest.fixture
def parse_head(mode: str) -> Callable[..., RequestHead]:
    """``parse_head(data, **limits)``: a fresh HeadReader fed ``data`` in the current mode."""

    def parse(data: bytes, **limits: int) -> RequestHead:
        return feed_head(HeadReader(**limits), data, mode)

    return parse


@pytest.fixture
def head_error(mode: str) -> Callable[..., ParseError]:
    """``head_error(data, **limits)``: the ParseError a malformed head raises in this mode."""

    def parse(data: bytes, **limits: int) -> ParseError:
        return feed_head_error(HeadReader(**limits), data, mode)

    return parse


@pytest.fixture
def decode(mode: str) -> Callable[[Decoder, bytes], bytes]:
    """``decode(decoder, data)``: the body bytes ``decoder`` yields from ``data``."""

    def run(decoder: Decoder, data: bytes) -> bytes:
        return feed_decoder(decoder, data, mode)

    return run


@pytest.fixture
def decode_error(mode: str) -> Callable[[Decoder, bytes], ParseError]:
    """``decode_error(decoder, data)``: the ParseError a malformed body raises in this mode."""

    def run(decoder: Decoder, data: bytes) -> ParseError:
        return feed_decoder_error(decoder, data, mode)

    return run
