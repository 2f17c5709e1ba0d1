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

__all__ = ['DefaultHeader', 'DefaultHeaders', 'HeaderValue', 'RequestHeaderValue', 'Validated']

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


class Validated:
    """A function per request whose values need no check: ``validated=True`` of
    `DefaultHeader` (the quick way of writing the head calls the function inside)."""

    __slots__ = ('function',)

    def __init__(self, function: RequestHeaderValue) -> None:
        self.function = function

    def __call__(self, request: Request) -> Optional[str]:
        return self.function(request)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Validated) and other.function == self.function

    def __hash__(self) -> int:
        return hash(self.function)

    def __repr__(self) -> str:
        return f'Validated({self.function!r})'


class DefaultHeader:
    """One registered default header.

    Args:
        name: The field name.
        value: Its value, or a function of the route's options (see `HeaderValue`).
        per_request: Instead of ``value``, a function of the request returning the value of
            each response (see `RequestHeaderValue`).
        validated: With ``per_request``: its values are valid field values by construction
            (made by the middleware from parts it checked: no control characters, ISO-8859-1),
            so the common way of writing the head does not check them again.
        if_request_has: With ``per_request``: call it only for requests that have this
            header field (the others leave the header out, without a call), like the CORS
            fields that answer ``Origin``.
        combine: A field of its own even when other default headers of its name apply (a
            list field, such as the ``RateLimit-Policy`` of several limiters): by default the
            one with the longest prefix wins.
        prefix: Only the responses to paths under this prefix carry it (``None``: all).
        https_only: Only responses to HTTPS requests carry it (as the client used it: behind
            a trusted proxy, the forwarded scheme), like ``Strict-Transport-Security``
            (RFC 6797 §7.2).

    Raises:
        ValueError: An invalid name or value, a field the server sets itself
            (``Content-Length``, ``Content-Type``, ``Date``...), ``Vary`` per request, or a
            prefix that does not start with ``/``.
        TypeError: Neither or both of ``value`` and ``per_request``, a value that is neither a
            string nor a function, or ``if_request_has`` without ``per_request``.
    """

    __slots__ = ('name', 'lower', 'value', 'per_request', 'if_request_has', 'prefix',
                 'https_only', 'combine')

    def __init__(self, name: str, value: Optional[HeaderValue] = None, *,
                 per_request: Optional[RequestHeaderValue] = None,
                 if_request_has: Optional[str] = None,
                 prefix: Optional[str] = None, https_only: bool = False,
                 combine: bool = False, validated: bool = False) -> None:
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
        if validated and per_request is None:
            raise TypeError(f'default header {name}: validated goes with a per_request '
                            f'function')
        if if_request_has is not None:
            if per_request is None:
                raise TypeError(f'default header {name}: if_request_has goes with a '
                                f'per_request function')
            if not isinstance(if_request_has, str) or _TOKEN.fullmatch(if_request_has) is None:
                raise ValueError(f'if_request_has: {if_request_has!r} is not a header name')
        if prefix is not None:
            if not isinstance(prefix, str) or not prefix.startswith('/'):
                raise ValueError(f'default header prefix {prefix!r} must start with /')
            prefix = prefix.rstrip('/') or None
        self.name = name
        self.lower = name.lower()
        self.value = value
        self.per_request: Optional[RequestHeaderValue] = (
            Validated(per_request) if validated and per_request is not None
            and not isinstance(per_request, Validated) else per_request)
        self.if_request_has = if_request_has
        self.prefix = prefix
        self.https_only = bool(https_only)
        self.combine = bool(combine)

    def with_prefix(self, prefix: str) -> DefaultHeader:
        """This header, as seen from an application that mounts its owner under ``prefix``."""
        header = DefaultHeader(self.name, self.value, per_request=self.per_request,
                               if_request_has=self.if_request_has, https_only=self.https_only,
                               combine=self.combine)
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
        per_request: ``(name, function, https_only, if_request_has)``: the headers whose
            value is a function of the request (called only for requests that have the field
            ``if_request_has``, unless it is ``None``).
    """

    __slots__ = ('headers', 'https_headers', 'per_request', 'plain', 'secure', 'names',
                 'https', '_always', '_gated', '_secure_only', 'head_lines')

    def __init__(self, headers: Iterable[tuple[str, str]],
                 https_headers: Iterable[tuple[str, str]] = (),
                 per_request: Iterable[tuple[str, RequestHeaderValue, bool, Optional[str]]] = ()
                 ) -> None:
        self.headers = tuple(headers)
        self.https_headers = tuple(https_headers)
        self.per_request = tuple(per_request)
        #: The constant fields for a plain-HTTP request, and for an HTTPS one.
        self.plain = _encode(self.headers)
        self.secure = _encode(self.headers + self.https_headers)
        #: Lower-case names: a response that sets one of them keeps its own.
        self.names = frozenset(name.lower() for name, _ in self.headers + self.https_headers) | {
            name.lower() for name, _, _, _ in self.per_request}
        #: Whether some depend on the scheme (then the request's is read).
        self.https = bool(self.https_headers) or any(
            https_only for _, _, https_only, _ in self.per_request)
        # The headers per request, as (the start of the line, the function, the name), by
        # when they apply: always, when the request has a field (by its lower-case name, as
        # the parser keeps them), for HTTPS requests.
        self._always = tuple((f'{name}: ', function, name) for name, function, https_only, field
                             in self.per_request if not https_only and field is None)
        gated: dict[bytes, list[tuple[str, RequestHeaderValue, str]]] = {}
        for name, function, https_only, field in self.per_request:
            if not https_only and field is not None:
                gated.setdefault(field.lower().encode('latin-1'), []).append(
                    (f'{name}: ', function, name))
        self._gated = tuple((field, tuple(entries)) for field, entries in gated.items())
        self._secure_only = tuple(
            (f'{name}: ', function, name,
             None if field is None else field.lower().encode('latin-1'))
            for name, function, https_only, field in self.per_request if https_only)
        #: ``head_lines(own, request)``: the header lines of a response head, the
        #: response's ``own`` fields, then the defaults it does not override (see `lines`).
        self.head_lines: Callable[[list[tuple[str, str]], Request], bytes] = (
            self._quick_lines() or self.lines)

    def lines(self, own: list[tuple[str, str]], request: Request) -> bytes:
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
        if not self.per_request:
            return head
        return head + self._request_lines(request, secure, None)

    def _quick_lines(self) -> Optional[Callable[[list[tuple[str, str]], Request], bytes]]:
        """`lines`, written for these headers, for the common case: a response without
        fields of the same names as the defaults, whose headers per request all give a
        valid value. Anything else (fields of its own, a request that has a field some
        headers are given for, an HTTPS request with headers of its own, a function that
        fails or gives ``None``) is handed to `lines`. ``None`` when no header is per
        request (`lines` is quick then).

        The function is made from source, like those of `dataclasses`: with the values in
        local variables and the constant parts of the lines in one f-string, it costs a
        fraction of the loop over the headers that `lines` makes, for every response.
        """
        if not self._always:
            return None
        count = len(self._always)
        namespace: dict[str, Any] = {'general': self.lines, 'PLAIN': self.plain,
                                     'SECURE': self.secure}
        source = ['def head_lines(own, request):',
                  '    if own:',
                  '        return general(own, request)']
        if self.https:
            source += ['    connection = request.connection',
                       '    if (connection.scheme if not connection.trusted else '
                       "request.scheme) == 'https':"]
            source += (['        return general(own, request)'] if self._secure_only else
                       ['        head = SECURE'])
            source += ['    else:',
                       '        head = PLAIN']
        else:
            source += ['    head = PLAIN']
        if self._gated:
            for index, (field, _) in enumerate(self._gated):
                namespace[f'FIELD{index}'] = field
            source += ['    fields = request.head.headers',
                       '    if ' + ' or '.join(f'FIELD{index} in fields'
                                               for index in range(len(self._gated))) + ':',
                       '        return general(own, request)']
        template = ''
        checked = []
        for index, (start, function, _) in enumerate(self._always):
            if isinstance(function, Validated):
                function = function.function  # called straight, its values not checked
            else:
                checked.append(f'value{index}')
            namespace[f'function{index}'] = function
            template += f'{start}{{value{index}}}\r\n'
        values = ', '.join(f'value{index}' for index in range(count))
        namespace['finish'] = self._finish
        # Every value a string without a control character: the lines as they are.
        condition = ' and '.join(f'value{index} is not None' for index in range(count))
        if checked:
            condition += f' and ({" + ".join(checked)}).isprintable()'
        source += ['    try:',
                   f'        {values} = ' + ', '.join(
                       f'function{index}(request)' for index in range(count)),
                   f'        if {condition}:',
                   f'            return head + f{template!r}.encode("latin-1")',
                   '    except Exception:',
                   # A function failed (`lines` logs it), or a value is not a string or not
                   # ISO-8859-1 (`lines` logs it and leaves its header out).
                   '        return general(own, request)',
                   # Values left out (None), or with a tab: checked one by one.
                   f'    return head + finish(({values},))']
        exec('\n'.join(source), namespace)  # noqa: S102 (made from validated names only)
        quick: Callable[[list[tuple[str, str]], Request], bytes] = namespace['head_lines']
        return quick

    def _finish(self, values: tuple[Optional[str], ...]) -> bytes:
        """The lines of the headers that apply to every request, from their ``values``
        (strings or ``None``), each checked."""
        return _encode_lines(''.join([_value_line(start, name, value) for (start, _, name), value
                                      in zip(self._always, values)]))

    def _request_lines(self, request: Request, secure: bool,
                       own_names: Optional[set[str]]) -> bytes:
        """The lines of the headers per request, but those in ``own_names``."""
        text = ''
        for start, function, name in self._always:
            text += _line(start, function, name, request, own_names)
        if self._gated:
            fields = request.head.headers
            for field, entries in self._gated:
                if field in fields:
                    for start, function, name in entries:
                        text += _line(start, function, name, request, own_names)
        if secure and self._secure_only:
            text += self._secure_lines(request, own_names)
        return _encode_lines(text)

    def _secure_lines(self, request: Request, own_names: Optional[set[str]]) -> str:
        """The lines of the headers per request for HTTPS requests only."""
        text = ''
        for start, function, name, gate in self._secure_only:
            if gate is None or gate in request.head.headers:
                text += _line(start, function, name, request, own_names)
        return text

    def _merged(self, own: list[tuple[str, str]], request: Request, secure: bool,
                own_names: set[str]) -> bytes:
        items = list(own)
        for name, value in self.headers + self.https_headers if secure else self.headers:
            lower = name.lower()
            if lower not in own_names:
                items.append((name, value))
            elif lower == 'vary':
                _merge_vary(items, value)
        return _encode(items) + self._request_lines(request, secure, own_names)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DefaultHeaders) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[Any, ...]:
        return (self.headers, self.https_headers,
                tuple((name, id(function), https, field)
                      for name, function, https, field in self.per_request))

    def __repr__(self) -> str:
        names = [name for name, _ in self.headers] + [
            f'{name} (HTTPS)' for name, _ in self.https_headers] + [
            f'{name} (per request)' for name, _, _, _ in self.per_request]
        return f'<DefaultHeaders {", ".join(names)}>'


def resolve(headers: Iterable[DefaultHeader], options: Mapping[str, Any]
            ) -> Optional[DefaultHeaders]:
    """The default headers of a route with the effective ``options``, from those that apply
    to its path (in registration order), or ``None`` when there are none.

    Of several headers of one name, the one with the longest prefix wins (the last
    registered among equals), except ``Vary``, whose names are all kept, once each, and
    those registered with ``combine``, each a field of its own.

    Raises:
        ValueError: A value function returned an invalid value.
    """
    chosen: dict[tuple[Any, ...], tuple[int, DefaultHeader, Optional[str]]] = {}
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
        key: tuple[Any, ...] = (header.lower, header.https_only)
        if header.combine:
            key += (len(chosen),)  # a place of its own, in registration order
        depth = len(header.prefix or '')
        if key not in chosen or depth >= chosen[key][0]:
            chosen[key] = (depth, header, value)
    plain: list[tuple[str, str]] = []
    secure: list[tuple[str, str]] = []
    per_request: list[tuple[str, RequestHeaderValue, bool, Optional[str]]] = []
    for _, header, value in chosen.values():
        if header.per_request is not None:
            per_request.append((header.name, header.per_request, header.https_only,
                                header.if_request_has))
        elif value is not None:
            (secure if header.https_only else plain).append((header.name, value))
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


def _line(start: str, function: RequestHeaderValue, name: str, request: Request,
          own_names: Optional[set[str]]) -> str:
    """The line of a header per request, or ``''`` when its value is ``None`` or the response
    has its own (logged and left out when its function fails or returns what cannot be a
    header value)."""
    if own_names is not None and name.lower() in own_names:
        return ''
    try:
        value = function(request)
    except Exception:
        _failed(name)
        return ''
    return _value_line(start, name, value)


def _value_line(start: str, name: str, value: Optional[str]) -> str:
    """The line of a header per request of this ``value``, or ``''`` when it is ``None``
    (logged and left out when it cannot be a header value)."""
    if value is None:
        return ''
    try:
        if not value.isprintable():  # the rare case: checked (a tab is allowed)
            check_value(name, value)
    except Exception:
        _failed(name)
        return ''
    return f'{start}{value}\r\n'


def _encode_lines(text: str) -> bytes:
    """Header lines, encoded (those that are not ISO-8859-1 logged and left out)."""
    try:
        return text.encode('latin-1')
    except UnicodeEncodeError:
        return _encode_each(text.splitlines(keepends=True))


def _failed(name: str) -> None:
    logger.exception('the value of default header %s could not be made: it is left out', name)


def _encode_each(lines: list[str]) -> bytes:
    """``lines`` encoded one by one: those that are not ISO-8859-1 are logged and left out."""
    encoded = []
    for line in lines:
        try:
            encoded.append(line.encode('latin-1'))
        except UnicodeEncodeError:
            logger.error('default header %s is left out: its value is not ISO-8859-1: %r',
                         *line.rstrip('\r\n').split(': ', 1))
    return b''.join(encoded)


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
