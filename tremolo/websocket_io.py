"""The machinery of a WebSocket connection under the handler's API: frames parsed as the
bytes arrive, a bounded queue of message pieces, control frames, the close handshake and
keep-alive pings (RFC 6455 §5.5, §7)."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any, Optional

from .exceptions import ClientDisconnected
from .http.websocket import (
    ABNORMAL_CLOSURE,
    CLOSE,
    GOING_AWAY,
    INTERNAL_ERROR,
    NO_STATUS,
    PING,
    PONG,
    Close,
    Data,
    Event,
    FrameReader,
    Ping,
    Pong,
    ProtocolError,
    close_payload,
    encode_frame,
)
from .inbox import Inbox

if TYPE_CHECKING:
    from .http.deflate import Deflater
    from .types import OptionSource
    from .upgrade import UpgradedStream

logger = logging.getLogger('tremolo')

CONNECTING, OPEN, CLOSING, CLOSED = 'connecting', 'open', 'closing', 'closed'


class WebSocketClosed(ClientDisconnected):
    """The WebSocket connection is closed: raised by sends and receives after the close.

    It is a `ClientDisconnected`: left uncaught, it ends the handler quietly.

    Attributes:
        code: The close code (1000 normal, 1001 going away, 1005 none given, 1006 the
            connection dropped without a close frame, ...).
        reason: The close reason (may be empty).
    """

    def __init__(self, code: int, reason: str = '') -> None:
        super().__init__(f'WebSocket closed with code {code}' + (f': {reason}' if reason else ''))
        self.code = code
        self.reason = reason


class WebSocketIO:
    """State and frames of one WebSocket connection; `tremolo.WebSocket` builds on it.

    Attributes:
        state: ``'connecting'``, ``'open'``, ``'closing'`` (a close frame was sent) or
            ``'closed'``.
        close_timeout: Seconds to wait for the client's answer to a close frame.
        close_code: The close code once closed: the client's (1005 if it gave none), ours
            after a protocol error, or 1006 if the connection dropped.
        close_reason: The close reason that came with `close_code`.
    """

    __slots__ = (
        'state', 'close_timeout', 'close_code', 'close_reason', '_peer', '_options', '_stream',
        '_reader', '_deflater', '_loop', '_inbox', '_input_done', '_partial', '_closed',
        '_pings', '_timer', '_keepalive',
    )

    def __init__(self, peer: Any, options: OptionSource) -> None:
        self.state = CONNECTING
        self.close_timeout = 10.0
        self.close_code: Optional[int] = None
        self.close_reason = ''
        self._peer = peer  # for the log
        self._options = options
        self._stream: Optional[UpgradedStream] = None
        self._reader: Optional[FrameReader] = None
        self._deflater: Optional[Deflater] = None
        self._loop = asyncio.get_running_loop()
        # Message pieces not yet received by the handler: reading the socket pauses when more
        # than body_buffer_size bytes of them wait.
        self._inbox: Inbox[Data] = Inbox(self, self._loop, options.option('body_buffer_size'))
        self._input_done = False  # no more frames will be read
        self._partial = False  # a message was left half-read (by receive_stream)
        self._closed: Optional[asyncio.Future[None]] = None
        self._pings: dict[bytes, tuple[asyncio.Future[float], float]] = {}
        self._timer: Optional[asyncio.TimerHandle] = None
        self._keepalive: Optional[bytes] = None

    def _start(self, stream: UpgradedStream, reader: FrameReader,
               deflater: Optional[Deflater]) -> None:
        """The handshake is answered: frames flow from now on."""
        self._reader = reader
        self._deflater = deflater
        self.state = OPEN
        self._stream = stream
        stream.attach(self)
        self._schedule_keepalive()

    # -- receiving --------------------------------------------------------------------------------

    async def _next_piece(self) -> Data:
        inbox = self._inbox
        while not inbox.items:
            if self._input_done:
                raise self._closed_error()
            if inbox.waiting:
                raise RuntimeError('another task is already receiving from this WebSocket')
            await inbox.wait()
        piece = inbox.items[0]
        return inbox.take(len(piece.data))

    # The inbox's control: reading the connection pauses while the handler is behind.

    def pause_reading(self) -> None:
        if self._stream is not None:
            self._stream.pause_reading()

    def resume_reading(self) -> None:
        if self._stream is not None:
            self._stream.resume_reading()

    async def _skip_rest(self) -> None:
        while self._partial:
            self._partial = not (await self._next_piece()).fin

    # -- sending ----------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.state is not OPEN:
            raise self._closed_error()

    def _send_frame(self, opcode: int, payload: bytes, fin: bool, first: bool) -> None:
        deflater = self._deflater
        if deflater is not None:
            frame = encode_frame(opcode, deflater.deflate(payload, fin), fin=fin, rsv1=first)
        else:
            frame = encode_frame(opcode, payload, fin=fin)
        self._write(frame)

    def _write(self, frame: bytes) -> None:
        stream = self._stream
        if stream is None or stream.closed:
            raise self._closed_error()
        stream.write(frame)

    async def _drain(self) -> None:
        try:
            await self._stream.drain()  # type: ignore[union-attr]
        except ClientDisconnected:
            raise self._closed_error() from None

    def _closed_error(self) -> WebSocketClosed:
        code = self.close_code if self.close_code is not None else ABNORMAL_CLOSURE
        return WebSocketClosed(code, self.close_reason)

    # -- closing ----------------------------------------------------------------------------------

    async def _wait_closed(self) -> None:
        """Wait for the client's close frame (or the end of the connection), at most
        `close_timeout` seconds."""
        assert self._closed is not None
        timer = self._loop.call_later(self.close_timeout, self._close_timed_out)
        try:
            await asyncio.shield(self._closed)
        finally:
            timer.cancel()

    def _send_close(self, payload: bytes) -> None:
        """Send a close frame (once) and stop sending; the connection closes when the client
        answers or `close_timeout` passes."""
        self.state = CLOSING
        if self._closed is None:
            self._closed = self._loop.create_future()
        try:
            self._write(encode_frame(CLOSE, payload))
        except ClientDisconnected:
            self._finished(ABNORMAL_CLOSURE, '')

    def _close_timed_out(self) -> None:
        logger.debug('WebSocket from %s: no answer to the close frame', self._peer)
        self._finished(ABNORMAL_CLOSURE, '')
        if self._stream is not None:
            self._stream.abort()

    def _finished(self, code: int, reason: str) -> None:
        """The connection is over: record why and wake whoever waits."""
        if self.state is CLOSED:
            return
        self.state = CLOSED
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self._input_done = True
        self._stop_keepalive()
        self._inbox.wake()
        closed = self._closed
        if closed is not None and not closed.done():
            closed.set_result(None)
        for waiter, _ in self._pings.values():
            if not waiter.done():
                waiter.set_exception(self._closed_error())
                waiter.exception()  # nobody may be waiting for it: no "never retrieved" log
        self._pings.clear()
        if self._stream is not None:
            self._stream.close()

    def _fail(self, code: int, reason: str) -> None:
        """Fail the connection (RFC 6455 §7.1.7): a close frame with ``code``, then close."""
        logger.debug('closing a WebSocket from %s: %d %s', self._peer, code, reason)
        if self.state is OPEN:
            self._send_close(close_payload(code, reason))
        self.close_code, self.close_reason = code, reason
        self._finished(code, reason)

    # -- fed by the connection (UpgradedStream.attach) --------------------------------------------

    def feed(self, data: bytes) -> None:
        if self._input_done:
            return
        reader = self._reader
        assert reader is not None
        try:
            events = reader.feed(data)
        except ProtocolError as exc:
            # RFC 6455 §7.1.7 fails the connection at the bad frame, not before it: the
            # messages that arrived whole in front of it are the handler's to receive.
            self._handle(exc.events)
            if self.state is not CLOSED:  # a close frame in front of it ended everything
                self._fail(exc.code, exc.reason)
            return
        self._handle(events)

    def _handle(self, events: list[Event]) -> None:
        inbox = self._inbox
        for event in events:
            if type(event) is Data:
                if self.state is OPEN:  # after our close frame, data is dropped
                    inbox.put(event, len(event.data))
            elif type(event) is Ping:
                if self.state is OPEN:  # §5.5.2: answered as soon as practical
                    try:
                        self._write(encode_frame(PONG, event.data))
                    except ClientDisconnected:
                        pass
            elif type(event) is Pong:
                self._pong(event.data)
            else:
                assert isinstance(event, Close)
                self._on_close(event)
                return

    def feed_eof(self) -> None:
        self._finished(ABNORMAL_CLOSURE, '')

    def shutdown(self) -> None:
        """The server is stopping: close with 1001 (going away)."""
        if self.state is OPEN:
            self._send_close(close_payload(GOING_AWAY, 'server shutting down'))
            self._timer = self._loop.call_later(self.close_timeout, self._close_timed_out)

    def _on_close(self, event: Close) -> None:
        self.close_code, self.close_reason = event.code, event.reason
        if self.state is OPEN:
            # §5.5.1: answer with a close frame, echoing the code (none if none was given).
            self._send_close(b'' if event.code == NO_STATUS else close_payload(event.code))
        # The close handshake is complete; the server closes the TCP connection first (§7.1.1).
        self._finished(event.code, event.reason)

    def _pong(self, data: bytes) -> None:
        if data == self._keepalive and self.state is OPEN:
            self._keepalive = None
            self._schedule_keepalive()
        pings = self._pings
        if data in pings:
            # A pong answers its ping and every ping sent before it (§5.5.3 lets a peer answer
            # only the most recent one).
            now = self._loop.time()
            for key in list(pings):
                waiter, sent = pings.pop(key)
                if not waiter.done():
                    waiter.set_result(now - sent)
                if key == data:
                    break

    # -- keep-alive -----------------------------------------------------------------------------

    def _schedule_keepalive(self) -> None:
        self._stop_keepalive()
        interval = self._options.option('websocket_ping_interval') or 0
        if interval > 0 and self.state is OPEN:
            self._timer = self._loop.call_later(interval, self._send_keepalive)

    def _send_keepalive(self) -> None:
        if self.state is not OPEN:
            return
        self._keepalive = data = os.urandom(4)
        try:
            self._write(encode_frame(PING, data))
        except ClientDisconnected:
            return
        timeout = self._options.option('websocket_ping_timeout') or 0
        if timeout > 0:
            self._timer = self._loop.call_later(timeout, self._keepalive_timed_out)

    def _keepalive_timed_out(self) -> None:
        # A peer that does not answer a ping is gone (or stuck): no close handshake with it.
        logger.debug('WebSocket from %s: no pong within the ping timeout', self._peer)
        self._timer = None
        self.close_code, self.close_reason = ABNORMAL_CLOSURE, 'keepalive ping timeout'
        if self.state is OPEN:
            self._send_close(close_payload(INTERNAL_ERROR, 'keepalive ping timeout'))
        self._finished(ABNORMAL_CLOSURE, 'keepalive ping timeout')
        if self._stream is not None:
            self._stream.abort()

    def _stop_keepalive(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
