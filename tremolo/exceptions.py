"""Exceptions that become HTTP responses.

Raise an `HTTPException` (or one of its subclasses) anywhere in a handler, a middleware
hook or a provider: the request is answered with its status, its message as the body and its
headers, unless an error handler registered with ``@app.error(status)`` answers instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .http.status import reason
from .types import HeadersLike


class HTTPException(Exception):
    """An error answered with an HTTP status.

    Either form works: ``HTTPException(404)`` or ``HTTPException(404, 'no such book')``
    (a status first, as in Starlette), or ``NotFound('no such book')`` and
    ``HTTPException('no such book', status=404)`` (a message first).

    Args:
        message: The response body (defaults to the reason phrase), a `str` or `bytes`. It is
            sent to the client, so it must not contain internals. An `int` here is the status.
        detail: The message, when the status came first.
        status: Overrides the class's status code: 400 to 599.
        headers: Extra response headers, e.g. ``{'Retry-After': '3'}``.

    Raises:
        TypeError: A status that is not an `int`, a message that is not `str` or `bytes`, or
            the status given twice.
        ValueError: A status outside 400-599.
    """

    status: int = 500
    #: The statuses this class may carry (`Redirect`: 300-399).
    _statuses = range(400, 600)

    def __init__(
        self, message: str | bytes | int | None = None, detail: str | bytes | None = None, *,
        status: int | None = None, headers: HeadersLike | None = None,
    ) -> None:
        if isinstance(message, int) and not isinstance(message, bool):
            # HTTPException(404): a positional int is the status (Starlette's habit).
            if status is not None:
                raise TypeError(f'{type(self).__name__}() got the status twice: {message!r} '
                                f'and status={status!r}')
            status, message, detail = message, detail, None
        elif detail is not None:
            raise TypeError(f'{type(self).__name__}() takes detail only after a status, as in '
                            f'{type(self).__name__}(404, {detail!r})')
        if status is not None:
            if not isinstance(status, int) or isinstance(status, bool):
                raise TypeError(f'{type(self).__name__}() argument status must be an int, not '
                                f'{status!r}')
            if status not in self._statuses:
                raise ValueError(
                    f'{type(self).__name__}() argument status must be between '
                    f'{self._statuses.start} and {self._statuses.stop - 1}, not {status!r}'
                )
            self.status = status
        if message is None:
            message = reason(self.status)
        elif not isinstance(message, (str, bytes)):
            raise TypeError(f'{type(self).__name__}() argument message must be str or bytes, '
                            f'not {type(message).__name__}')
        self.message: str | bytes = message
        self.headers: list[tuple[str, str]] = list(
            headers.items() if isinstance(headers, Mapping) else headers or ()
        )
        super().__init__(message)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass's own status is checked once, where it is defined: `status = 99` would
        # otherwise be found only on the wire, as a malformed status line.
        status = cls.__dict__.get('status')
        if status is not None and (not isinstance(status, int) or isinstance(status, bool)
                                   or status not in cls._statuses):
            raise TypeError(
                f'{cls.__qualname__}.status must be an int between {cls._statuses.start} and '
                f'{cls._statuses.stop - 1}, not {status!r}'
            )

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.status}, {self.message!r})'


class Redirect(HTTPException):
    """Redirect the client to ``location`` (302 Found unless ``status`` says otherwise)."""

    status = 302
    _statuses = range(300, 400)

    def __init__(self, location: str, status: int = 302) -> None:
        if not isinstance(location, str):
            raise TypeError(f'Redirect() argument location must be str, not '
                            f'{type(location).__name__}')
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
