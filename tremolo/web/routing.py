"""Routes: static paths in a dict, parameterised and regex paths as compiled patterns.

Path syntax:

- ``/about``: a static path, found with one dict lookup.
- ``/user/{id}``, ``/user/{id:int}``, ``/files/{rest:path}``: path parameters with converters
  (``str`` by default: one segment; ``int``, ``float``, ``uuid``, ``path``: the rest,
  slashes included).
- ``^/page/(?P<number>[0-9]+)$``: a raw regular expression (a path that starts with ``^``);
  named groups become path parameters (as strings).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any, Callable, Generic, Optional, TypeVar, Union

from ..exceptions import MethodNotAllowed, NotFound, RegistrationError

T = TypeVar('T')

#: The method of a route that takes every method (a mounted ASGI application answers for
#: itself, 405 included).
ANY_METHOD = '*'

_PARAM = re.compile(r'{([A-Za-z_][A-Za-z_0-9]*)(?::([A-Za-z_]+))?}')

#: Converter name to (regular expression, conversion).
CONVERTERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    'str': (r'[^/]+', str),
    'int': (r'-?[0-9]+', int),
    'float': (r'-?[0-9]+(?:\.[0-9]+)?', float),
    'uuid': (r'[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}',
             uuid.UUID),
    'path': (r'.*', str),
}


class PathPattern:
    """A compiled route path.

    Attributes:
        path: The path as registered.
        static: Whether it has no parameters (matched by dict lookup).
        params: Parameter names in order.
    """

    __slots__ = ('path', 'static', 'params', 'regex', 'converters', 'segments')

    def __init__(self, path: str) -> None:
        self.path = path
        self.converters: dict[str, Callable[[str], Any]] = {}
        #: Each ``/``-separated segment: its text, or ``(converter,)`` for a segment that is
        #: one parameter; ``None`` for a regex (see `covers`).
        self.segments: Optional[tuple[Segment, ...]] = None
        if path.startswith('^'):
            try:
                self.regex: Optional[re.Pattern[str]] = re.compile(path)
            except re.error as exc:
                raise RegistrationError(f'invalid route regex {path!r}: {exc}') from exc
            self.params = tuple(self.regex.groupindex)
            self.static = False
            return
        if not path.startswith('/'):
            raise RegistrationError(f'route path {path!r} must start with / (or ^ for a regex)')
        pattern = []
        params: list[str] = []
        last = 0
        for match in _PARAM.finditer(path):
            name, converter = match.group(1), match.group(2) or 'str'
            if converter not in CONVERTERS:
                raise RegistrationError(
                    f'unknown converter {converter!r} in route {path!r}; '
                    f'known: {", ".join(CONVERTERS)}'
                )
            if name in params:
                raise RegistrationError(f'parameter {name!r} repeated in route {path!r}')
            params.append(name)
            regex, convert = CONVERTERS[converter]
            if convert is not str:
                self.converters[name] = convert
            pattern.append(re.escape(path[last:match.start()]))
            pattern.append(f'(?P<{name}>{regex})')
            last = match.end()
        rest = _PARAM.sub('', path)
        if '{' in rest or '}' in rest:
            raise RegistrationError(f'malformed parameter in route {path!r}')
        self.params = tuple(params)
        self.static = not params
        if self.static:
            self.regex = None
        else:
            pattern.append(re.escape(path[last:]))
            self.regex = re.compile(''.join(pattern) + r'\Z')
        self.segments = tuple(_segment(text) for text in path.split('/')[1:])

    def covers(self, other: PathPattern) -> bool:
        """Whether every path that ``other`` matches is matched by this pattern too (so that,
        tried first, this one leaves ``other`` unreachable).

        Decided segment by segment, for parameters that fill whole segments; a regex route or
        a segment mixing text and parameters is never claimed to cover anything.
        """
        mine, theirs = self.segments, other.segments
        if mine is None or theirs is None:
            return False
        if mine and mine[-1] == _PATH and len(theirs) >= len(mine):
            # A final {rest:path} takes whatever follows (RFC 3986 segments included).
            mine, theirs = mine[:-1], theirs[:len(mine) - 1]
        elif len(mine) != len(theirs):
            return False
        return all(_covers(a, b) for a, b in zip(mine, theirs))

    def match(self, path: str) -> Optional[dict[str, Any]]:
        """The converted parameters if ``path`` matches, else ``None``."""
        if self.regex is None:
            return {} if path == self.path else None
        match = self.regex.match(path)
        if match is None:
            return None
        params = match.groupdict()
        for name, convert in self.converters.items():
            try:
                params[name] = convert(params[name])
            except ValueError:
                return None
        return params

    def with_prefix(self, prefix: str) -> PathPattern:
        if self.path.startswith('^'):
            return PathPattern('^' + re.escape(prefix) + self.path[1:])
        return PathPattern(prefix + self.path)


#: A segment of a route path: its text, a one-parameter segment as ``(converter,)``, or
#: ``None`` for a segment that mixes text and parameters.
Segment = Union[str, tuple[str], None]
_PATH = ('path',)
_ONE_PARAMETER = re.compile(r'{[A-Za-z_][A-Za-z_0-9]*(?::([A-Za-z_]+))?}')


def _segment(text: str) -> Segment:
    if '{' not in text:
        return text
    match = _ONE_PARAMETER.fullmatch(text)
    return (match.group(1) or 'str',) if match else None


#: Converters whose matches include all of another's (besides their own).
_WIDER = {'str': frozenset(CONVERTERS) - {'path'}, 'float': frozenset(('float', 'int')),
          'int': frozenset(('int',)), 'uuid': frozenset(('uuid',)), 'path': frozenset(CONVERTERS)}


def _covers(a: Segment, b: Segment) -> bool:
    """Whether segment ``a`` matches every value that segment ``b`` matches."""
    if a is None or b is None:
        return False  # a segment mixing text and parameters: nothing is claimed
    if isinstance(a, str):
        return a == b
    if isinstance(b, str):
        # A literal segment: does the converter's pattern take it?
        return re.fullmatch(CONVERTERS[a[0]][0], b) is not None
    return b[0] in _WIDER[a[0]]


def shadowed(earlier: PathPattern, earlier_methods: Iterable[str], later: PathPattern,
             later_methods: Iterable[str]) -> list[str]:
    """The methods of ``later`` that can never be reached because ``earlier``, tried first,
    matches every path it matches and answers them (``GET`` answers ``HEAD`` too)."""
    if later.static or earlier.static or earlier.path == later.path:
        return []  # static paths are looked up before any pattern; one path is one entry
    answered = set(earlier_methods)
    if 'GET' in answered:
        answered.add('HEAD')
    common = sorted(answered.intersection(later_methods))
    if common and earlier.covers(later):
        return common
    return []


def shadow_error(methods: list[str], earlier: str, later: str) -> RegistrationError:
    """The error for a route that `shadowed` found unreachable, naming both routes."""
    return RegistrationError(
        f'{later} can never be reached for {", ".join(methods)}: {earlier} matches every '
        f'path it matches and is tried first; register the more specific route first'
    )


class RouteEntry(Generic[T]):
    """Everything registered for one path: an endpoint per method."""

    __slots__ = ('pattern', 'endpoints', 'allow', 'wheres')

    def __init__(self, pattern: PathPattern) -> None:
        self.pattern = pattern
        self.endpoints: dict[str, T] = {}
        self.allow: tuple[str, ...] = ()
        #: What serves each method, for messages.
        self.wheres: dict[str, str] = {}

    def add(self, method: str, endpoint: T, where: str) -> None:
        if method in self.endpoints:
            raise RegistrationError(
                f'duplicate route: {method} {self.pattern.path} is already registered ({where})'
            )
        self.endpoints[method] = endpoint
        self.wheres[method] = where
        methods = set(self.endpoints)
        if 'GET' in methods:
            methods.add('HEAD')  # RFC 9110 §9.3.2: HEAD is GET without the content
        self.allow = tuple(sorted(methods))

    def endpoint(self, method: str) -> Optional[T]:
        endpoint = self.endpoints.get(method)
        if endpoint is None:
            if method == 'HEAD':
                endpoint = self.endpoints.get('GET')
            if endpoint is None:
                endpoint = self.endpoints.get(ANY_METHOD)  # a mounted ASGI application
        return endpoint


def _answering(entry: RouteEntry[T], method: str) -> str:
    """The method whose endpoint answers ``method`` on ``entry`` (``GET`` answers ``HEAD``)."""
    return method if method in entry.endpoints else 'GET'


class Router(Generic[T]):
    """Finds the endpoint for a method and a path."""

    def __init__(self) -> None:
        self.static: dict[str, RouteEntry[T]] = {}
        self.dynamic: list[RouteEntry[T]] = []
        self._entries: dict[str, RouteEntry[T]] = {}

    def add(self, path: str, methods: tuple[str, ...], endpoint: T, where: str) -> None:
        """Route ``methods`` of ``path`` to ``endpoint``.

        Raises:
            RegistrationError: A method already routed for ``path``, or a route made
                unreachable (see `shadowed`): this one by an earlier pattern, or a later one
                by this.
        """
        entry = self._entries.get(path)
        if entry is None:
            pattern = PathPattern(path)
            entry = self._entries[path] = RouteEntry(pattern)
            if pattern.static:
                self.static[path] = entry
            else:
                self.dynamic.append(entry)
        for method in methods:
            entry.add(method, endpoint, where)
        if not entry.pattern.static:
            self._check_reachable(entry, methods, where)

    def _check_reachable(self, entry: RouteEntry[T], methods: tuple[str, ...],
                         where: str) -> None:
        before = True
        for other in self.dynamic:
            if other is entry:
                before = False
                continue
            if before:
                common = shadowed(other.pattern, other.endpoints, entry.pattern, methods)
                if common:
                    raise shadow_error(common, other.wheres[_answering(other, common[0])],
                                       where)
            else:
                common = shadowed(entry.pattern, methods, other.pattern, other.endpoints)
                if common:
                    raise shadow_error(common, where, other.wheres[common[0]])

    def entries(self) -> list[RouteEntry[T]]:
        return list(self._entries.values())

    def lookup(self, method: str, path: str) -> tuple[T, dict[str, Any]]:
        """The endpoint and path parameters for a request.

        Raises:
            NotFound: No route matches the path.
            MethodNotAllowed: Routes match the path but none accepts the method.
        """
        entry = self.static.get(path)
        if entry is not None:
            endpoint = entry.endpoint(method)
            if endpoint is not None:
                return endpoint, {}
            allowed = set(entry.allow)
        else:
            allowed = set()
        for entry in self.dynamic:
            params = entry.pattern.match(path)
            if params is not None:
                endpoint = entry.endpoint(method)
                if endpoint is not None:
                    return endpoint, params
                allowed.update(entry.allow)
        if allowed:
            raise MethodNotAllowed(sorted(allowed))
        raise NotFound()
