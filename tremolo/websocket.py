"""WebSocket connections (RFC 6455, with permessage-deflate from RFC 7692) for handlers.

A handler that names a ``websocket`` parameter receives a `WebSocket` for a WebSocket
handshake request. Frames are parsed as they arrive (`tremolo.http.websocket`), so pings are
answered and a close is acknowledged even while the handler is busy; messages wait in a
bounded queue and reading the socket pauses when the handler falls behind.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterable,
    AsyncIterator,
    Iterable,
    Optional,
    Union,
)

from .http.deflate import negotiate
from .http.handshake import accept_key, select_subprotocol, subprotocols
from .http.websocket import (
    BINARY,
    INVALID_DATA,
    NORMAL_CLOSURE,
    PING,
    TEXT,
    UNSUPPORTED_DATA,
    FrameReader,
    close_payload,
    encode_frame,
)
from .websocket_io import CLOSED, CLOSING, CONNECTING, OPEN, WebSocketClosed, WebSocketIO

if TYPE_CHECKING:
    from .request import Request
    from .response import Response
    from .types import OptionSource

logger = logging.getLogger('tremolo')

Message = Union[str, bytes]


class WebSocket(WebSocketIO):
    """One WebSocket connection, from the handshake to the close.

    It is accepted by `accept`, or implicitly by the first send or receive. Until then the
    handler may still refuse it as an HTTP request: raise an `HTTPException` or return a
    result; returning `None` or calling `close` first answers ``403 Forbidden``.

    Attributes:
        request: The handshake request (headers, cookies, query, path parameters).
        subprotocols: The subprotocols the client offered, in its order of preference.
        subprotocol: The subprotocol agreed by `accept`, or `None`.
        max_message_size: The largest message accepted, in bytes (a bigger one closes the
            connection with 1009); from the ``websocket_max_message_size`` option. Change it
            before accepting.
        state: ``'connecting'``, ``'open'``, ``'closing'`` (a close frame was sent) or
            ``'closed'``.
        close_timeout: Seconds to wait for the client's answer to a close frame.
        close_code: The close code once closed: the client's (1005 if it gave none), ours
            after a protocol error, or 1006 if the connection dropped.
        close_reason: The close reason that came with `close_code`.
    """

    __slots__ = ('request', 'subprotocols', 'subprotocol', 'max_message_size', '_response',
                 '_key', '_lock')

    def __init__(self, request: Request, response: Response, key: str,
                 options: OptionSource) -> None:
        super().__init__(request.client, options)
        self.request = request
        self.subprotocols = subprotocols(request.head.headers)
        self.subprotocol: Optional[str] = None
        self.max_message_size: int = options.option('websocket_max_message_size')
        self._response = response
        self._key = key
        self._lock: Optional[asyncio.Lock] = None

    @property
    def accepted(self) -> bool:
        """Whether the handshake was answered with ``101 Switching Protocols``."""
        return self.state is not CONNECTING

    @property
    def closed(self) -> bool:
        """Whether the connection is closed (nothing more can be sent or received)."""
        return self.state is CLOSED

    # -- opening ----------------------------------------------------------------------------------

    async def accept(self, subprotocol: Optional[str] = None,
                     headers: Optional[list[tuple[str, str]]] = None) -> None:
        """Answer the handshake with ``101 Switching Protocols``.

        Args:
            subprotocol: The subprotocol to speak; it must be one the client offered. By
                default, the first of the route's ``websocket_subprotocols`` that the client
                offered, if any.
            headers: Extra headers for the 101 response (e.g. ``Set-Cookie``).

        Raises:
            RuntimeError: Already accepted.
            ValueError: A subprotocol the client did not offer.
        """
        if self.state is not CONNECTING:
            raise RuntimeError('the WebSocket is already accepted')
        if subprotocol is None:
            subprotocol = select_subprotocol(
                self.subprotocols, self._options.option('websocket_subprotocols') or ())
        elif subprotocol not in self.subprotocols:
            raise ValueError(f'the client did not offer the subprotocol {subprotocol!r}')
        answer = [('Sec-WebSocket-Accept', accept_key(self._key))]
        if subprotocol is not None:
            answer.append(('Sec-WebSocket-Protocol', subprotocol))
        inflater = deflater = None
        offer = self.request.head.headers.get(b'sec-websocket-extensions')
        if offer and self._options.option('websocket_compression'):
            agreed = negotiate(offer.decode('latin-1'))
            if agreed is not None:
                answer.append(('Sec-WebSocket-Extensions', agreed.response))
                deflater = agreed.deflater()
                inflater = agreed.inflater()
        answer.extend(headers or ())
        self.subprotocol = subprotocol
        reader = FrameReader(self.max_message_size, inflater=inflater)
        stream = await self._response.upgrade('websocket', answer)
        self._start(stream, reader, deflater)

    async def _open(self) -> None:
        if self.state is CONNECTING:
            await self.accept()

    # -- receiving --------------------------------------------------------------------------------

    async def receive(self) -> Message:
        """The next message: `str` for text, `bytes` for binary.

        Raises:
            WebSocketClosed: The connection closed before a whole message arrived.
        """
        inbox = self._inbox
        if inbox.items and inbox.items[0].fin and not self._partial:
            # The common case: one whole message waits, in one piece.
            return inbox.take(len(inbox.items[0].data)).data
        if self.state is CONNECTING:
            await self.accept()
        if self._partial:
            await self._skip_rest()
        piece = await self._next_piece()
        if piece.fin:
            return piece.data
        parts = [piece.data]
        self._partial = True
        while not piece.fin:
            piece = await self._next_piece()
            parts.append(piece.data)
        self._partial = False
        return ''.join(parts) if piece.text else b''.join(parts)

    async def receive_text(self) -> str:
        """The next message, which must be text (else the connection closes with 1003).

        Raises:
            WebSocketClosed: The connection closed (or a binary message arrived).
        """
        message = await self.receive()
        if not isinstance(message, str):
            await self._refuse(UNSUPPORTED_DATA, 'text message expected')
        return message  # type: ignore[return-value]

    async def receive_bytes(self) -> bytes:
        """The next message, which must be binary (else the connection closes with 1003).

        Raises:
            WebSocketClosed: The connection closed (or a text message arrived).
        """
        message = await self.receive()
        if not isinstance(message, bytes):
            await self._refuse(UNSUPPORTED_DATA, 'binary message expected')
        return message  # type: ignore[return-value]

    async def receive_json(self) -> Any:
        """The next message parsed as JSON (text or UTF-8 binary); a message that is not JSON
        closes the connection with 1007.

        Raises:
            WebSocketClosed: The connection closed (or the message was not JSON).
        """
        message = await self.receive()
        try:
            return json.loads(message)
        except (ValueError, UnicodeDecodeError):
            await self._refuse(INVALID_DATA, 'invalid JSON')

    async def receive_stream(self) -> AsyncIterator[Message]:
        """Yield the next message piece by piece as it arrives (`str` pieces for text,
        `bytes` for binary), in constant memory whatever its size.

        Leaving the loop early discards the rest of that message.

        Raises:
            WebSocketClosed: The connection closed before the message ended.
        """
        await self._open()
        if self._partial:
            await self._skip_rest()
        while True:
            piece = await self._next_piece()
            self._partial = not piece.fin
            if piece.data:
                yield piece.data
            if piece.fin:
                return

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> Message:
        """``async for message in websocket``: each message until the connection closes."""
        try:
            return await self.receive()
        except WebSocketClosed:
            raise StopAsyncIteration from None

    async def _refuse(self, code: int, reason: str) -> None:
        logger.debug('closing a WebSocket from %s: %d %s', self._peer, code, reason)
        await self.close(code, reason)
        raise WebSocketClosed(code, reason)

    # -- sending ----------------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        """Send a text (`str`) or binary (bytes-like) message.

        Raises:
            WebSocketClosed: The connection is closed or closing.
        """
        if self.state is not OPEN:
            await self._open()
            self._check_open()
        if isinstance(message, str):
            opcode, payload = TEXT, message.encode()
        elif isinstance(message, (bytes, bytearray, memoryview)):
            opcode, payload = BINARY, bytes(message)
        else:
            raise TypeError(f'a message is str or bytes, not {type(message).__name__}')
        lock = self._lock
        if lock is not None and lock.locked():  # a fragmented message is being sent
            async with lock:
                self._check_open()
                self._send_frame(opcode, payload, True, True)
        else:
            self._send_frame(opcode, payload, True, True)
        if self._stream.writing_paused:  # type: ignore[union-attr]
            await self._drain()

    async def send_json(self, value: Any) -> None:
        """Send ``value`` as a JSON text message."""
        await self.send(json.dumps(value, separators=(',', ':'), ensure_ascii=False))

    async def send_stream(self, pieces: Union[AsyncIterable[Message], Iterable[Message]]
                          ) -> None:
        """Send one message made of ``pieces``, each in a frame as soon as it is produced
        (fragmentation, RFC 6455 §5.4), waiting while the client is behind.

        The first piece decides the type: `str` pieces make a text message, bytes a binary
        one; no piece at all sends an empty binary message. Other messages sent meanwhile
        wait for this one to end.

        Raises:
            WebSocketClosed: The connection is closed or closing.
            TypeError: A piece of the other type.
        """
        await self._open()
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            self._check_open()
            opcode = 0
            iterator = _aiter(pieces)
            async for piece in iterator:
                if isinstance(piece, str):
                    kind, data = TEXT, piece.encode()
                elif isinstance(piece, (bytes, bytearray, memoryview)):
                    kind, data = BINARY, bytes(piece)
                else:
                    raise TypeError(f'a piece is str or bytes, not {type(piece).__name__}')
                if opcode and kind != opcode:
                    raise TypeError('the pieces of a message are all str or all bytes')
                self._check_open()
                self._send_frame(kind if not opcode else 0, data, False, not opcode)
                opcode = kind
                if self._stream.writing_paused:  # type: ignore[union-attr]
                    await self._drain()
            self._check_open()
            self._send_frame(0 if opcode else BINARY, b'', True, not opcode)

    async def ping(self, data: bytes = b'') -> asyncio.Future[float]:
        """Send a ping; return a future that completes with the round-trip time in seconds
        when the matching pong arrives (``latency = await (await websocket.ping())``).

        Args:
            data: The ping's payload (at most 125 bytes); random by default.

        Raises:
            WebSocketClosed: The connection is closed or closing.
        """
        await self._open()
        self._check_open()
        data = bytes(data) or os.urandom(4)
        if len(data) > 125 or data in self._pings:
            raise ValueError('a ping payload is at most 125 bytes and unique among waiting pings')
        waiter: asyncio.Future[float] = self._loop.create_future()
        self._pings[data] = (waiter, self._loop.time())
        self._write(encode_frame(PING, data))
        return waiter

    # -- closing ----------------------------------------------------------------------------------

    async def close(self, code: int = NORMAL_CLOSURE, reason: str = '') -> None:
        """Close the connection: send a close frame and wait (up to `close_timeout`) for the
        client's answer. Before the handshake is accepted, refuse it with ``403 Forbidden``.

        Args:
            code: The close code: 1000 (normal), 1001, 1003, 1007-1011 or 3000-4999.
            reason: Up to 123 bytes of UTF-8.
        """
        if self.state is CONNECTING:
            if not self._response.headers_sent:
                self._response.set_status(403)
                await self._response.send(b'')
            self.state = CLOSED
            return
        if self.state is OPEN:
            payload = close_payload(code, reason)  # ValueError for a code that may not be sent
            self._send_close(payload)
        if self.state is CLOSING:
            await self._wait_closed()

    def __repr__(self) -> str:
        return f'<WebSocket {self.request.path!r} {self.state}>'


async def _aiter(pieces: Union[AsyncIterable[Message], Iterable[Message]]
                 ) -> AsyncIterator[Message]:
    if hasattr(pieces, '__aiter__'):
        async for piece in pieces:
            yield piece
    else:
        for piece in pieces:
            yield piece
