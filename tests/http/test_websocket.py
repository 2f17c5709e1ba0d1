"""The sans-IO WebSocket frame reader and encoder (RFC 6455 §5), every case fed whole, byte by
byte and followed by the start of a next frame (the ``mode`` fixture)."""

from __future__ import annotations

import struct
import zlib

import pytest

from tremolo.http.deflate import Deflater, Inflater
from tremolo.http.websocket import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    Close,
    Data,
    FrameReader,
    Ping,
    Pong,
    ProtocolError,
    close_payload,
    encode_frame,
    parse_close,
    unmask,
)

MASK = b'\x37\xfa\x21\x3d'
# The start of a next frame (a masked ping): it must stay pending until it is whole.
NEXT = encode_frame(PING, b'next', mask=b'\x01\x02\x03\x04')


def frame(opcode: int, payload: bytes = b'', fin: bool = True, rsv1: bool = False,
          mask: bytes | None = MASK) -> bytes:
    return encode_frame(opcode, payload, fin=fin, rsv1=rsv1, mask=mask)


def summary(events: list) -> list[tuple]:
    """Events with consecutive pieces of a message joined: ``('text', 'abc')``, ..."""
    out: list[tuple] = []
    parts: list = []
    for event in events:
        if isinstance(event, Data):
            parts.append(event.data)
            if event.fin:
                kind = 'text' if event.text else 'binary'
                out.append((kind, ('' if event.text else b'').join(parts)))
                parts = []
        elif isinstance(event, Pong):
            out.append(('pong', event.data))
        elif isinstance(event, Ping):
            out.append(('ping', event.data))
        else:
            assert isinstance(event, Close)
            out.append(('close', event.code, event.reason))
    assert parts == [], 'a message was left unfinished'
    return out


def feed(reader: FrameReader, data: bytes, mode: str, after: bytes = NEXT) -> list[tuple]:
    if mode == 'whole':
        events = reader.feed(data)
    elif mode == 'bytewise':
        events = []
        for i in range(len(data)):
            events += reader.feed(data[i:i + 1])
    else:
        assert mode == 'trailing'
        events = reader.feed(data + after[:5])
        assert summary(reader.feed(after[5:])) == [('ping', b'next')]
    for event in events:
        if isinstance(event, Data):
            assert isinstance(event.data, str if event.text else bytes)
    return summary(events)


def feed_error(reader: FrameReader, data: bytes, mode: str) -> ProtocolError:
    """The error a bad input raises, which must come by its last byte."""
    if mode == 'bytewise':
        for i in range(len(data)):
            try:
                reader.feed(data[i:i + 1])
            except ProtocolError as exc:
                return exc
        raise AssertionError('bad frame never refused: the client would hang')
    with pytest.raises(ProtocolError) as info:
        reader.feed(data + (NEXT if mode == 'trailing' else b''))
    return info.value


@pytest.fixture
def reader() -> FrameReader:
    return FrameReader(max_message_size=1 << 20)


# -- frames ------------------------------------------------------------------------------------

def test_rfc_example_masked_text(reader, mode):
    # RFC 6455 §5.7: a single-frame masked text message containing "Hello".
    data = bytes.fromhex('818537fa213d7f9f4d5158')
    assert feed(reader, data, mode) == [('text', 'Hello')]


def test_rfc_example_fragmented_text(reader, mode):
    data = frame(TEXT, b'Hel', fin=False) + frame(CONTINUATION, b'lo')
    assert feed(reader, data, mode) == [('text', 'Hello')]
    assert not reader.in_message


@pytest.mark.parametrize('size', [0, 1, 125, 126, 65535, 65536, 200000])
def test_payload_lengths(reader, mode, size):
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    data = frame(BINARY, payload)  # byte by byte too: the reader must stay linear
    assert feed(reader, data, mode) == [('binary', payload)]


def test_length_encodings():
    assert encode_frame(BINARY, b'x' * 125)[:2] == b'\x82\x7d'
    assert encode_frame(BINARY, b'x' * 126)[:4] == b'\x82\x7e\x00\x7e'
    assert encode_frame(BINARY, b'x' * 65536)[:10] == b'\x82\x7f' + struct.pack('!Q', 65536)
    assert encode_frame(TEXT, b'', fin=False) == b'\x01\x00'
    assert encode_frame(TEXT, b'a', rsv1=True) == b'\xc1\x01a'


def test_unmask_roundtrip():
    data = bytes(range(256)) * 3 + b'xyz'
    assert unmask(unmask(data, MASK), MASK) == data
    assert unmask(b'', MASK) == b''
    assert unmask(b'\x00\x00\x00\x00\x00', MASK) == MASK + MASK[:1]


def test_empty_messages(reader, mode):
    data = (frame(TEXT) + frame(BINARY) + frame(TEXT, b'', fin=False)
            + frame(CONTINUATION, b'', fin=False) + frame(CONTINUATION))
    assert feed(reader, data, mode) == [('text', ''), ('binary', b''), ('text', '')]


def test_control_frames_inside_a_fragmented_message(reader, mode):
    data = (frame(BINARY, b'ab', fin=False) + frame(PING, b'p1') + frame(CONTINUATION, b'cd',
            fin=False) + frame(PONG, b'p2') + frame(CONTINUATION, b'ef') + frame(CLOSE))
    assert feed(reader, data, mode) == [
        ('ping', b'p1'), ('pong', b'p2'), ('binary', b'abcdef'), ('close', 1005, ''),
    ]


def test_many_messages_in_one_feed(reader, mode):
    data = b''.join(frame(TEXT, f'm{i}'.encode()) for i in range(50))
    assert feed(reader, data, mode) == [('text', f'm{i}') for i in range(50)]


def test_client_side_reads_unmasked_frames(mode):
    reader = FrameReader(1 << 20, require_mask=False)
    data = frame(TEXT, b'hi', mask=None) + frame(CLOSE, close_payload(1001, 'bye'), mask=None)
    after = encode_frame(PING, b'next')
    assert feed(reader, data, mode, after) == [('text', 'hi'), ('close', 1001, 'bye')]


# -- close frames ------------------------------------------------------------------------------

@pytest.mark.parametrize('code', [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
                                  1013, 1014, 3000, 4999])
def test_valid_close_codes(reader, mode, code):
    data = frame(CLOSE, struct.pack('!H', code) + 'départ'.encode())
    assert feed(reader, data, mode) == [('close', code, 'départ')]


@pytest.mark.parametrize('code', [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_invalid_close_codes(reader, mode, code):
    assert feed_error(reader, frame(CLOSE, struct.pack('!H', code)), mode).code == 1002


def test_close_with_one_byte(reader, mode):
    assert feed_error(reader, frame(CLOSE, b'\x03'), mode).code == 1002


def test_close_reason_not_utf8(reader, mode):
    assert feed_error(reader, frame(CLOSE, b'\x03\xe8\xff'), mode).code == 1007


def test_close_payload():
    assert close_payload() == b'\x03\xe8'
    assert close_payload(4000, 'x') == b'\x0f\xa0x'
    assert parse_close(b'').code == 1005
    for code in (1005, 1006, 999, 5000):
        with pytest.raises(ValueError):
            close_payload(code)
    with pytest.raises(ValueError):
        close_payload(1000, 'é' * 62)  # 124 bytes


# -- protocol errors ---------------------------------------------------------------------------

@pytest.mark.parametrize('data', [
    pytest.param(frame(TEXT, b'hi', mask=None), id='unmasked client frame'),
    pytest.param(b'\xa1\x80' + MASK, id='rsv2'),
    pytest.param(b'\x91\x80' + MASK, id='rsv3'),
    pytest.param(frame(TEXT, b'x', rsv1=True), id='rsv1 without extension'),
    pytest.param(frame(0x3, b'x'), id='reserved data opcode 3'),
    pytest.param(frame(0x7, b'x'), id='reserved data opcode 7'),
    pytest.param(frame(0xB, b'x'), id='reserved control opcode B'),
    pytest.param(frame(0xF, b''), id='reserved control opcode F'),
    pytest.param(frame(PING, b'x', fin=False), id='fragmented ping'),
    pytest.param(frame(PING, b'x' * 126), id='ping longer than 125'),
    pytest.param(frame(CLOSE, b'\x03\xe8', rsv1=True), id='compressed close'),
    pytest.param(frame(CONTINUATION, b'x'), id='continuation first'),
    pytest.param(frame(TEXT, b'a', fin=False) + frame(TEXT, b'b'), id='text inside text'),
    pytest.param(frame(BINARY, b'a', fin=False) + frame(PING) + frame(BINARY, b'b'),
                 id='binary inside binary after a ping'),
    pytest.param(b'\x82\xff' + b'\x80' + b'\x00' * 7 + MASK, id='64-bit length top bit'),
])
def test_protocol_errors(reader, mode, data):
    assert feed_error(reader, data, mode).code == 1002


@pytest.mark.parametrize('bad', [
    pytest.param(frame(0xB, b'x'), id='reserved control opcode'),
    pytest.param(frame(CONTINUATION, b'x'), id='continuation with nothing to continue'),
    pytest.param(frame(TEXT, b'\xff'), id='invalid UTF-8'),
])
def test_events_in_front_of_a_protocol_error_are_kept(reader, bad):
    # The frames before the bad one are valid: the error carries them, so that they can be
    # delivered before the connection fails (RFC 6455 §7.1.7 fails it at the bad frame).
    good = frame(TEXT, b'first') + frame(PING, b'p') + frame(BINARY, b'sec', fin=False)
    with pytest.raises(ProtocolError) as info:
        reader.feed(good + frame(CONTINUATION, b'ond') + bad)
    assert summary(info.value.events) == [('text', 'first'), ('ping', b'p'),
                                          ('binary', b'second')]


def test_a_protocol_error_alone_carries_no_events(reader):
    with pytest.raises(ProtocolError) as info:
        reader.feed(frame(0xB, b'x'))
    assert info.value.events == []


def test_masked_frame_refused_by_a_client(mode):
    reader = FrameReader(1 << 20, require_mask=False)
    assert feed_error(reader, frame(TEXT, b'hi'), mode).code == 1002


# -- UTF-8 -------------------------------------------------------------------------------------

@pytest.mark.parametrize('payload', [b'\xff', b'\xce', b'a\xc0\xafb', b'\xed\xa0\x80',
                                     b'\xf4\x90\x80\x80'])
def test_invalid_utf8(reader, mode, payload):
    assert feed_error(reader, frame(TEXT, payload), mode).code == 1007


def test_utf8_split_across_fragments(reader, mode):
    text = 'κόσμε ✓ 𝄞'.encode()
    pieces = [text[i:i + 1] for i in range(len(text))]
    data = frame(TEXT, pieces[0], fin=False) + b''.join(
        frame(CONTINUATION, piece, fin=False) for piece in pieces[1:]) + frame(CONTINUATION)
    assert feed(reader, data, mode) == [('text', 'κόσμε ✓ 𝄞')]


def test_invalid_utf8_across_fragments(reader, mode):
    data = frame(TEXT, b'\xce', fin=False) + frame(CONTINUATION, b'A')
    assert feed_error(reader, data, mode).code == 1007


def test_truncated_utf8_at_the_end_of_a_fragmented_message(reader, mode):
    data = frame(TEXT, b'ok', fin=False) + frame(CONTINUATION, b'\xe2\x9c')
    assert feed_error(reader, data, mode).code == 1007


def test_invalid_utf8_fails_fast(reader):
    # The bad byte is refused in the first fragment, before the message ends.
    with pytest.raises(ProtocolError) as info:
        reader.feed(frame(TEXT, b'ok\xf5', fin=False))
    assert info.value.code == 1007


# -- size limit --------------------------------------------------------------------------------

def test_message_too_big_from_the_head_alone(mode):
    reader = FrameReader(max_message_size=100)
    # Only the head is sent: the 1009 comes before any payload.
    data = encode_frame(BINARY, b'x' * 101, mask=MASK)[:8]
    assert feed_error(reader, data, mode).code == 1009


def test_message_too_big_across_fragments(mode):
    reader = FrameReader(max_message_size=100)
    data = frame(BINARY, b'x' * 60, fin=False) + frame(CONTINUATION, b'x' * 41)
    assert feed_error(reader, data, mode).code == 1009


def test_message_at_the_limit(mode):
    reader = FrameReader(max_message_size=100)
    data = frame(BINARY, b'x' * 60, fin=False) + frame(CONTINUATION, b'x' * 40)
    assert feed(reader, data, mode) == [('binary', b'x' * 100)]


# -- permessage-deflate ------------------------------------------------------------------------

def deflated(payload: bytes, deflater: Deflater | None = None) -> bytes:
    return (deflater or Deflater()).deflate(payload)


def test_compressed_message(mode):
    reader = FrameReader(1 << 20, inflater=Inflater())
    text = 'compressible ' * 200
    data = frame(TEXT, deflated(text.encode()), rsv1=True) + frame(TEXT, b'plain')
    assert feed(reader, data, mode) == [('text', text), ('text', 'plain')]


def test_compressed_fragmented_message_with_context_takeover(mode):
    reader = FrameReader(1 << 20, inflater=Inflater())
    deflater = Deflater()
    first = deflater.deflate(b'abc' * 100, last=False)
    second = deflater.deflate(b'def' * 100, last=True)
    again = deflater.deflate(b'abc' * 100)  # refers back to the first message's window
    data = (frame(BINARY, first, fin=False, rsv1=True) + frame(PING) + frame(CONTINUATION, second)
            + frame(BINARY, again, rsv1=True))
    assert feed(reader, data, mode) == [
        ('ping', b''), ('binary', b'abc' * 100 + b'def' * 100), ('binary', b'abc' * 100),
    ]


def test_rsv1_on_a_continuation_frame(mode):
    reader = FrameReader(1 << 20, inflater=Inflater())
    data = frame(TEXT, deflated(b'a'), fin=False, rsv1=True) + frame(CONTINUATION, b'', rsv1=True)
    assert feed_error(reader, data, mode).code == 1002


def test_zip_bomb_is_refused_within_the_limit(mode):
    limit = 1 << 20
    reader = FrameReader(limit, inflater=Inflater())
    bomb = deflated(bytes(50 << 20))  # 50 MiB of zeros in about 50 KB
    assert len(bomb) < 100_000
    data = frame(BINARY, bomb, rsv1=True)
    if mode == 'bytewise':
        data = data[:4000]  # the limit is crossed long before the end
    assert feed_error(reader, data, mode).code == 1009


def test_compressed_message_at_the_limit(mode):
    reader = FrameReader(1000, inflater=Inflater())
    data = frame(BINARY, deflated(b'z' * 1000), rsv1=True)
    assert feed(reader, data, mode) == [('binary', b'z' * 1000)]
    reader = FrameReader(999, inflater=Inflater())
    assert feed_error(reader, data, mode).code == 1009


def test_corrupt_compressed_data(mode):
    reader = FrameReader(1 << 20, inflater=Inflater())
    assert feed_error(reader, frame(BINARY, b'\xff\xff\xff\xff', rsv1=True), mode).code == 1007


def test_deflater_strips_the_sync_flush_tail():
    out = Deflater().deflate(b'hello')
    assert not out.endswith(b'\x00\x00\xff\xff')
    inflate = zlib.decompressobj(-15)
    assert inflate.decompress(out + b'\x00\x00\xff\xff') == b'hello'


def test_deflater_no_context_takeover():
    shared, reset = Deflater(), Deflater(no_context_takeover=True)
    message = b'the same words again and again ' * 4
    assert len(shared.deflate(message)) == len(reset.deflate(message))
    assert len(shared.deflate(message)) < len(reset.deflate(message))
    assert reset.deflate(message) == Deflater().deflate(message)


def test_inflater_no_context_takeover_starts_afresh():
    inflater = Inflater(no_context_takeover=True)
    deflater = Deflater(no_context_takeover=True)
    for _ in range(3):
        assert inflater.inflate(deflater.deflate(b'again'), True, 100) == b'again'
