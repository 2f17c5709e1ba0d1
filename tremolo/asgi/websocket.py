"""One WebSocket connection served to an ASGI application: its ``receive`` and ``send``.

The connection is Tremolo's own `tremolo.WebSocket`: the handshake, permessage-deflate
(RFC 7692), the message size limit, keep-alive pings, the close handshake and backpressure
are the same as for a native handler. `WebSocketCycle` only translates: ``websocket.accept``
is `WebSocket.accept`, a message received is ``websocket.receive``, a close (either side's,
or a dropped connection) is ``websocket.disconnect`` with its code and reason. Before the
handshake is accepted, the application may refuse it: ``websocket.close`` answers
``403 Forbidden``, and the ``websocket.http.response`` extension sends a response of its own.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Optional

from ..exceptions import ClientDisconnected
from ..http.handshake import HandshakeError, check_request, is_websocket_request
from ..http.websocket import INTERNAL_ERROR, NORMAL_CLOSURE
from ..websocket import WebSocket
from ..websocket_io import CLOSED, CONNECTING, OPEN, WebSocketClosed
from .errors import ASGIProtocolError
from .http import HTTPCycle, as_bytes

if TYPE_CHECKING:
    from ..request import Request
    from ..response import Response
    from ..types import OptionSource
    from .http import ASGIApp, Message
    from .scope import ScopeBuilder

logger = logging.getLogger('tremolo')

#: The close code given to the application when the connection ended without a close frame.
ABNORMAL_CLOSURE = 1006


class WebSocketCycle:
    """The ``receive`` and ``send`` of one WebSocket connection (ASGI ``websocket`` scope).

    Attributes:
        websocket: The connection.
        denial: The response the application sends instead of accepting
            (``websocket.http.response``), once it starts one.
    """

    __slots__ = ('websocket', 'denial', '_connect_given', '_request', '_response', '_answered')

    def __init__(self, request: Request, response: Response, key: str,
                 options: OptionSource) -> None:
        self.websocket = WebSocket(request, response, key, options)
        self.denial: Optional[HTTPCycle] = None
        self._connect_given = False
        self._request = request
        self._response = response
        # Done once the handshake is answered (accepted, refused or denied): a receive
        # awaited before then (some frameworks receive in a task of their own from the
        # start) waits for it.
        self._answered: Optional[asyncio.Future[None]] = None

    async def receive(self) -> Message:
        """``websocket.connect`` first, then each message as ``websocket.receive``, then
        ``websocket.disconnect``."""
        websocket = self.websocket
        if not self._connect_given:
            self._connect_given = True
            return {'type': 'websocket.connect'}
        if websocket.state is CONNECTING and self.denial is None:
            answered = self._answered
            if answered is None:
                answered = self._answered = asyncio.get_running_loop().create_future()
            await answered
        if websocket.state is CONNECTING:  # refused with a response of the application's
            return {'type': 'websocket.disconnect', 'code': ABNORMAL_CLOSURE, 'reason': ''}
        try:
            message = await websocket.receive()
        except WebSocketClosed as exc:
            return {'type': 'websocket.disconnect', 'code': exc.code, 'reason': exc.reason}
        if type(message) is str:
            return {'type': 'websocket.receive', 'text': message}
        return {'type': 'websocket.receive', 'bytes': message}

    async def send(self, message: Message) -> None:
        """Take one message of the application.

        Raises:
            WebSocketClosed: The connection is closed (an ``OSError``, ASGI spec 2.4).
            ASGIProtocolError: A message out of order or of the wrong shape.
        """
        try:
            kind = message['type']
        except (KeyError, TypeError):
            raise ASGIProtocolError(f'an ASGI message is a dict with a "type", not {message!r}'
                                    ) from None
        websocket = self.websocket
        if kind == 'websocket.send':
            if websocket.state is CONNECTING:
                raise ASGIProtocolError('websocket.send before websocket.accept')
            data = message.get('bytes')
            if data is None:
                data = message.get('text')
                if not isinstance(data, str):
                    raise TypeError('websocket.send needs "bytes" (bytes) or "text" (str), not '
                                    f'{data!r}')
            else:
                data = as_bytes(data, 'websocket message')
            await websocket.send(data)
        elif kind == 'websocket.accept':
            if websocket.state is not CONNECTING or self.denial is not None:
                raise ASGIProtocolError('websocket.accept sent twice, or after the handshake '
                                        'was refused')
            headers = [(as_bytes(name, 'header name').decode('latin-1'),
                        as_bytes(value, 'header value').decode('latin-1'))
                       for name, value in message.get('headers', ())]
            try:
                await websocket.accept(message.get('subprotocol'), headers)
            finally:
                self._wake()
        elif kind == 'websocket.close':
            await self._close(message)
        elif kind == 'websocket.http.response.start':
            if websocket.state is not CONNECTING or self.denial is not None:
                raise ASGIProtocolError('websocket.http.response.start after the handshake '
                                        'was answered')
            self.denial = HTTPCycle(self._request, self._response)
            self._wake()
            await self.denial.send({**message, 'type': 'http.response.start'})
        elif kind == 'websocket.http.response.body':
            if self.denial is None:
                raise ASGIProtocolError('websocket.http.response.body before '
                                        'websocket.http.response.start')
            await self.denial.send({**message, 'type': 'http.response.body'})
            if self.denial.complete:
                websocket.state = CLOSED
        else:
            raise ASGIProtocolError(f'unexpected ASGI message {kind!r} in a websocket scope')

    def _wake(self) -> None:
        answered = self._answered
        if answered is not None and not answered.done():
            answered.set_result(None)

    async def _close(self, message: Message) -> None:
        websocket = self.websocket
        if websocket.state is CONNECTING:
            if self.denial is not None:
                raise ASGIProtocolError('websocket.close during websocket.http.response')
            await websocket.close()  # refuses the handshake: 403 Forbidden
            self._wake()
            return
        if websocket.state is OPEN:
            code = message.get('code', NORMAL_CLOSURE)
            reason = message.get('reason') or ''
            if type(code) is not int or not isinstance(reason, str):
                raise TypeError('websocket.close takes an int "code" and a str "reason"')
            await websocket.close(code, reason)
        # Closing what is already closed (the client's close, or the application's twice) is
        # what frameworks do on their way out: nothing to do.

    # -- the end ----------------------------------------------------------------------------------

    async def finish(self) -> None:
        """The application returned: close what it left open (normally), or answer a
        handshake it neither accepted nor refused."""
        self._wake()
        websocket = self.websocket
        if self.denial is not None:
            if not self.denial.complete:
                self.denial.unfinished()
            return
        if websocket.state is CONNECTING:
            logger.error('the ASGI application returned without accepting or refusing the '
                         'WebSocket handshake of %r', self._request)
            self._answer_500()
        elif websocket.state is not CLOSED:
            await websocket.close()

    async def failed(self, exc: Exception, debug: bool) -> None:
        """The application raised: 500 before the handshake was answered, a close with 1011
        (internal error) after."""
        self._wake()
        websocket = self.websocket
        if self.denial is not None:
            self.denial.failed(exc, debug)
            return
        if isinstance(exc, ClientDisconnected):
            logger.debug('ASGI WebSocket application stopped after the connection closed: %r',
                         exc)
        else:
            logger.error('error in the ASGI application answering the WebSocket %r',
                         self._request, exc_info=exc)
        if websocket.state is CONNECTING:
            self._answer_500()
        elif websocket.state is OPEN:
            await websocket.close(INTERNAL_ERROR)
        elif websocket.state is not CLOSED:
            await websocket.close()

    def _answer_500(self) -> None:
        response = self._response
        if not response.headers_sent:
            response.keep_alive = False
            response.reset(500)
            response.send_whole(b'Internal Server Error')


async def run_websocket(app: ASGIApp, scopes: ScopeBuilder, request: Request,
                        response: Response, options: OptionSource, debug: bool,
                        mounted_at: Optional[str] = None) -> None:
    """Serve one WebSocket handshake to ``app``; a malformed handshake is refused (400, or
    426 for another protocol version) without calling it."""
    head = request.head
    try:
        key = check_request(request.method, head.headers, head.has_body)
    except HandshakeError as exc:
        logger.debug('refused a WebSocket handshake from %s: %d %s', request.client,
                     exc.status, exc.message)
        response.reset(exc.status, exc.headers)
        response.send_whole(exc.message.encode())
        return
    cycle = WebSocketCycle(request, response, key, options)
    try:
        await app(scopes.websocket(request, cycle.websocket.subprotocols, mounted_at),
                  cycle.receive, cycle.send)
    except Exception as exc:
        await cycle.failed(exc, debug)
        return
    await cycle.finish()


def is_handshake(request: Request) -> bool:
    """Whether a request asks for a WebSocket (its ``Upgrade`` names it, on HTTP/1.1)."""
    head = request.head
    return head.upgrade is not None and is_websocket_request(head.version, head.headers)

