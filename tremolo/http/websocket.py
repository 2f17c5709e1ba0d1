"""WebSocket frames (RFC 6455 §5): a sans-IO reader that turns bytes into events, and the
functions that encode frames.

`FrameReader.feed` takes whatever bytes arrived and returns the events they complete. Data
frames are not held until they are whole: each call returns the payload received so far as a
`Data` piece (unmasked, inflated and, for text, decoded), so a message of any size flows
through in constant memory. Control frames (at most 125 bytes, §5.5) are returned whole.
Anything the protocol forbids raises a `ProtocolError` carrying the close code to send.
"""

from __future__ import annotations

import codecs
import struct
from typing import Optional, Union

from .deflate import Inflater

# Opcodes (RFC 6455 §5.2, §11.8).
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

# Close codes (RFC 6455 §7.4.1).
NORMAL_CLOSURE = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
UNSUPPORTED_DATA = 1003
NO_STATUS = 1005  # never sent: reported when a close frame has no code
ABNORMAL_CLOSURE = 1006  # never sent: reported when the connection dropped without a close
INVALID_DATA = 1007
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011

# Codes a peer may send (§7.4.1, §7.4.2 and the IANA registry: 1012-1014 were added later):
# 1004-1006 and 1015 are reserved and 1016-2999 unassigned; 3000-4999 belong to libraries
# and applications.
_SENDABLE = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))

_MAX_CONTROL_PAYLOAD = 125  # §5.5
_U16 = struct.Struct('!H')
_U64 = struct.Struct('!Q')
_Utf8Decoder = codecs.getincrementaldecoder('utf-8')


class ProtocolError(Exception):
    """The peer broke the protocol: the connection must be closed with `code` (§7.1.7).

    Attributes:
        events: What the same `FrameReader.feed` call completed before the fault (the frames
            in front of a bad one are valid and are delivered before the connection fails).
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.events: list[Event] = []


class Data:
    """A piece of a text or binary message.

    Attributes:
        text: Whether the message is text (then `data` is a `str`).
        data: The piece: `str` for text, `bytes` for binary; possibly empty.
        fin: Whether the piece ends the message.
    """

    __slots__ = ('text', 'data', 'fin')

    def __init__(self, text: bool, data: Union[str, bytes], fin: bool) -> None:
        self.text = text
        self.data = data
        self.fin = fin

    def __repr__(self) -> str:
        return f'Data(text={self.text}, data={self.data!r}, fin={self.fin})'


class Ping:
    """A ping (§5.5.2): the peer expects a pong with the same `data`."""

    __slots__ = ('data',)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f'Ping({self.data!r})'


class Pong(Ping):
    """A pong (§5.5.3): an answer to a ping, or an unsolicited heartbeat."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f'Pong({self.data!r})'


class Close:
    """A close frame (§5.5.1): `code` is 1005 (`NO_STATUS`) when the frame had none."""

    __slots__ = ('code', 'reason')

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f'Close({self.code}, {self.reason!r})'


Event = Union[Data, Ping, Pong, Close]


def unmask(data: bytes, mask: bytes) -> bytes:
    """XOR ``data`` with the repeated 4-byte ``mask`` (§5.3).

    One XOR of two big integers: linear, and far faster in pure Python than a loop per byte.
    """
    size = len(data)
    if not size:
        return data
    key = mask * (size // 4 + 1)
    return (int.from_bytes(data, 'little') ^ int.from_bytes(key[:size], 'little')).to_bytes(
        size, 'little')


def encode_frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False,
    mask: Optional[bytes] = None,
) -> bytes:
    """One frame (§5.2). Servers send unmasked frames; clients pass a 4-byte ``mask``."""
    first = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0)
    size = len(payload)
    bit = 0x80 if mask is not None else 0
    if size < 126:
        head = bytes((first, bit | size))
    elif size < 65536:
        head = bytes((first, bit | 126)) + _U16.pack(size)
    else:
        head = bytes((first, bit | 127)) + _U64.pack(size)
    if mask is not None:
        return head + mask + unmask(payload, mask)
    return head + payload


def close_payload(code: int = NORMAL_CLOSURE, reason: str = '') -> bytes:
    """The payload of a close frame: the code, then the reason in UTF-8 (§5.5.1).

    Raises:
        ValueError: A code that may not be sent, or a reason longer than 123 bytes.
    """
    if code not in _SENDABLE and not 3000 <= code <= 4999:
        raise ValueError(f'close code {code} may not be sent')
    data = reason.encode()
    if len(data) > _MAX_CONTROL_PAYLOAD - 2:
        raise ValueError('a close reason holds at most 123 bytes of UTF-8')
    return _U16.pack(code) + data


def parse_close(payload: bytes) -> Close:
    """Read a close frame's payload (§5.5.1, §7.4).

    Raises:
        ProtocolError: A one-byte payload or a code that may not be sent (1002), or a reason
            that is not UTF-8 (1007).
    """
    if not payload:
        return Close(NO_STATUS, '')
    if len(payload) == 1:
        raise ProtocolError(PROTOCOL_ERROR, 'close frame with a one-byte payload')
    code = _U16.unpack_from(payload)[0]
    if code not in _SENDABLE and not 3000 <= code <= 4999:
        raise ProtocolError(PROTOCOL_ERROR, f'invalid close code {code}')
    try:
        reason = payload[2:].decode('utf-8')
    except UnicodeDecodeError:
        raise ProtocolError(INVALID_DATA, 'close reason is not UTF-8') from None
    return Close(code, reason)


class FrameReader:
    """Parses the frames of one direction of a connection.

    Args:
        max_message_size: The largest message accepted, in bytes (after inflating); a bigger
            one is refused with 1009 as soon as its size is known.
        require_mask: Whether frames must be masked (a server reading a client, §5.1) or
            must not be (a client reading a server).
        inflater: The permessage-deflate decompressor, when that extension was negotiated.
    """

    __slots__ = (
        'max_message_size', 'require_mask', 'inflater', '_buffer', '_remaining', '_mask',
        '_offset', '_fin', '_opcode', '_message', '_compressed', '_size', '_decoder',
        '_control',
    )

    def __init__(
        self, max_message_size: int, *, require_mask: bool = True,
        inflater: Optional[Inflater] = None,
    ) -> None:
        self.max_message_size = max_message_size
        self.require_mask = require_mask
        self.inflater = inflater
        self._buffer = b''  # an incomplete frame head, or an incomplete control frame
        self._remaining = 0  # payload bytes of the current data frame still to come
        self._mask: Optional[bytes] = None
        self._offset = 0  # position in the mask of the next payload byte
        self._fin = False
        self._opcode = 0  # TEXT or BINARY while a message is in progress, else 0
        self._message = False  # inside a data frame's payload
        self._compressed = False
        self._size = 0  # bytes of the current message so far
        self._decoder: Optional[codecs.IncrementalDecoder] = None
        self._control: Optional[tuple[int, int, Optional[bytes]]] = None

    @property
    def in_message(self) -> bool:
        """Whether a fragmented message has started and not ended."""
        return self._opcode != 0

    def feed(self, data: bytes) -> list[Event]:
        """Parse ``data`` (following what was fed before); return the events it completes.

        Raises:
            ProtocolError: The peer broke the protocol; nothing more may be fed. Its
                ``events`` are those completed before the fault.
        """
        events: list[Event] = []
        try:
            self._parse(data, events)
        except ProtocolError as exc:
            exc.events = events
            raise
        return events

    def _parse(self, data: bytes, events: list[Event]) -> None:
        if self._buffer:
            data = self._buffer + data
            self._buffer = b''
        pos = 0
        end = len(data)
        while True:
            if self._message:
                if pos == end and self._remaining:
                    break
                take = min(self._remaining, end - pos)
                chunk = data[pos:pos + take] if (pos or take < end) else data
                pos += take
                self._remaining -= take
                self._payload(chunk, self._remaining == 0, events)
                continue
            if self._control is not None:
                opcode, size, mask = self._control
                if end - pos < size:
                    self._buffer = data[pos:]
                    break
                payload = data[pos:pos + size]
                pos += size
                self._control = None
                if mask is not None:
                    payload = unmask(payload, mask)
                events.append(self._control_event(opcode, payload))
                continue
            if pos == end:
                break
            used = self._head(data, pos, end)
            if not used:
                self._buffer = data[pos:]
                break
            pos += used

    def _head(self, data: bytes, pos: int, end: int) -> int:
        """Read a frame head at ``pos``; return its length, or 0 while it is incomplete."""
        if end - pos < 2:
            return 0
        first = data[pos]
        second = data[pos + 1]
        size = second & 0x7F
        used = 2
        if size == 126:
            if end - pos < 4:
                return 0
            size = _U16.unpack_from(data, pos + 2)[0]
            used = 4
        elif size == 127:
            if end - pos < 10:
                return 0
            size = _U64.unpack_from(data, pos + 2)[0]
            if size >> 63:  # §5.2: the most significant bit MUST be 0
                raise ProtocolError(PROTOCOL_ERROR, 'frame length with the top bit set')
            used = 10
        masked = second & 0x80
        mask = None
        if masked:
            if end - pos < used + 4:
                return 0
            mask = data[pos + used:pos + used + 4]
            used += 4
        fin = first & 0x80
        rsv1 = first & 0x40
        opcode = first & 0x0F
        # Checked once the head is complete so that a bad frame is refused whatever the feeding.
        if first & 0x30:
            raise ProtocolError(PROTOCOL_ERROR, 'reserved bits set (no extension uses them)')
        if bool(masked) != self.require_mask:
            # §5.1: a server MUST close on an unmasked frame; a client on a masked one.
            raise ProtocolError(PROTOCOL_ERROR, 'masked frame expected' if self.require_mask
                                else 'unexpected masked frame')
        if opcode >= CLOSE:
            if opcode > PONG:
                raise ProtocolError(PROTOCOL_ERROR, f'reserved opcode {opcode:#x}')
            # §5.5: control frames are never fragmented, compressed or longer than 125 bytes.
            if not fin:
                raise ProtocolError(PROTOCOL_ERROR, 'fragmented control frame')
            if rsv1:
                raise ProtocolError(PROTOCOL_ERROR, 'RSV1 set on a control frame')
            if size > _MAX_CONTROL_PAYLOAD:
                raise ProtocolError(PROTOCOL_ERROR, 'control frame longer than 125 bytes')
            self._control = (opcode, size, mask)
            return used
        if opcode == CONTINUATION:
            if not self._opcode:
                raise ProtocolError(PROTOCOL_ERROR, 'continuation frame outside a message')
            if rsv1:  # RFC 7692 §6.1: RSV1 is set on the first frame of a message only
                raise ProtocolError(PROTOCOL_ERROR, 'RSV1 set on a continuation frame')
        elif opcode == TEXT or opcode == BINARY:
            if self._opcode:
                raise ProtocolError(PROTOCOL_ERROR, 'new message inside a fragmented message')
            if rsv1 and self.inflater is None:
                raise ProtocolError(PROTOCOL_ERROR, 'RSV1 set without a negotiated extension')
            self._opcode = opcode
            self._compressed = bool(rsv1)
            self._size = 0
            self._decoder = None
        else:
            raise ProtocolError(PROTOCOL_ERROR, f'reserved opcode {opcode:#x}')
        if not self._compressed and self._size + size > self.max_message_size:
            # Refused from the head alone: the payload is never buffered.
            raise ProtocolError(MESSAGE_TOO_BIG, 'message too big')
        self._message = True
        self._remaining = size
        self._mask = mask
        self._offset = 0
        self._fin = bool(fin)
        return used

    def _payload(self, chunk: bytes, frame_done: bool, events: list[Event]) -> None:
        """Turn a piece of a data frame's payload into a `Data` event."""
        mask = self._mask
        if mask is not None and chunk:
            offset = self._offset
            if offset:
                mask = mask[offset:] + mask[:offset]
            self._offset = (offset + len(chunk)) & 3
            chunk = unmask(chunk, mask)
        last = frame_done and self._fin
        if frame_done:
            self._message = False
        if self._compressed:
            assert self.inflater is not None
            room = self.max_message_size - self._size
            try:
                inflated = self.inflater.inflate(chunk, last, room)
            except ValueError as exc:
                raise ProtocolError(INVALID_DATA, str(exc)) from None
            if inflated is None:
                raise ProtocolError(MESSAGE_TOO_BIG, 'message too big once inflated')
            chunk = inflated
            self._size += len(chunk)
        else:
            self._size += len(chunk)
        text = self._opcode == TEXT
        if last:
            self._opcode = 0
        if not chunk and not last:
            return  # nothing to report until more arrives
        if text:
            decoder = self._decoder
            try:
                if last and decoder is None:
                    piece: Union[str, bytes] = chunk.decode('utf-8')  # a whole message
                else:
                    if decoder is None:
                        decoder = self._decoder = _Utf8Decoder()
                    piece = decoder.decode(chunk, last)
            except UnicodeDecodeError:
                raise ProtocolError(INVALID_DATA, 'text message is not UTF-8') from None
            if piece or last:  # a partial character decodes to nothing yet
                events.append(Data(True, piece, last))
        else:
            events.append(Data(False, chunk, last))

    def _control_event(self, opcode: int, payload: bytes) -> Event:
        if opcode == PING:
            return Ping(payload)
        if opcode == PONG:
            return Pong(payload)
        return parse_close(payload)
