"""Tremolo: a stream-oriented, asynchronous HTTP/1.1 server and web framework."""

from __future__ import annotations

import os as _os
from typing import TYPE_CHECKING, Any

__version__ = '1.0.0.dev0'

if not _os.path.isdir(_os.path.join(__path__[0], 'middleware')):
    # This is the source folder of a checkout (an install maps middleware/ and extensions/
    # into the package; pyproject.toml), imported because the checkout comes first on the
    # path (`python -m tremolo` or pytest run from it). The installed view of the package (an
    # editable install's link tree) then provides tremolo.middleware and tremolo.extensions.
    from pkgutil import extend_path as _extend_path

    __path__ = _extend_path(__path__, __name__)

from .body_stream import StreamFilter
from .connection import Connection
from .exceptions import (
    BadRequest,
    ClientDisconnected,
    Conflict,
    ExpectationFailed,
    Forbidden,
    GatewayTimeout,
    Gone,
    HTTPException,
    HTTPNotImplemented,
    InternalServerError,
    LengthRequired,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RangeNotSatisfiable,
    Redirect,
    RegistrationError,
    RequestHeaderFieldsTooLarge,
    RequestTimeout,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UnprocessableContent,
    UnsupportedMediaType,
    URITooLong,
)
from .forms import FormData, UploadedFile
from .options import Options
from .request import Request
from .response import Response
from .telemetry import ExchangeRecord, Figures, Telemetry
from .upgrade import UpgradedStream
from .web.app import Application, Tremolo
from .web.context import Context, Globals
from .web.extension import Extension
from .web.views import View

__all__ = [
    'Application', 'BadRequest', 'ClientDisconnected', 'Conflict', 'Connection', 'Context',
    'EventStream', 'ExchangeRecord', 'ExpectationFailed', 'Extension', 'Figures', 'Forbidden',
    'FormData', 'GatewayTimeout',
    'Globals', 'Gone', 'HTTPException', 'HTTPNotImplemented', 'InternalServerError',
    'LengthRequired', 'MethodNotAllowed', 'NotFound', 'Options', 'Part', 'PayloadTooLarge',
    'RangeNotSatisfiable', 'Redirect', 'RegistrationError', 'Request',
    'RequestHeaderFieldsTooLarge', 'RequestTimeout', 'Response', 'ServiceUnavailable',
    'StreamFilter', 'Telemetry', 'TooManyRequests', 'Tremolo', 'URITooLong', 'Unauthorized',
    'UnprocessableContent', 'UnsupportedMediaType', 'UpgradedStream', 'UploadedFile', 'View',
    'WebSocket', 'WebSocketClosed', '__version__', 'run',
]

# Imported on first use: most applications never touch them, and `import tremolo` stays quick.
_LAZY = {
    'EventStream': 'sse', 'Part': 'uploads', 'WebSocket': 'websocket',
    'WebSocketClosed': 'websocket', 'run': 'launch',
}

if TYPE_CHECKING:
    from .launch import run
    from .sse import EventStream
    from .uploads import Part
    from .websocket import WebSocket
    from .websocket_io import WebSocketClosed


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    import importlib

    value = getattr(importlib.import_module(f'.{module}', __name__), name)
    globals()[name] = value
    return value
