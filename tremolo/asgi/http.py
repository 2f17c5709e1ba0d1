"""One HTTP request served to an ASGI application: its ``receive`` and ``send``.

`HTTPCycle` turns the request the protocol made into ``http.request`` messages (the body read
from the request's stream as the application asks for it, so the socket pauses while the
application is behind: backpressure for free) and the application's messages into writes on
the `tremolo.Response` (its head, streamed pieces with write backpressure, files zero-copy,
trailers, interim responses). The head is held until the first body message: a whole body
given at once goes out in one write with its Content-Length, and an application that fails
before any body still gets a clean 500.

Framing follows the application's headers: a ``content-length`` it sets is kept (and held to:
a body of another length is an error), otherwise a body sent in one message gets a
Content-Length and a streamed one the chunked coding (closing the connection ends it on
HTTP/1.0). ``transfer-encoding`` and ``connection`` are the server's to write: the first is
dropped, ``connection: close`` closes the connection after the response.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import traceback
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..exceptions import ClientDisconnected, HTTPException
from .errors import ASGIProtocolError

if TYPE_CHECKING:
    from ..request import Request
    from ..response import Response
    from .scope import ScopeBuilder

logger = logging.getLogger('tremolo')

Message = dict[str, Any]
ASGIApp = Callable[..., Any]

# RFC 9110 §5.6.2 (a field name is a token) and §5.5 (no CR, LF, NUL or other controls in a
# value): what could split or end the head is refused before it is written.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_UNSAFE_VALUE = re.compile(rb'[\x00-\x08\x0a-\x1f\x7f]')
# What each header name is, as sent (an application sends the same few names again and
# again): a field passed on as it is, or one the server treats apart. The framing fields (RFC
# 9112 §6) are the server's to write; Date and Server replace the server's own.
_FIELD, _DATE, _SERVER, _CONTENT_LENGTH, _TRANSFER_ENCODING, _CONNECTION = 0, 1, 2, 4, 8, 16
_KINDS = {b'date': _DATE, b'server': _SERVER, b'content-length': _CONTENT_LENGTH,
          b'transfer-encoding': _TRANSFER_ENCODING, b'connection': _CONNECTION}
_NAME_KINDS: dict[bytes, int] = {}


def _name_kind(name: Any, value: Any) -> int:
    """What the header ``name`` is (checked once, then remembered)."""
    if type(name) is not bytes:
        raise TypeError(f'an ASGI header is a pair of bytes, not ({name!r}, {value!r})')
    if _TOKEN.fullmatch(name) is None:
        raise ASGIProtocolError(f'invalid header name {name!r}')
    kind = _KINDS.get(name.lower(), _FIELD)
    if len(_NAME_KINDS) < 1024:
        _NAME_KINDS[name] = kind
    return kind


class HTTPCycle:
    """The ``receive`` and ``send`` of one HTTP request (ASGI ``http`` scope).

    Attributes:
        started: ``http.response.start`` was sent.
        complete: The whole response was sent (or the request was answered without the
            application, e.g. 413).
        disconnected: The client is gone: ``send`` raises `ClientDisconnected` (an
            ``OSError``, ASGI spec 2.4).
    """

    __slots__ = ('request', 'response', 'started', 'complete', 'disconnected', '_stream',
                 '_length', '_trailers', '_body_done', '_trailer_fields', '_request_read',
                 '_waiter')

    def __init__(self, request: Request, response: Response) -> None:
        self.request = request
        self.response = response
        response.content_type = ''  # the application's headers say it, if anything does
        self.started = False
        self.complete = False
        self.disconnected = False
        self._stream = request.body_stream
        self._length: Optional[int] = None  # the application's content-length
        self._trailers = False  # the application announced trailers
        self._body_done = False  # the last body message was sent (trailers may follow)
        self._trailer_fields: list[tuple[str, str]] = []
        self._request_read = False  # the last http.request message was given
        self._waiter: Optional[asyncio.Future[None]] = None

    # -- receive ----------------------------------------------------------------------------------

    async def receive(self) -> Message:
        """The next ``http.request`` message (the body piece by piece as it arrives), then
        ``http.disconnect`` once the client is gone or the response is complete."""
        if not self._request_read:
            stream = self._stream
            if stream is None:
                self._request_read = True
                return {'type': 'http.request', 'body': b'', 'more_body': False}
            try:
                # Every piece arrived, at once: one turn of the application per piece costs.
                data = await stream.read_queued()  # the first answers Expect: 100-continue
            except ClientDisconnected:
                self.disconnected = True
                return {'type': 'http.disconnect'}
            except HTTPException as exc:  # 413, 408, a malformed chunked body
                self._refuse(exc)
                return {'type': 'http.disconnect'}
            # Without filters, a piece read is the last one when nothing more can come;
            # a filter may still hold bytes until it is called at the end.
            more = bool(data) and (bool(stream.filters) or not stream.finished)
            if not more:
                self._request_read = True
            return {'type': 'http.request', 'body': data, 'more_body': more}
        await self._wait_disconnect()
        return {'type': 'http.disconnect'}

    async def _wait_disconnect(self) -> None:
        """Wait until the client goes or the response is complete (any number of receivers:
        a framework may listen for the disconnect in a task of its own)."""
        if self.complete or self.disconnected:
            return
        waiter = self._waiter
        if waiter is None:
            channel = self.response.channel
            lost = channel.when_lost()
            if lost.done():
                self.disconnected = True
                return
            waiter = self._waiter = channel.loop.create_future()

            def gone(_: Any) -> None:
                self.disconnected = True
                if not waiter.done():
                    waiter.set_result(None)

            lost.add_done_callback(gone)
            # The connection outlives the request (keep-alive): leave nothing on it.
            waiter.add_done_callback(lambda _: lost.remove_done_callback(gone))
        # Shielded: a receiver cancelled while it waits must not cancel the others' wait.
        await asyncio.shield(waiter)

    def _refuse(self, exc: HTTPException) -> None:
        """The body cannot be read (too large, too slow, malformed): answer with the error's
        status if nothing was sent yet; to the application, the client is gone."""
        logger.debug('request body of %r refused: %d %s', self.request, exc.status, exc.message)
        self.disconnected = True
        response = self.response
        if not response.headers_sent:
            response.keep_alive = False
            response.reset(exc.status, exc.headers)
            message = exc.message
            response.send_whole(message.encode() if isinstance(message, str) else message)
            self._done()

    def _complete(self) -> None:
        """The response went out whole: the connection may go on to its next request even if
        the application carries on (its background tasks)."""
        self._done()
        self.response.channel.detach()

    def _done(self) -> None:
        self.complete = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- send -------------------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        """Take one message of the application.

        Raises:
            ClientDisconnected: The client is gone (an ``OSError``).
            ASGIProtocolError: A message out of order or of the wrong shape.
            TypeError: A value of the wrong type.
        """
        try:
            kind = message['type']
        except (KeyError, TypeError):
            raise ASGIProtocolError(f'an ASGI message is a dict with a "type", not {message!r}'
                                    ) from None
        response = self.response
        if kind == 'http.response.body':
            if self.complete or not self.started or self._body_done:
                self._out_of_order(kind)
            body = message.get('body', b'')
            if type(body) is not bytes:
                body = as_bytes(body, 'body')
            more = message.get('more_body', False)
            if not response.headers_sent:
                if self.disconnected or response.channel.disconnected():
                    raise ClientDisconnected('the client closed the connection')
                if not more and not self._trailers:
                    # The whole body in one message: one write, with its Content-Length.
                    length = self._length
                    if length is None or length == len(body):
                        if response.before_send is None and not response.filters:
                            response.send_whole(body)
                        else:
                            await response.send(body)
                        self._complete()
                        return
                    if body or not response.omits_body:
                        raise ASGIProtocolError(
                            f'the body has {len(body)} bytes but the content-length header '
                            f'says {length}')
                await response.start(None if self._trailers else self._length)
            elif self.disconnected:
                raise ClientDisconnected('the client closed the connection')
            if body:
                if response.filters:
                    await response.write(body)
                elif response.write_nowait(body):
                    await response.drain()
            if not more:
                await self._end_body()
            return
        if kind == 'http.response.start':
            self._start(message)
        elif kind == 'http.response.pathsend':
            await self._pathsend(message)
        elif kind == 'http.response.trailers':
            await self._add_trailers(message)
        elif kind == 'http.response.early_hint':
            self._early_hint(message)
        else:
            raise ASGIProtocolError(f'unexpected ASGI message {kind!r} in an http scope')

    def _start(self, message: Message) -> None:
        if self.started or self.complete or self.disconnected:
            self._out_of_order('http.response.start')
        status = message.get('status')
        if type(status) is not int or not 200 <= status <= 999:
            raise ASGIProtocolError(f'http.response.start needs a status from 200 to 999, not '
                                    f'{status!r} (an interim response is '
                                    'http.response.early_hint)')
        response = self.response
        response.status = status
        lines = []
        omitted = 0
        for name, value in message.get('headers', ()):
            kind = _NAME_KINDS.get(name)
            if kind is None:
                kind = _name_kind(name, value)
            if type(value) is not bytes:
                raise TypeError(f'an ASGI header is a pair of bytes, not ({name!r}, {value!r})')
            if kind == _CONTENT_LENGTH:
                if self._length is None and value.isdigit() and len(value) <= 18:
                    self._length = int(value)
                else:
                    self._content_length(value)
                continue
            if _UNSAFE_VALUE.search(value) is not None:
                raise ASGIProtocolError(f'invalid characters in the value of header {name!r}')
            if kind == _FIELD:
                lines.append(name + b': ' + value + b'\r\n')
            elif kind == _CONNECTION:
                if b'close' in value.lower():
                    response.keep_alive = False
            elif kind != _TRANSFER_ENCODING:
                # Date or Server: the application's own replace the server's. (The server
                # chooses the framing, chunked when the length is not known: the
                # application's transfer-encoding is dropped.)
                omitted |= kind
                lines.append(name + b': ' + value + b'\r\n')
        if omitted:
            response.add_raw_headers(b''.join(lines), date=bool(omitted & _DATE),
                                     server=bool(omitted & _SERVER))
        elif lines:
            response.add_raw_headers(b''.join(lines))
        self._trailers = bool(message.get('trailers', False))
        self.started = True

    def _content_length(self, value: bytes) -> None:
        value = value.strip()
        if not value.isdigit() or len(value) > 18:
            raise ASGIProtocolError(f'invalid content-length header {value!r}')
        length = int(value)
        if self._length is not None and self._length != length:
            raise ASGIProtocolError('two different content-length headers')
        self._length = length

    async def _end_body(self) -> None:
        if self._trailers:
            self._body_done = True  # the trailers follow
            return
        await self.response.end()
        self._complete()

    async def _pathsend(self, message: Message) -> None:
        """``http.response.pathsend``: the body is a file, sent zero-copy where it can be."""
        response = self.response
        if not self.started or response.headers_sent or self.complete:
            self._out_of_order('http.response.pathsend')
        path = message.get('path')
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f'http.response.pathsend needs a path, not {path!r}')
        with open(path, 'rb') as file:
            size = os.fstat(file.fileno()).st_size
            if self._length is not None and self._length != size:
                raise ASGIProtocolError(f'{path} has {size} bytes but the content-length '
                                        f'header says {self._length}')
            await response.start(None if self._trailers else size)
            await response.write_file(file, 0, size)
        await self._end_body()

    async def _add_trailers(self, message: Message) -> None:
        if not self._trailers or not self._body_done or self.complete:
            self._out_of_order('http.response.trailers')
        for name, value in message.get('headers', ()):
            self._trailer_fields.append((as_bytes(name, 'trailer name').decode('latin-1'),
                                         as_bytes(value, 'trailer value').decode('latin-1')))
        if not message.get('more_trailers', False):
            await self.response.end(trailers=self._trailer_fields)
            self._complete()

    def _early_hint(self, message: Message) -> None:
        """``http.response.early_hint``: a ``103 Early Hints`` with the links (RFC 8297)."""
        if self.response.headers_sent or self.complete:
            self._out_of_order('http.response.early_hint')
        links = [('Link', link if isinstance(link, str) else as_bytes(link, 'link').decode(
            'latin-1')) for link in message.get('links', ())]
        if links:
            self.response.send_interim(103, links)

    def _out_of_order(self, kind: str) -> None:
        if self.disconnected or self.response.channel.disconnected():
            raise ClientDisconnected('the client closed the connection')
        if self.complete or self._body_done and kind != 'http.response.trailers':
            raise ASGIProtocolError(f'{kind} sent after the response was complete')
        if kind == 'http.response.start':
            raise ASGIProtocolError('http.response.start sent twice')
        if kind == 'http.response.trailers':
            raise ASGIProtocolError('http.response.trailers needs "trailers": True in '
                                    'http.response.start, and comes after the last body')
        if kind == 'http.response.early_hint':
            raise ASGIProtocolError('http.response.early_hint sent after the response started')
        raise ASGIProtocolError(f'{kind} sent before http.response.start')

    # -- the end ----------------------------------------------------------------------------------

    def failed(self, exc: Exception, debug: bool) -> None:
        """The application raised: a 500 if nothing was sent yet (with the traceback in debug
        mode), else the connection is cut so that the client sees the response fail."""
        response = self.response
        if self.disconnected or isinstance(exc, ClientDisconnected) or (
                response.channel.disconnected()):
            # What an application raises once the client is gone is how it stopped.
            logger.debug('ASGI application stopped after the client left %r: %r',
                         self.request, exc)
            self._finish_cut()
            return
        logger.error('error in the ASGI application answering %r', self.request, exc_info=exc)
        if response.headers_sent:
            self._finish_cut()
            return
        body = (''.join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                if debug else 'Internal Server Error')
        self._answer(500, body)

    def unfinished(self) -> None:
        """The application returned without completing its response."""
        if self.disconnected:
            self._finish_cut()
            return
        response = self.response
        if not self.started:
            logger.error('the ASGI application returned without sending http.response.start '
                         'for %r', self.request)
        else:
            logger.error('the ASGI application returned before its response to %r was '
                         'complete', self.request)
        if response.headers_sent:
            self._finish_cut()
        else:
            self._answer(500, 'Internal Server Error')

    def _answer(self, status: int, body: str) -> None:
        response = self.response
        response.keep_alive = False
        response.reset(status)
        response.send_whole(body.encode())
        self._done()

    def _finish_cut(self) -> None:
        response = self.response
        if not response.finished:
            response.finished = True
            if response.headers_sent:
                channel = response.channel
                channel.flush()  # what was written goes out: the client sees a short body
                channel.abort()
            else:
                response.keep_alive = False
                response.channel.close()
        self._done()


def as_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, bytes):
        return value
    raise TypeError(f'an ASGI {what} is bytes, not {type(value).__name__}')


async def run_http(app: ASGIApp, scopes: ScopeBuilder, request: Request, response: Response,
                   debug: bool, mounted_at: Optional[str] = None) -> None:
    """Serve one HTTP request to ``app``: the dispatcher's (or a mount's) ``handle``."""
    cycle = HTTPCycle(request, response)
    try:
        await app(scopes.http(request, mounted_at), cycle.receive, cycle.send)
    except Exception as exc:
        cycle.failed(exc, debug)
        return
    if not cycle.complete:
        cycle.unfinished()
