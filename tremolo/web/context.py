"""Per-request context and per-worker globals."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Mapping, Optional

if TYPE_CHECKING:
    from ..connection import Connection


class Context:
    """Shared by the middleware hooks and the handler of one request.

    Set any attribute you like (``context.user = ...``) to pass data from a middleware to the
    handler.

    Attributes:
        connection: The connection the request arrived on.
        route: The path pattern of the route that matched (``'/user/{id}'``), or ``None``
            when no route did (the request is answered 404 or 405): what identifies an
            endpoint, for middleware that keeps something per route (rate limits, metrics).
        customized: Whether `options` was asked for (so may differ from the route's): the
            application then applies the body limits and passes the options to the handler
            from there. Read-only in effect: `options` sets it.
    """

    __slots__ = ('connection', 'route', 'customized', '_route_options', '_options', '__dict__')

    def __init__(self, route_options: Mapping[str, Any], connection: Connection,
                 route: Optional[str] = None) -> None:
        self.connection = connection
        self.route = route
        # An attribute rather than a property: read for every request, by the application
        # and by middleware.
        self.customized = False
        self._route_options = route_options
        self._options: Optional[dict[str, Any]] = None

    @property
    def options(self) -> dict[str, Any]:
        """The effective options of this request: the server's, overridden by the route's.

        Changing a value here changes it for this request only (e.g. ``max_body_size`` or
        ``body_buffer_size`` from an ``on_request`` hook); the route's options are untouched.
        """
        if self._options is None:
            self._options = dict(self._route_options)
            self.customized = True
        return self._options

    def option(self, name: str, default: Any = None) -> Any:
        """One effective option, without copying the options for this request."""
        options = self._options if self._options is not None else self._route_options
        return options.get(name, default)

    if TYPE_CHECKING:
        # The attributes of the application's own (``context.user = ...``): any name, any
        # value, for type checkers too.
        def __getattr__(self, name: str) -> Any: ...

        def __setattr__(self, name: str, value: Any) -> None: ...

    def __repr__(self) -> str:
        attrs = ', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())
        return f'Context({attrs})'


class Globals(SimpleNamespace):
    """A namespace shared by every request of one worker process.

    Typically filled in an ``on_worker_start`` hook (a database pool, a cache client) and read
    by handlers that ask for ``globals``.
    """
