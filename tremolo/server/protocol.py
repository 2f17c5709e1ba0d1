"""The asyncio Protocol: bytes from the socket to requests, responses back to the socket.

One `HTTPProtocol` per connection. It feeds the sans-IO head reader and body decoders,
answers parse errors itself (with the status they carry, then closes), runs one request at a
time through the `tremolo.types.Dispatcher` (pipelined requests wait in the buffer, so answers
stay in order), applies read backpressure, decides keep-alive, and enforces its `Deadlines`
when the worker's sweep asks. Responses write through its `Output`; it knows nothing of
routing, middleware or injection.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import TYPE_CHECKING, Any, Optional

from ..body_stream import BodyStream
from ..connection import Connection
from ..exceptions import BadRequest, ClientDisconnected, RequestTimeout
from ..http.body import ChunkedDecoder, ContentLengthDecoder
from ..http.dates import dates
from ..http.errors import ParseError
from ..http.head import HeadReader
from ..http.status import status_line
from ..request import Request
from ..response import Response
from ..telemetry import ExchangeRecord
from ..upgrade import UpgradedStream
from . import eager
from .deadlines import (
    BODY_TOO_SLOW,
    HANDLER_TIMEOUT,
    HEAD_TIMEOUT,
    HEAD_TOO_SLOW,
    IDLE_TIMEOUT,
    Deadlines,
)
from .output import Output
from .state import ANSWERING, IDLE, REFUSED, STREAMING_EVENTS, UPGRADED, WAIT

if TYPE_CHECKING:
    from .state import ServerState

logger = logging.getLogger('tremolo')

# The reasons reading is paused (a bit set: reading resumes when no reason is left).
_BODY_FULL = 1
_PIPELINE_FULL = 2
_UPGRADE_FULL = 4

#: Seconds a connection idle between requests when the server begins to stop may still bring
#: one last request: a client that sent it just as the server stopped would otherwise see its
#: connection reset under it (the request is answered with ``Connection: close``).
IDLE_LINGER = 0.5

#: The ``kind`` of a request the server rejects itself, by the status it answers.
REJECTED_KINDS = {
    400: 'bad_request', 413: 'payload_too_large', 414: 'uri_too_long',
    417: 'expectation_failed', 431: 'header_fields_too_large', 501: 'not_implemented',
    505: 'version_not_supported',
}


class HTTPProtocol(asyncio.Protocol):
    """HTTP/1.1 over one transport.

    Attributes:
        output: The writing side of the connection, the channel responses write to.
        deadlines: The connection's timeouts.
        connection: What handlers see of the connection.
        closed: The connection is lost.
        counted_host: The client address counted against ``max_connections_per_ip``.
    """

    # Slots, not a dict: an idle keep-alive connection costs a few hundred bytes less, and
    # 10,000 of them a few megabytes.
    __slots__ = (
        'state', 'loop', 'options', 'output', 'deadlines', 'transport', 'connection', 'closed',
        'counted_host', '_head_reader', '_buffer', '_request', '_response', '_body',
        '_decoder', '_paused', '_reading_paused', '_eof', '_refused', '_upgraded',
        '_connect_hooks', '_task', '_starting', '_cancel_on_disconnect', '_cancelled',
        '_detaching', '_started', '_last_call', '__weakref__',
    )

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.loop = state.loop
        options = state.options
        self.options = options
        self.output = Output(self, state.loop, options, state.server_header)
        self.deadlines = Deadlines(options)
        self.transport: Any = None
        self.connection: Optional[Connection] = None
        self.closed = False
        self.counted_host: Optional[str] = None
        self._head_reader = HeadReader(
            options.max_request_line, options.max_header_size, options.max_header_count
        )
        self._buffer = b''
        self._request: Optional[Request] = None
        self._response: Optional[Response] = None
        self._body: Optional[BodyStream] = None
        self._decoder: Optional[ContentLengthDecoder | ChunkedDecoder] = None
        self._paused = 0
        self._reading_paused = False
        self._eof = False
        self._refused = False
        self._upgraded: Optional[UpgradedStream] = None
        self._connect_hooks: Optional[asyncio.Future[None]] = None
        self._task: Optional[asyncio.Task[None]] = None
        self._starting = False
        self._cancel_on_disconnect = False
        #: The handler was cancelled (a timeout, a forced stop): answer 503, not 500.
        self._cancelled = False
        #: The response whose handler asked to go on without its connection (`detach`).
        self._detaching: Optional[Response] = None
        #: When the current request's head was complete (the event loop's time).
        self._started = 0.0
        #: The server is stopping and this connection was idle: one more request is answered.
        self._last_call = False

    # -- asyncio callbacks -----------------------------------------------------------------------

    def connection_made(self, transport: Any, proxy_header: Any = None) -> None:
        # ``proxy_header``: the PROXY protocol header read by `tremolo.server.proxied` first.
        self.transport = transport
        fd = -1
        sock = transport.get_extra_info('socket')
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # pragma: no cover - the socket went away already
                pass
            if transport.get_extra_info('sslcontext') is None and hasattr(os, 'writev'):
                fd = sock.fileno()
        self.output.connected(transport, fd)
        self.connection = Connection(transport, self.state.trusted_proxies, proxy_header)
        decision = self.state.admit(self, self.connection.client_host)
        if decision == WAIT:
            transport.pause_reading()  # until `admitted`: what it sends waits in the kernel
        else:
            self._open(decision)

    def admitted(self, decision: int) -> None:
        """A connection that waited for a free slot (``max_connections``) may go on."""
        if not self.closed:
            self.transport.resume_reading()
            self._open(decision)

    def _open(self, decision: int) -> None:
        self._refused = decision == REFUSED
        self.deadlines.connected(self.loop.time())
        hooks = self.state.dispatcher.connection_made(self.connection)  # type: ignore[arg-type]
        if hooks is not None:
            self._connect_hooks = asyncio.ensure_future(hooks)
        if self.state.closing:
            self.shutdown()

    def data_received(self, data: bytes) -> None:
        if self._upgraded is not None:
            self._upgraded.feed(data)
            return
        if self._decoder is not None:
            data = self._feed_body(data)
            if not data:
                return
        if self._request is not None or self.output.closing:
            if self._detaching is self._response and not self.output.closing:
                # The handler answered and carries on (detach): the next request goes ahead.
                self._buffer += data
                self._release(self._response)  # type: ignore[arg-type]
                return
            # A pipelined request: it waits until the current answer is complete.
            self._buffer += data
            if len(self._buffer) > self.options.max_pipelined_bytes:
                self._pause(_PIPELINE_FULL)
            if self._last_call and self._request is None:
                self._start_last()
            return
        self._buffer = self._buffer + data if self._buffer else data
        self._next_request()

    def eof_received(self) -> Optional[bool]:
        keep_open = self._input_ended()
        # Over TLS, asyncio closes the transport after the client's close_notify whatever the
        # protocol answers, and warns when asked to keep it open: answer what will happen.
        return keep_open and self.transport.get_extra_info('sslcontext') is None

    def _input_ended(self) -> bool:
        """The client ended its input; whether the connection should stay open to answer."""
        self._eof = True
        if self._upgraded is not None:
            self._upgraded.feed_eof()
            return True
        if self._cancel_on_disconnect and self._request is not None:
            # An event stream's client never sends anything more: its end of input means it is
            # gone (browsers close both ways; a half-closed reader would be an odd client).
            self.close()
            self._cancel_request()
            return True
        if self._decoder is not None and self._body is not None:
            self._body.set_exception(ClientDisconnected('the client closed mid-body'))
            self._decoder = None
            self.output.closing = True
        if self._request is None and not self._buffer:
            return False  # nothing to answer: let the transport close
        # The client may half-close after sending its requests: answer them (the pipelined
        # ones included), then close.
        return True

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        if not self.transport.is_closing():
            # A transport whose peer closed first must still be closed by its protocol: before
            # Python 3.11 (so on PyPy 3.9) a TLS one counts as open and warns when collected.
            self.transport.close()
        self.closed = True
        self.output.closing = True
        self.output.lost()
        opened = self.state.release(self)
        if self._body is not None:
            self._body.set_exception(ClientDisconnected('the client closed the connection'))
        if self._upgraded is not None:
            self._upgraded.feed_eof()
        if self._cancel_on_disconnect:
            self._cancel_request()
        if opened:
            hooks = self.state.dispatcher.connection_lost(self.connection)  # type: ignore
            if hooks is not None:
                self.state.run_in_background(hooks)

    @property
    def closing(self) -> bool:
        """No further request will be taken on this connection (kept by its `output`, which
        writes the heads that say so)."""
        return self.output.closing

    def pause_writing(self) -> None:
        self.output.pause()

    def resume_writing(self) -> None:
        self.output.resume()

    # -- reading --------------------------------------------------------------------------------

    def _next_request(self) -> None:
        """Start the requests waiting in the buffer, one at a time.

        A request answered without waiting finishes inside ``start``; the loop then takes the
        next pipelined one (a loop, not recursion: a client may pipeline thousands).
        """
        if self._starting:
            return
        self._starting = True
        try:
            while self._request is None and self._buffer and not self.output.closing:
                if not self._start_request():
                    break
        finally:
            self._starting = False

    def _start_request(self) -> bool:
        """Parse the head at the start of the buffer and start answering it; ``False`` while
        the head is incomplete or was rejected."""
        buffer = self._buffer
        try:
            result = self._head_reader.read(buffer)
        except ParseError as exc:
            self._reject(exc.status, exc.message,
                         REJECTED_KINDS.get(exc.status, 'bad_request'))
            return False
        if result is None:
            self.deadlines.head_pending(self.loop.time())
            return False
        if self._refused:
            self._reject(503, 'too many connections from this address', 'too_many_connections')
            return False
        head, consumed = result
        self._buffer = buffer[consumed:] if consumed < len(buffer) else b''
        state = self.state
        if state.health is not None and self._answer_health(head):
            return True
        options = self.options
        has_body = head.chunked or bool(head.content_length)
        self._started = now = self.loop.time()
        self.deadlines.request_started(now, has_body, head.expect_continue)
        connection = self.connection
        assert connection is not None
        connection.requests += 1
        state.requests += 1
        if state.requests == state.recycle_at:
            state.recycle()
        body = None
        if has_body:
            body = BodyStream(
                self, self.loop, head.content_length, options.body_buffer_size,
                options.body_timeout, options.max_body_size, head.expect_continue,
            )
            self._decoder = (
                # Trailers are header fields after the body: the head's limits bound them.
                ChunkedDecoder(4096, options.max_header_size, options.max_header_count)
                if head.chunked else ContentLengthDecoder(head.content_length or 0)
            )
        self._body = body
        request = Request(head, connection, body)
        response = Response(self.output, request)
        self._request = request
        self._response = response
        if body is not None and self._buffer:
            data = self._buffer
            self._buffer = b''
            self._buffer = self._feed_body(data)
        self._task = eager.start(self.loop, self._run(request, response))
        return True

    def _linger(self) -> None:
        """Take one last request (answered with ``Connection: close``) within `IDLE_LINGER`
        seconds, then close."""
        self._last_call = True
        self.loop.call_later(IDLE_LINGER, self._linger_over)
        self._start_last()  # a request already waiting in the buffer

    def _start_last(self) -> None:
        """Answer the request that a connection idle when the server began to stop brings
        (with ``Connection: close``: `output` is closing)."""
        if self._buffer and self._start_request():
            self._last_call = False

    def _linger_over(self) -> None:
        if self._last_call and self._request is None:
            self._last_call = False
            self.close()

    def _answer_health(self, head: Any) -> bool:
        """Answer a readiness or liveness request without the application; ``False`` if
        the target is neither."""
        state = self.state
        health = state.health
        assert health is not None
        kind = health.get(head.target.partition(b'?')[0])
        if kind is None:
            return False
        if kind == 'ready' and (state.closing or state.draining):
            status, body = 503, b'not ready'
        else:
            status, body = 200, b'ready' if kind == 'ready' else b'alive'
        extra = b''
        if head.method not in ('GET', 'HEAD'):
            status, body, extra = 405, b'Method Not Allowed', b'Allow: GET, HEAD\r\n'
        # A body is never read here: unread, it could not be told from a next request.
        close = (self.output.closing or not head.keep_alive or head.chunked
                 or bool(head.content_length))
        connection = b'Connection: close\r\n' if close else (
            b'Connection: keep-alive\r\n' if head.version == '1.0' else b'')
        self.output.write(
            b'%s%s%sContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n'
            b'Cache-Control: no-store\r\n%s%s\r\n%s' % (
                status_line(status), dates.header(), self.output.server_header, len(body),
                extra, connection, b'' if head.method == 'HEAD' else body))
        if close:
            self.close()
        else:
            self.deadlines.idle(self.loop.time())
        return True

    def _feed_body(self, data: bytes) -> bytes:
        """Decode body bytes into the current body stream; return what follows the body."""
        decoder = self._decoder
        body = self._body
        assert decoder is not None and body is not None
        try:
            chunks = decoder.feed(data)
        except ParseError as exc:
            self.state.count_rejected(exc.status, REJECTED_KINDS.get(exc.status, 'bad_request'))
            self._decoder = None
            self.deadlines.body_ended()
            self.output.closing = True
            self._pause(_BODY_FULL)
            body.set_exception(BadRequest(exc.message, status=exc.status))
            return b''
        for chunk in chunks:
            body.feed(chunk)
        if decoder.done:
            body.trailers = decoder.trailers
            body.feed_eof()
            self._decoder = None
            self.deadlines.body_ended()
            return decoder.rest
        return b''

    async def _run(self, request: Request, response: Response) -> None:
        try:
            if self._connect_hooks is not None:
                await self._connect_hooks
                self._connect_hooks = None
            await self.state.dispatcher.handle(request, response)
        except (Exception, asyncio.CancelledError) as exc:
            if self._response is not response or self._detaching is response:
                # Detached: its response went out whole, only the work after it failed.
                if not isinstance(exc, (ClientDisconnected, asyncio.CancelledError)):
                    logger.error('unhandled error after answering %r', request, exc_info=exc)
                if self._response is response:
                    self._finish(response)
                return
            # The response may stay unfinished: nobody is left to answer when the client went
            # away (ClientDisconnected on a closed connection).
            self._handler_failed(response, exc)
        else:
            if self._response is not response:
                return  # detached: the connection went on without this handler
            if not response.finished and self._upgraded is None:
                self._handler_failed(response, RuntimeError('the response was not finished'))
        self._finish(response)

    def _finish(self, response: Response) -> None:
        """The exchange is over: keep the connection for the next request, or close it."""
        self._cancel_on_disconnect = False
        if self._upgraded is not None:
            self.close()
            return
        self._request = self._response = self._task = None
        body = self._body
        self._body = None
        if self.closed:
            return
        if body is not None and not body.complete:
            # A body left unread cannot be told apart from the next request: close.
            self.deadlines.request_ended()
            self.close()
            return
        if self.output.closing or not response.keep_alive:
            if response.keep_alive and not self._last_call and not self._eof:
                # The server began to stop after this response's head promised keep-alive
                # (no Connection: close, RFC 9112 §9.6): the client may be sending its next
                # request right now. Answer one more, as a connection idle at that moment.
                self.deadlines.idle(self.loop.time())
                if self._paused:
                    self._resume(_PIPELINE_FULL | _BODY_FULL)
                self._linger()
                return
            self.deadlines.request_ended()
            self.close()
            return
        if self._paused:
            self._resume(_PIPELINE_FULL | _BODY_FULL)
        if self._buffer:
            self._next_request()  # its head starts the deadlines over
        elif self._eof:
            self.deadlines.request_ended()
            self.close()
        else:
            self.deadlines.idle(self.loop.time())

    def _handler_failed(self, response: Response, exc: BaseException) -> None:
        if isinstance(exc, ClientDisconnected):
            # Not a server error: the client left (an aborted upload or download).
            logger.debug('%r: the client went away (%s)', response.request, exc)
        elif not isinstance(exc, asyncio.CancelledError):
            logger.error('unhandled error answering %r', response.request, exc_info=exc)
        if response.headers_sent:
            # Too late for an error status: cut the body short so the client sees it fail
            # (recorded as cut short by `abort`, unless the response was aborted already).
            self.output.flush()
            self.abort()
        elif self._cancel_on_disconnect and isinstance(exc, asyncio.CancelledError):
            # Cancelled because the client left or the server stops (`cancel_on_disconnect`).
            response.finished = True
            self.close()
            self._cut_short(response)
        elif not self.closed:
            response.keep_alive = False
            response.reset(503 if self._cancelled else 500)
            response.send_whole(b'Service Unavailable' if self._cancelled
                                else b'Internal Server Error')
        else:
            # The client left before any answer: nothing can be sent.
            response.finished = True
            self._cut_short(response)

    def _reject(self, status: int, message: str, kind: str) -> None:
        """Answer a request that could not be parsed, then close (RFC 9112 §2.2)."""
        logger.debug('rejected a request from %s: %d %s', _client(self.connection), status,
                     message)
        self.state.count_rejected(status, kind)
        self.output.closing = True
        self._buffer = b''
        body = status_line(status)[9:-2]
        self.output.write(
            b'%s%s%sContent-Type: text/plain; charset=utf-8\r\n'
            b'Content-Length: %d\r\nConnection: close\r\n\r\n%s'
            % (status_line(status), dates.header(), self.output.server_header, len(body), body)
        )
        self.close()

    # -- read flow control ----------------------------------------------------------------------

    def _pause(self, reason: int) -> None:
        self._paused |= reason
        if not self._reading_paused and not self.closed:
            self._reading_paused = True
            self.transport.pause_reading()
            self.deadlines.reading_paused(self.loop.time())

    def _resume(self, reasons: int) -> None:
        self._paused &= ~reasons
        if self._reading_paused and not self._paused and not self.closed:
            self._reading_paused = False
            self.transport.resume_reading()
            self.deadlines.reading_resumed(self.loop.time())

    def pause_reading(self) -> None:
        """Stop reading the socket until `resume_reading` (a reader's buffer is full)."""
        self._pause(_UPGRADE_FULL if self._upgraded is not None else _BODY_FULL)

    def resume_reading(self) -> None:
        self._resume(_UPGRADE_FULL if self._upgraded is not None else _BODY_FULL)

    def send_continue(self) -> None:
        """Tell a client waiting with ``Expect: 100-continue`` to send its body."""
        response = self._response
        if response is not None and not response.headers_sent and not self.closed:
            self.output.write(b'HTTP/1.1 100 Continue\r\n\r\n')
            if self._decoder is not None:
                self.deadlines.body_invited(self.loop.time())  # the body may come now

    # -- the exchange (what the output asks) ----------------------------------------------------

    def response_finished(self, response: Response) -> None:
        if self.state.listeners:  # the access log, metrics...: else nothing to do
            # Finished after the client left: its end never reached the client.
            self._exchange_ended(response, not self.closed)

    def _cut_short(self, response: Response) -> None:
        if self.state.listeners:
            self._exchange_ended(response, False)

    def _exchange_ended(self, response: Response, complete: bool) -> None:
        record = ExchangeRecord(response.request, response, self.loop.time() - self._started,
                                complete)
        for listener in self.state.listeners:
            try:
                listener(record)
            except Exception:
                logger.exception('exchange listener %r failed', listener)

    def set_handler_timeout(self, seconds: float) -> None:
        """Give the current request ``seconds`` from its head to the end of its response
        (0: no limit) instead of the ``handler_timeout`` option (a route's own)."""
        self.deadlines.handler_timeout(self._started, seconds)

    @property
    def activity(self) -> int:
        """What the connection does: `IDLE`, `ANSWERING` a request, `UPGRADED` to another
        protocol, or `STREAMING_EVENTS`."""
        if self._upgraded is not None:
            return UPGRADED
        if self._request is None:
            return IDLE
        return STREAMING_EVENTS if self._cancel_on_disconnect else ANSWERING

    def detach(self) -> None:
        """The current response is complete and its handler may carry on with other work:
        the next request does not wait for it. It is taken as soon as it arrives (or at once,
        if it is waiting already); a handler that returns first costs nothing more."""
        response = self._response
        if response is not None and response.finished and self._upgraded is None:
            self._detaching = response
            if self._buffer:
                self.loop.call_soon(self._release, response)

    def _release(self, response: Response) -> None:
        if self._response is not response:
            return  # the handler returned meanwhile: the exchange is over already
        task = self._task
        if task is not None and not task.done():
            self.state.keep_detached(task)
        self._finish(response)

    def cancel_on_disconnect(self) -> None:
        """Cancel the task answering the current request as soon as the client goes away (the
        connection is lost or the client ends its input) or the server stops: for responses
        that stream until the client leaves (server-sent events), whose handler mostly waits
        on something other than the client and would notice only at its next write."""
        self._cancel_on_disconnect = True

    def _cancel_request(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()

    def upgrade(self) -> UpgradedStream:
        """Hand the connection over to another protocol; HTTP parsing stops here."""
        stream = UpgradedStream(self.output, self, self.options.body_buffer_size)
        self._upgraded = stream
        self._decoder = None
        self.deadlines.upgraded()
        self._resume(_PIPELINE_FULL | _BODY_FULL)
        if self._buffer:
            data = self._buffer
            self._buffer = b''
            stream.feed(data)
        if self._eof:
            stream.feed_eof()
        return stream

    # -- closing and timeouts (what the connection registry asks) -------------------------------

    def close(self) -> None:
        """Close once the written data has been sent."""
        self.output.flush()
        self.output.closing = True
        if not self.closed and self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        """Close at once, discarding unsent data. A response whose head went out and which is
        not finished is recorded as cut short (once: it is finished then)."""
        response = self._response
        if response is not None and response.headers_sent and not response.finished:
            response.finished = True
            self._cut_short(response)
        self.output.discard()
        self.output.closing = True
        if not self.closed and self.transport is not None:
            self.transport.abort()

    def shutdown(self) -> None:
        """Take no further request after the current one; an idle connection may bring one
        last request within `IDLE_LINGER` seconds, then closes."""
        self.output.closing = True
        if self._upgraded is not None:
            self._upgraded.shutdown()
        elif self._request is None:
            if self.closed or self.transport is None or self.transport.is_closing():
                return
            self._linger()
        elif self._cancel_on_disconnect:
            self._cancel_request()

    def cancel(self) -> None:
        """Stop the request in progress now: its handler is cancelled and answered 503 if its
        response has not started, else the connection is cut; an idle connection closes."""
        task = self._task
        self.output.closing = True
        if task is not None and not task.done():
            self._cancelled = True
            task.cancel()
        elif self._upgraded is not None or self._request is not None:
            self.abort()
        else:
            self.close()

    def check_deadline(self, now: float) -> None:
        """Enforce the timeouts and the minimum data rate (the sweep calls this every second)."""
        if self.closed:
            return
        body = self._body
        late = self.deadlines.check(
            now, busy=self._request is not None, head_received=len(self._buffer),
            body_received=body.received if body is not None else None, full=self.state.full,
        )
        if not late:
            return
        if late == HANDLER_TIMEOUT:
            logger.warning('%r ran for %.3f s, more than its handler_timeout: cancelled',
                           self._request, now - self._started)
            self.deadlines.handler_cancelled()
            self.cancel()
        elif late == BODY_TOO_SLOW:
            # Slow POST: the handler gets a RequestTimeout (408) reading the body, and the
            # connection closes after the answer (the body is left unread).
            assert body is not None
            logger.debug('the request body from %s arrives too slowly',
                         _client(self.connection))
            self.deadlines.body_ended()
            self._decoder = None
            self.output.closing = True
            self.pause_reading()
            body.set_exception(RequestTimeout('the request body arrives too slowly'))
        elif late == HEAD_TOO_SLOW:
            self._reject(408, 'the request head arrives too slowly', 'head_too_slow')  # slowloris
        elif late == HEAD_TIMEOUT:
            self._reject(408, 'timed out reading the request head', 'head_timeout')
        elif late == IDLE_TIMEOUT:
            self.close()


def _client(connection: Optional[Connection]) -> Any:
    return connection.client if connection is not None else None

