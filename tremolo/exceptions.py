"""Exceptions that become HTTP responses.

Raise an `HTTPException` (or one of its subclasses) anywhere in a handler, a middleware
hook or a provider: the request is answered with its status, its message as the body and its
headers, unless an error handler registered with ``@app.error(status)`` answers instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .http.status import reason
from .types import HeadersLike


class HTTPException(Exception):
    """An error answered with an HTTP status.

    Args:
        message: The response body (defaults to the reason phrase). It is sent to the client,
            so it must not contain internals.
        status: Overrides the class's status code.
        headers: Extra response headers, e.g. ``{'Retry-After': '3'}``.
    """

    status: int = 500

    def __init__(
        self, message: str | None = None, *, status: int | None = None,
        headers: HeadersLike | None = None,
    ) -> None:
        if status is not None:
            self.status = status
        self.message = reason(self.status) if message is None else message
        self.headers: list[tuple[str, str]] = list(
            headers.items() if isinstance(headers, Mapping) else headers or ()
        )
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.status}, {self.message!r})'


class Redirect(HTTPException):
    """Redirect the client to ``location`` (302 Found unless ``status`` says otherwise)."""

    status = 302

    def __init__(self, location: str, status: int = 302) -> None:
        if not 300 <= status < 400:
            raise ValueError(f'redirect status must be 3xx, not {status}')
        if '\r' in location or '\n' in location:
            raise ValueError('redirect location must not contain CR or LF')
        super().__init__('', status=status, headers=[('Location', location)])
        self.location = location


class BadRequest(HTTPException):
    status = 400


class Unauthorized(HTTPException):
    status = 401


class Forbidden(HTTPException):
    status = 403


class NotFound(HTTPException):
    status = 404


class MethodNotAllowed(HTTPException):
    """405, with the ``Allow`` header listing the methods the resource supports."""

    status = 405

    def __init__(self, allowed: Iterable[str], message: str | None = None) -> None:
        self.allowed = tuple(allowed)
        super().__init__(message, headers=[('Allow', ', '.join(self.allowed))])


class RequestTimeout(HTTPException):
    status = 408


class Conflict(HTTPException):
    status = 409


class Gone(HTTPException):
    status = 410


class LengthRequired(HTTPException):
    status = 411


class PayloadTooLarge(HTTPException):
    status = 413


class URITooLong(HTTPException):
    status = 414


class UnsupportedMediaType(HTTPException):
    status = 415


class RangeNotSatisfiable(HTTPException):
    status = 416


class ExpectationFailed(HTTPException):
    status = 417


class UnprocessableContent(HTTPException):
    status = 422


class TooManyRequests(HTTPException):
    status = 429


class RequestHeaderFieldsTooLarge(HTTPException):
    status = 431


class InternalServerError(HTTPException):
    status = 500


class HTTPNotImplemented(HTTPException):
    status = 501


class ServiceUnavailable(HTTPException):
    status = 503


class GatewayTimeout(HTTPException):
    status = 504


class ClientDisconnected(ConnectionError):
    """The client went away: raised by body reads and writes on a closed connection."""


class RegistrationError(Exception):
    """A mistake found while registering a route, middleware, hook or provider.

    The message names the function and, for routes, the path.
    """
