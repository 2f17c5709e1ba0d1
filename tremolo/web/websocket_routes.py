"""WebSocket routes: how the requests of a route whose handler takes ``websocket`` are met
(the handshake checked, the origin allowed, a `tremolo.WebSocket` made or a plain request
let through)."""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any, Optional

from ..exceptions import Forbidden, HTTPException, RegistrationError
from ..http.handshake import UPGRADE_HEADERS, HandshakeError, check_request, is_websocket_request
from ..http.websocket import INTERNAL_ERROR
from ..websocket import WebSocket

if TYPE_CHECKING:
    from ..request import Request
    from ..response import Response
    from .context import Context

logger = logging.getLogger('tremolo')


class WebSocketRoute:
    """How the requests of a route whose handler takes ``websocket`` are met (one per route).

    Args:
        required: The handler's ``websocket`` parameter has no default: a request that is
            not a WebSocket handshake is answered ``426 Upgrade Required`` without calling
            it. With a default (``websocket=None``), such a request gets `None`.
    """

    __slots__ = ('required',)

    def __init__(self, required: bool) -> None:
        self.required = required

    def open(self, request: Request, response: Response, context: Context
             ) -> Optional[WebSocket]:
        """The `WebSocket` for a valid handshake, `None` for a plain request (when allowed).

        Raises:
            HTTPException: 426 for a plain request to a WebSocket-only handler or an
                unsupported version, 400 for a malformed handshake, 403 for an origin that
                the ``websocket_origins`` option refuses.
        """
        head = request.head
        if not is_websocket_request(head.version, head.headers):
            if self.required:
                raise HTTPException('this resource is served over WebSocket only', status=426,
                                    headers=UPGRADE_HEADERS)
            return None
        try:
            key = check_request(request.method, head.headers, head.has_body)
        except HandshakeError as exc:
            logger.debug('refused a WebSocket handshake from %s: %d %s', request.client,
                         exc.status, exc.message)
            raise HTTPException(exc.message, status=exc.status, headers=exc.headers) from None
        origins = context.option('websocket_origins')
        if origins is not None:
            origin = head.headers.get(b'origin')
            if not origin_allowed(origins, None if origin is None else origin.decode('latin-1')):
                logger.debug('refused a WebSocket handshake from %s: origin %r', request.client,
                             origin)
                raise Forbidden('origin not allowed')
        return WebSocket(request, response, key, context)

    async def finish(self, websocket: WebSocket) -> None:
        """The handler returned: close normally what is still open, or refuse a handshake
        that was never accepted (403)."""
        if websocket.state != 'closed':
            await websocket.close()

    async def failed(self, websocket: WebSocket, exc: BaseException) -> None:
        """The handler raised after accepting: log it, close with 1011 (internal error)."""
        logger.error('error in WebSocket handler for %s', websocket.request.path, exc_info=exc)
        if websocket.state == 'open':
            await websocket.close(INTERNAL_ERROR)
        elif websocket.state == 'closing':
            await websocket.close()


def origin_allowed(origins: Any, origin: Optional[str]) -> bool:
    """Whether the ``websocket_origins`` option lets a handshake from ``origin`` through.

    ``origins`` is a callable taking the ``Origin`` value (or `None`) and returning a bool,
    or a collection of allowed origins (``'https://example.com'``, compared case-insensitively;
    ``'*'`` allows any). With a collection, a request without ``Origin`` passes: browsers
    always send it, so only non-browser clients, which cross-site attacks cannot drive, omit it.
    """
    if callable(origins):
        return bool(origins(origin))
    if origin is None:
        return True
    allowed = {item.lower() for item in ([origins] if isinstance(origins, str) else origins)}
    return '*' in allowed or origin.lower() in allowed


def websocket_route(func: Any, mode: str, where: str) -> WebSocketRoute:
    """The `WebSocketRoute` of a handler that takes ``websocket``.

    Raises:
        RegistrationError: The handler is not an ``async def`` returning its result.
    """
    if mode != 'async':
        raise RegistrationError(f'{where}: a handler that takes websocket must be an async '
                                f'function, not a {mode} function')
    try:
        parameter = inspect.signature(func).parameters['websocket']
    except (TypeError, ValueError, KeyError):  # pragma: no cover - compile_plan read it
        return WebSocketRoute(True)
    return WebSocketRoute(parameter.default is parameter.empty)

