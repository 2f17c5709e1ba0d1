"""The ASGI mode: ASGI 3 applications (FastAPI, Starlette, Django, Quart, Litestar, ...)
served by Tremolo's server core, ASGI spec version 2.5 with its HTTP, WebSocket and lifespan
protocols and the ``http.response.pathsend``, ``http.response.trailers``,
``http.response.early_hint``, ``websocket.http.response`` and ``tls`` extensions.

- `tremolo.asgi.dispatcher`: the `tremolo.types.Dispatcher` of an ASGI application;
- `tremolo.asgi.scope`: the connection scopes;
- `tremolo.asgi.http`, `tremolo.asgi.websocket`: one request's ``receive`` and ``send``;
- `tremolo.asgi.lifespan`: startup and shutdown;
- `tremolo.asgi.mount`: an ASGI application under a prefix of a Tremolo application;
- `tremolo.asgi.detect`: which kind an application is.
"""

from .detect import interface_of, is_asgi_app
from .dispatcher import ASGIDispatcher
from .errors import ASGIProtocolError, LifespanFailure

__all__ = ['ASGIDispatcher', 'ASGIProtocolError', 'LifespanFailure', 'interface_of',
           'is_asgi_app']
