"""Tremolo: a stream-oriented, asynchronous HTTP/1.1 server and web framework."""

from __future__ import annotations

__version__ = '1.0.0.dev0'

from .app import Application, Tremolo
from .body_stream import StreamFilter
from .connection import Connection
from .context import Context, Globals
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
from .extension import Extension
from .forms import FormData, UploadedFile
from .options import Options
from .request import Request
from .response import Response
from .sse import EventStream
from .upgrade import UpgradedStream
from .uploads import Part
from .views import View
from .websocket import WebSocket, WebSocketClosed

__all__ = [
    'Application', 'BadRequest', 'ClientDisconnected', 'Conflict', 'Connection', 'Context',
    'EventStream', 'ExpectationFailed', 'Extension', 'Forbidden', 'FormData', 'GatewayTimeout',
    'Globals', 'Gone', 'HTTPException', 'HTTPNotImplemented', 'InternalServerError',
    'LengthRequired', 'MethodNotAllowed', 'NotFound', 'Options', 'Part', 'PayloadTooLarge',
    'RangeNotSatisfiable', 'Redirect', 'RegistrationError', 'Request',
    'RequestHeaderFieldsTooLarge', 'RequestTimeout', 'Response', 'ServiceUnavailable',
    'StreamFilter', 'TooManyRequests', 'Tremolo', 'URITooLong', 'Unauthorized',
    'UnprocessableContent', 'UnsupportedMediaType', 'UpgradedStream', 'UploadedFile', 'View',
    'WebSocket', 'WebSocketClosed', '__version__',
]
