"""Default response headers: fields that every response of a route carries, unless the
response sets the same name itself.

They are registered with `tremolo.Tremolo.add_default_header` (security headers,
``Vary: Origin``, a rate limit's policy, a request id...) and worked out once per route,
when the application is compiled: a constant field becomes bytes that `tremolo.Response`
appends to its head as they are, and a field whose value changes with each request is a
function of the request called as the head is written. Either costs a fraction of an
``on_response`` hook that adds the same field (a call with its arguments, the checks and the
encoding of the field, every time).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

if TYPE_CHECKING:
    from .request import Request

__all__ = ['DefaultHeader', 'DefaultHeaders', 'HeaderValue', 'RequestHeaderValue']

logger = logging.getLogger('tremolo')

#: A default header's value: a string, or a function of the route's options (its effective
#: options, the server's overridden by the route's) returning the value for that route, or
#: ``None`` to leave the header out of it. The function runs once per route.
HeaderValue = Union[str, Callable[[Mapping[str, Any]], Optional[str]]]
#: A default header's value per request: a function of the request, called as the head of
#: each response is written, returning the value or ``None`` to leave the header out.
RequestHeaderValue = Callable[['Request'], Optional[str]]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.5: no CR, LF or NUL in a field value (they would split or end the header).
_UNSAFE_VALUE = re.compile(r'[\x00-\x08\x0a-\x1f\x7f]')
# Set by the server from the body, or per connection: never a default.
_RESERVED = frozenset(('content-length', 'transfer-encoding', 'connection', 'date', 'server',
                       'content-type'))


def check_value(name: str, value: Any) -> str:
    """``value`` if it can be the value of the header ``name``.

    Raises:
        ValueError: Not a string, control characters, or characters outside ISO-8859-1.
    """
    if not isinstance(value, str):
        raise ValueError(f'the value of {name} must be a str, not {type(value).__name__}')
    if _UNSAFE_VALUE.search(value) is not None:
        raise ValueError(f'invalid characters in the value of {name}: {value!r}')
    try:
        value.encode('latin-1')
    except UnicodeEncodeError:
        raise ValueError(f'the value of {name} is not ISO-8859-1: {value!r}') from None
    return value


class DefaultHeader:
    """One registered default header.

    Args:
        name: The field name.
        value: Its value, or a function of the route's options (see `HeaderValue`).
        per_request: Instead of ``value``, a function of the request returning the value of
            each response (see `RequestHeaderValue`).
        prefix: Only the responses to paths under this prefix carry it (``None``: all).
        https_only: Only responses to HTTPS requests carry it (as the client used it: behind
            a trusted proxy, the forwarded scheme), like ``Strict-Transport-Security``
            (RFC 6797 §7.2).

    Raises:
        ValueError: An invalid name or value, a field the server sets itself
            (``Content-Length``, ``Content-Type``, ``Date``...), ``Vary`` per request, or a
            prefix that does not start with ``/``.
        TypeError: Neither or both of ``value`` and ``per_request``, or a value that is
            neither a string nor a function.
    """

    __slots__ = ('name', 'lower', 'value', 'per_request', 'prefix', 'https_only')

    def __init__(self, name: str, value: Optional[HeaderValue] = None, *,
                 per_request: Optional[RequestHeaderValue] = None,
                 prefix: Optional[str] = None, https_only: bool = False) -> None:
        if not isinstance(name, str) or _TOKEN.fullmatch(name) is None:
            raise ValueError(f'invalid header name: {name!r}')
        if name.lower() in _RESERVED:
            raise ValueError(f'{name} is set by the server (or by the response\'s own '
                             f'attributes), not as a default header')
        if (value is None) == (per_request is None):
            raise TypeError(f'default header {name}: give either a value or a per_request '
                            f'function')
        if isinstance(value, str):
            check_value(name, value)
        elif value is not None and not callable(value):
            raise TypeError(f'the value of default header {name} must be a str or a function '
                            f'of the route options, not {type(value).__name__}')
        if per_request is not None:
            if not callable(per_request):
                raise TypeError(f'per_request of default header {name} must be a function of '
                                f'the request, not {type(per_request).__name__}')
            if name.lower() == 'vary':
                raise ValueError('Vary cannot be per request: the names a route varies on '
                                 'are known in advance')
        if prefix is not None:
            if not isinstance(prefix, str) or not prefix.startswith('/'):
                raise ValueError(f'default header prefix {prefix!r} must start with /')
            prefix = prefix.rstrip('/') or None
        self.name = name
        self.lower = name.lower()
        self.value = value
        self.per_request = per_request
        self.prefix = prefix
        self.https_only = bool(https_only)

    def with_prefix(self, prefix: str) -> DefaultHeader:
        """This header, as seen from an application that mounts its owner under ``prefix``."""
        header = DefaultHeader(self.name, self.value, per_request=self.per_request,
                               https_only=self.https_only)
        header.prefix = prefix + self.prefix if self.prefix else prefix
        return header

    def value_for(self, options: Mapping[str, Any]) -> Optional[str]:
        """The value for a route with these effective options (``None``: left out; for a
        header per request, ``None`` too).

        Raises:
            ValueError: The function returned something that cannot be a header value.
        """
        value = self.value
        if value is None or isinstance(value, str):
            return value
        result = value(options)
        return None if result is None else check_value(self.name, result)

    def __repr__(self) -> str:
        scope = f' under {self.prefix}' if self.prefix else ''
        kind = ' per request' if self.per_request is not None else ''
        return (f'<DefaultHeader {self.name}{kind}{scope}'
                f'{" (HTTPS)" if self.https_only else ""}>')


class DefaultHeaders:
    """The default headers of one route, worked out once (what a response appends).

    A response that sets a field of the same name (in any case) keeps its own and leaves the
    default out, except ``Vary``: its names are added to the response's own ``Vary``, before
    them, once each (RFC 9110 §12.5.5: the response varies on both).

    Args:
        headers: ``(name, value)`` pairs for every response.
        https_headers: ``(name, value)`` pairs for responses to HTTPS requests only.
        per_request: ``(name, function, https_only)``: the headers whose value is a function
            of the request.
    """

    __slots__ = ('headers', 'https_headers', 'per_request', 'plain', 'secure', 'names',
                 'https', '_dynamic')

    def __init__(self, headers: Iterable[tuple[str, str]],
                 https_headers: Iterable[tuple[str, str]] = (),
                 per_request: Iterable[tuple[str, RequestHeaderValue, bool]] = ()) -> None:
        self.headers = tuple(headers)
        self.https_headers = tuple(https_headers)
        self.per_request = tuple(per_request)
        #: The constant fields for a plain-HTTP request, and for an HTTPS one.
        self.plain = _encode(self.headers)
        self.secure = _encode(self.headers + self.https_headers)
        #: Lower-case names: a response that sets one of them keeps its own.
        self.names = frozenset(name.lower() for name, _ in self.headers + self.https_headers) | {
            name.lower() for name, _, _ in self.per_request}
        #: Whether some depend on the scheme (then the request's is read).
        self.https = bool(self.https_headers) or any(
            https_only for _, _, https_only in self.per_request)
        self._dynamic = tuple((f'{name}: ', function, https_only, name)
                              for name, function, https_only in self.per_request)

    def head_lines(self, own: list[tuple[str, str]], request: Request) -> bytes:
        """The header lines of a response head: the response's ``own`` fields, then the
        defaults it does not override.

        A per-request function that fails, or returns what cannot be a header value, is
        logged as an error and its header left out: the response goes out all the same.
        """
        if self.https:
            connection = request.connection
            secure = (connection.scheme if not connection.trusted else request.scheme
                      ) == 'https'
        else:
            secure = False
        if own:
            names = self.names
            for name, _ in own:
                if name.lower() in names:
                    return self._merged(own, request, secure, {name.lower() for name, _ in own})
            # Nothing in common (the common case): the defaults as they are.
            head = _encode(own) + (self.secure if secure else self.plain)
        else:
            head = self.secure if secure else self.plain
        if not self._dynamic:
            return head
        lines = []
        for start, function, https_only, name in self._dynamic:
            if https_only and not secure:
                continue
            try:
                value = function(request)
            except Exception:
                _failed(name)
                continue
            if value is not None:
                if type(value) is not str or not (value.isascii() and value.isprintable()):
                    # The rare case, checked: left out (and logged) if it cannot be a value.
                    if _checked(name, value) is None:
                        continue
                lines.append(f'{start}{value}\r\n')
        return head + ''.join(lines).encode('latin-1') if lines else head

    def _merged(self, own: list[tuple[str, str]], request: Request, secure: bool,
                own_names: set[str]) -> bytes:
        items = list(own)
        for name, value in self.headers + self.https_headers if secure else self.headers:
            lower = name.lower()
            if lower not in own_names:
                items.append((name, value))
            elif lower == 'vary':
                _merge_vary(items, value)
        for _, function, https_only, name in self._dynamic:
            if (https_only and not secure) or name.lower() in own_names:
                continue
            try:
                value = function(request)
            except Exception:
                _failed(name)
                continue
            if value is not None and _checked(name, value) is not None:
                items.append((name, value))
        return _encode(items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DefaultHeaders) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[Any, ...]:
        return (self.headers, self.https_headers,
                tuple((name, id(function), https) for name, function, https in self.per_request))

    def __repr__(self) -> str:
        names = [name for name, _ in self.headers] + [
            f'{name} (HTTPS)' for name, _ in self.https_headers] + [
            f'{name} (per request)' for name, _, _ in self.per_request]
        return f'<DefaultHeaders {", ".join(names)}>'


def resolve(headers: Iterable[DefaultHeader], options: Mapping[str, Any]
            ) -> Optional[DefaultHeaders]:
    """The default headers of a route with the effective ``options``, from those that apply
    to its path (in registration order), or ``None`` when there are none.

    Of several headers of one name, the one with the longest prefix wins (the last
    registered among equals), except ``Vary``, whose names are all kept, once each.

    Raises:
        ValueError: A value function returned an invalid value.
    """
    chosen: dict[tuple[str, bool], tuple[int, DefaultHeader, Optional[str]]] = {}
    vary: dict[bool, list[str]] = {}
    for header in headers:
        value = header.value_for(options)
        if value is None and header.per_request is None:
            continue
        if header.lower == 'vary' and value is not None:
            names = vary.setdefault(header.https_only, [])
            for name in value.split(','):
                name = name.strip()
                if name and name.lower() not in {each.lower() for each in names}:
                    names.append(name)
            continue
        key = (header.lower, header.https_only)
        depth = len(header.prefix or '')
        if key not in chosen or depth >= chosen[key][0]:
            chosen[key] = (depth, header, value)
    plain: list[tuple[str, str]] = []
    secure: list[tuple[str, str]] = []
    per_request: list[tuple[str, RequestHeaderValue, bool]] = []
    for (_, https), (_, header, value) in chosen.items():
        if header.per_request is not None:
            per_request.append((header.name, header.per_request, https))
        elif value is not None:
            (secure if https else plain).append((header.name, value))
    if vary.get(False):
        plain.append(('Vary', ', '.join(vary[False])))
    if vary.get(True):
        listed = {name.lower() for name in vary.get(False, ())}
        extra = [name for name in vary[True] if name.lower() not in listed]
        if extra:
            secure.append(('Vary', ', '.join(extra)))
    if not plain and not secure and not per_request:
        return None
    return DefaultHeaders(plain, secure, per_request)


def _failed(name: str) -> None:
    logger.exception('the value of default header %s could not be made: it is left out', name)


def _checked(name: str, value: Any) -> Optional[bytes]:
    """A value of a header per request, encoded, or ``None`` (logged) when it cannot be."""
    try:
        return check_value(name, value).encode('latin-1')
    except ValueError as exc:
        logger.error('default header %s is left out: %s', name, exc)
        return None


def _encode(items: Iterable[tuple[str, str]]) -> bytes:
    return ''.join([f'{name}: {value}\r\n' for name, value in items]).encode('latin-1')


def _merge_vary(items: list[tuple[str, str]], value: str) -> None:
    """Add the names of ``value`` to the first ``Vary`` field of ``items`` (before its own),
    once each; ``*`` (varies on more than fields) absorbs them."""
    for index, (name, listed) in enumerate(items):
        if name.lower() != 'vary':
            continue
        names = [item.strip() for item in listed.split(',') if item.strip()]
        seen = {item.lower() for item in names}
        if '*' in seen:
            return
        added = [item.strip() for item in value.split(',')
                 if item.strip() and item.strip().lower() not in seen]
        if added:
            items[index] = (name, ', '.join(added + names))
        return
