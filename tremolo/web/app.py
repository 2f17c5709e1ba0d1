"""The application: where routes, middleware, hooks, providers and extensions are registered."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, Callable, Optional, TypeVar, Union, overload

from ..default_headers import DefaultHeader, HeaderValue, RequestHeaderValue
from ..exceptions import RegistrationError
from ..options import ROUTE_RULES, Options, check_option
from .compiled import CompiledApp
from .dispatch import Runtime
from .errors import ErrorHandlers
from .extension import extension_name
from .hooks import DEFAULT_PRIORITY, Pipeline, RoutePredicate
from .injection import (
    ASYNC,
    ASYNC_GEN,
    ERROR_NAMES,
    REQUEST_NAMES,
    SYNC,
    SYNC_GEN,
    WORKER_NAMES,
    Plan,
    Provider,
    Providers,
    compile_plan,
)
from .routing import ANY_METHOD, PathPattern, shadow_error, shadowed
from .views import is_view, view_handlers

F = TypeVar('F', bound=Callable[..., Any])

_HTTP_METHOD_CHARS = frozenset('ABCDEFGHIJKLMNOPQRSTUVWXYZ-_')


class RouteRecord:
    """A registered route: path, methods, handler plan and explicit options."""

    __slots__ = ('path', 'methods', 'plan', 'options', 'name', 'where', 'params', 'pattern')

    def __init__(self, path: str, methods: tuple[str, ...], plan: Plan, options: dict[str, Any],
                 name: Optional[str], where: str, params: tuple[str, ...],
                 pattern: Optional[PathPattern] = None) -> None:
        self.pattern = pattern or PathPattern(path)
        self.path = path
        self.methods = methods
        self.plan = plan
        self.options = options
        self.name = name
        self.where = where
        self.params = params

    def pattern_with(self, prefix: str) -> str:
        if not prefix:
            return self.path
        return PathPattern(self.path).with_prefix(prefix).path


class Tremolo:
    """A Tremolo application (``Application`` is the same class).

    Example:
        ```python
        from tremolo import Tremolo

        app = Tremolo()

        @app.route('/hello')
        async def hello(**server):
            return 'Hello world!'

        app.run('127.0.0.1', 8000)
        ```

    Args:
        name: Identifies the application in logs (defaults to ``'tremolo'``).
    """

    def __init__(self, name: str = 'tremolo') -> None:
        self.name = name
        self.routes: list[RouteRecord] = []
        self.pipeline = Pipeline()
        self.providers = Providers()
        self.errors = ErrorHandlers()
        self.mounts: list[tuple[str, Tremolo]] = []
        self.extensions: list[Any] = []
        self.extension_closers: list[Plan] = []
        self.default_headers: list[DefaultHeader] = []
        self.listeners: list[Union[int, str]] = []
        self._names: dict[str, RouteRecord] = {}
        self._frozen = False
        self._mounted = False

    # -- routes ---------------------------------------------------------------------------------

    def route(
        self, path: str, methods: Optional[Union[str, list[str], tuple[str, ...]]] = None, *,
        name: Optional[str] = None, **options: Any,
    ) -> Callable[[F], F]:
        """Register the decorated function (or view class) for ``path``.

        Args:
            path: ``/static``, ``/user/{id:int}`` or a regex starting with ``^``.
            methods: HTTP methods (default ``GET``; ``HEAD`` follows ``GET``). Ignored for
                views, whose methods decide.
            name: A name for `url_for`.
            **options: Route options (``content_type``, ``status``, ``max_body_size``, ...),
                overriding the handler's default arguments of the same name.
        """

        def register(handler: F) -> F:
            self.add_route(path, handler, methods, name=name, **options)
            return handler

        return register

    def get(self, path: str, **options: Any) -> Callable[[F], F]:
        """Register a ``GET`` (and ``HEAD``) route."""
        return self.route(path, ('GET',), **options)

    def post(self, path: str, **options: Any) -> Callable[[F], F]:
        """Register a ``POST`` route."""
        return self.route(path, ('POST',), **options)

    def put(self, path: str, **options: Any) -> Callable[[F], F]:
        """Register a ``PUT`` route."""
        return self.route(path, ('PUT',), **options)

    def patch(self, path: str, **options: Any) -> Callable[[F], F]:
        """Register a ``PATCH`` route."""
        return self.route(path, ('PATCH',), **options)

    def delete(self, path: str, **options: Any) -> Callable[[F], F]:
        """Register a ``DELETE`` route."""
        return self.route(path, ('DELETE',), **options)

    def add_route(
        self, path: str, handler: Any,
        methods: Optional[Union[str, list[str], tuple[str, ...]]] = None, *,
        name: Optional[str] = None, **options: Any,
    ) -> None:
        """Register ``handler`` (a function, or a view class or instance) for ``path``.

        Raises:
            RegistrationError: Bad path or method, duplicate route or name, invalid route
                option, or a handler parameter nothing can supply.
        """
        self._check_open()
        pattern = PathPattern(path)
        clashes = [name for name in pattern.params if name in REQUEST_NAMES]
        if clashes:
            raise RegistrationError(
                f'route {path!r}: path parameter {clashes[0]!r} has the name of a server value'
            )
        _check_route_options(options, f'route {path!r}')
        if is_view(handler):
            handlers = view_handlers(handler)
        else:
            handlers = {method: handler for method in _methods(methods, path)}
        by_function: dict[int, list[str]] = {}
        for method, function in handlers.items():
            by_function.setdefault(id(function), []).append(method)
        for method_group in by_function.values():
            function = handlers[method_group[0]]
            where = f'route {path!r}'
            plan = compile_plan(
                function, names=REQUEST_NAMES, where=where, path_params=pattern.params,
                providers=self.providers, options_allowed=True,
            )
            _check_route_options(plan.options, f'{plan.name} ({where})')
            where = f'handler {plan.name} for route {path!r}'
            self._check_duplicate(path, method_group, where)
            self._check_reachable(pattern, method_group, where)
            record = RouteRecord(path, tuple(method_group), plan, dict(options), name, where,
                                 pattern.params, pattern)
            self.routes.append(record)
            if name is not None:
                if name in self._names and self._names[name].path != path:
                    raise RegistrationError(f'route name {name!r} is already used ({where})')
                self._names[name] = record

    def _check_duplicate(self, path: str, methods: list[str], where: str) -> None:
        for record in self.routes:
            if record.path == path:
                common = set(record.methods) & set(methods)
                if common:
                    raise RegistrationError(
                        f'duplicate route: {", ".join(sorted(common))} {path} is already '
                        f'served by {record.plan.name} ({where})'
                    )

    def _check_reachable(self, pattern: PathPattern, methods: list[str], where: str) -> None:
        """Refuse a route that an earlier pattern makes unreachable, or that makes a later one
        unreachable (the router tries patterns in the order their paths were first
        registered). Mounted applications are checked when the application is compiled."""
        first: dict[str, int] = {}
        for index, record in enumerate(self.routes):
            first.setdefault(record.path, index)
        position = first.get(pattern.path, len(self.routes))
        for record in self.routes:
            if first[record.path] < position:
                common = shadowed(record.pattern, record.methods, pattern, methods)
                if common:
                    raise shadow_error(common, record.where, where)
            else:
                common = shadowed(pattern, methods, record.pattern, record.methods)
                if common:
                    raise shadow_error(common, where, record.where)

    def url_for(self, name: str, /, **params: Any) -> str:
        """The path of the route registered with ``name``, with ``params`` filled in.

        Raises:
            KeyError: No route has that name, or a parameter is missing.
        """
        record = self._names.get(name)
        if record is None:
            for prefix, sub in self.mounts:
                try:
                    return prefix + sub.url_for(name, **params)
                except KeyError:
                    continue
            raise KeyError(f'no route named {name!r}')
        if record.path.startswith('^'):
            raise KeyError(f'route {name!r} is a regex route: it cannot be built')
        from urllib.parse import quote

        path = record.path
        import re

        def fill(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in params:
                raise KeyError(f'missing parameter {key!r} for route {name!r}')
            safe = '/' if match.group(2) == 'path' else ''
            return quote(str(params[key]), safe=safe)

        return re.sub(r'{([A-Za-z_][A-Za-z_0-9]*)(?::([A-Za-z_]+))?}', fill, path)

    def mount(self, prefix: str, app: Any, **options: Any) -> None:
        """Serve ``app`` under ``prefix``: a Tremolo application, or an ASGI 3 application.

        A Tremolo application's routes are served under the prefix and its middleware apply
        under it only; its error handlers answer for its routes first, then this
        application's; its worker and connection hooks run like this application's own.

        An ASGI application (FastAPI, Starlette, Django, ...) answers every request for the
        prefix and the paths under it, whatever the method, after this application's
        middleware for those paths (request and response hooks, speed limits); its scope's
        ``root_path`` is the prefix, and its lifespan runs in each worker. ``options`` are
        route options for it (``max_body_size``, ``rate``, ...).

        Raises:
            RegistrationError: Bad prefix, an object that is neither kind of application,
                route options for a Tremolo application, or mounting an application twice
                or into itself.
        """
        self._check_open()
        if not prefix.startswith('/') or prefix == '/':
            raise RegistrationError(f'mount prefix {prefix!r} must start with / and not be /')
        if not isinstance(app, Tremolo):
            self._mount_asgi(prefix.rstrip('/'), app, options)
            return
        if options:
            raise RegistrationError(f'mount({prefix!r}): route options are for a mounted ASGI '
                                    'application; a Tremolo application sets its own')
        if app is self or app._mounted:
            raise RegistrationError('an application can be mounted once, and not into itself')
        app._mounted = True
        self.mounts.append((prefix.rstrip('/'), app))

    def _mount_asgi(self, prefix: str, app: Any, options: dict[str, Any]) -> None:
        from ..asgi.detect import is_asgi_app  # only applications that mount one load it

        if not is_asgi_app(app):
            raise RegistrationError(f'mount({prefix!r}) takes a Tremolo application or an '
                                    f'ASGI 3 application, not {app!r}')
        from ..asgi.mount import ASGIMount

        mount = ASGIMount(app, prefix)
        for path in mount.routes():
            self.add_route(path, mount.handle, (ANY_METHOD,), **options)
        self.on_worker_start(mount.startup)
        self.on_worker_stop(mount.shutdown)

    # -- middleware and hooks -------------------------------------------------------------------

    @overload
    def on_request(self, func: F) -> F: ...

    @overload
    def on_request(self, *, priority: int = ..., prefix: Optional[str] = ...,
                   methods: Optional[Iterable[str]] = ...,
                   when: Optional[RoutePredicate] = ...) -> Callable[[F], F]: ...

    def on_request(
        self, func: Optional[F] = None, *, priority: int = DEFAULT_PRIORITY,
        prefix: Optional[str] = None, methods: Optional[Iterable[str]] = None,
        when: Optional[RoutePredicate] = None,
    ) -> Any:
        """Run the decorated function before each handler (lower priority first).

        A value returned by the hook is sent as the response and the handler is skipped.

        Args:
            func: The hook (or use the decorator with arguments).
            priority: Lower runs first.
            prefix: Only for paths under this prefix.
            methods: Only for requests of these methods (``GET`` covers ``HEAD``); the
                others do not call it at all.
            when: Only for the routes whose effective options (the server's, overridden by
                the route's) this function accepts, asked once per route at startup (the
                paths no route matches are asked with the server's options): the other
                routes do not call the hook at all. A middleware's route option
                (``rate_limit=False``) exempts routes this way at no cost per request.
        """
        return self._hook('on_request', func, priority, prefix, methods, when)

    @overload
    def on_response(self, func: F) -> F: ...

    @overload
    def on_response(self, *, priority: int = ..., prefix: Optional[str] = ...,
                    methods: Optional[Iterable[str]] = ...,
                    when: Optional[RoutePredicate] = ...) -> Callable[[F], F]: ...

    def on_response(
        self, func: Optional[F] = None, *, priority: int = DEFAULT_PRIORITY,
        prefix: Optional[str] = None, methods: Optional[Iterable[str]] = None,
        when: Optional[RoutePredicate] = None,
    ) -> Any:
        """Run the decorated function just before the response head is sent (reverse
        priority order): set headers, cookies, status, or add filters to the body.

        Args:
            func: The hook (or use the decorator with arguments).
            priority: Higher runs first (the way out is the way in reversed).
            prefix: Only for paths under this prefix.
            methods: Only for requests of these methods (``GET`` covers ``HEAD``).
            when: Only for the routes whose effective options this function accepts (see
                `on_request`).
        """
        return self._hook('on_response', func, priority, prefix, methods, when)

    @overload
    def on_connect(self, func: F) -> F: ...

    @overload
    def on_connect(self, *, priority: int = ...) -> Callable[[F], F]: ...

    def on_connect(
        self, func: Optional[F] = None, *, priority: int = DEFAULT_PRIORITY
    ) -> Any:
        """Run the decorated function when a client connects (before its first request)."""
        return self._hook('on_connect', func, priority, None)

    @overload
    def on_close(self, func: F) -> F: ...

    @overload
    def on_close(self, *, priority: int = ...) -> Callable[[F], F]: ...

    def on_close(
        self, func: Optional[F] = None, *, priority: int = DEFAULT_PRIORITY
    ) -> Any:
        """Run the decorated function when a connection closes."""
        return self._hook('on_close', func, priority, None)

    @overload
    def on_worker_start(self, func: F) -> F: ...

    @overload
    def on_worker_start(self, *, priority: int = ...) -> Callable[[F], F]: ...

    def on_worker_start(
        self, func: Optional[F] = None, *, priority: int = DEFAULT_PRIORITY
    ) -> Any:
        """Run the decorated function in each worker before it accepts connections."""
        return self._hook('on_worker_start', func, priority, None)

    @overload
    def on_worker_stop(self, func: F) -> F: ...

    @overload
    def on_worker_stop(self, *, priority: int = ...) -> Callable[[F], F]: ...

    def on_worker_stop(
        self, func: Optional[F] = None, *, priority: int = DEFAULT_PRIORITY
    ) -> Any:
        """Run the decorated function in each worker after it stopped serving."""
        return self._hook('on_worker_stop', func, priority, None)

    def _hook(self, kind: str, func: Any, priority: int, prefix: Optional[str],
              methods: Optional[Iterable[str]] = None,
              when: Optional[RoutePredicate] = None) -> Any:
        def register(function: F) -> F:
            self._check_open()
            self.pipeline.add(kind, function, priority=priority, prefix=prefix,
                              providers=self.providers, methods=methods, when=when)
            return function

        return register if func is None else register(func)

    def add_middleware(
        self, middleware: Any, *, priority: int = DEFAULT_PRIORITY, prefix: Optional[str] = None
    ) -> None:
        """Register every hook method of ``middleware`` (an object with ``on_request``,
        ``on_response``, ``on_connect``, ... methods) at one priority.

        Raises:
            RegistrationError: The object has no hook method.
        """
        self._check_open()
        self.pipeline.add_object(middleware, priority=priority, prefix=prefix,
                                 providers=self.providers)

    def add_default_header(
        self, name: str, value: Optional[HeaderValue] = None, *,
        per_request: Optional[RequestHeaderValue] = None, if_request_has: Optional[str] = None,
        prefix: Optional[str] = None, https_only: bool = False, combine: bool = False,
        validated: bool = False,
    ) -> None:
        """Give every response (under ``prefix``) the header ``name``, unless the response
        sets that name itself.

        A default header is worked out once per route, when the application is compiled: a
        constant value becomes bytes appended to the head of each response as they are, at
        no cost per request, where an ``on_response`` hook adding the field would cost a
        call every time. A value that changes with each request (an id, the state of a
        quota) is a ``per_request`` function of the request, called as the head is written:
        a fraction of a hook's cost too.

        Responses of every kind carry them, errors and the early answers of request hooks
        included, but not the interim ``1xx`` ones (a ``101`` switching to WebSocket). They
        are not in ``response.headers``: a handler or a hook that sets the same name replaces
        them. ``Vary`` is the exception: its names are added to those the response lists.

        Args:
            name: The header's name.
            value: Its value, or a function of the route's effective options returning the
                value for that route (or ``None`` to leave the header out of that route's
                responses): called once per route, e.g. to follow a route option.
            per_request: Instead of ``value``, a function of the `tremolo.Request` returning
                the value for its response, or ``None`` to leave the header out. It must be
                quick and must not fail: a failure (or a value that cannot be a header's) is
                logged as an error and the header left out, since the head is being written.
            if_request_has: With ``per_request``: call it only for the requests that have
                this header field; the others leave the header out at no cost (the CORS
                fields, which answer ``Origin``).
            validated: With ``per_request``: the function makes valid field values only
                (from parts it checked: no control characters, ISO-8859-1), so they are not
                checked again as the head is written, like the rate limiter's state.
            prefix: Only for paths under this prefix (a mounted application's headers are
                under its mount prefix).
            https_only: Only on responses to HTTPS requests (behind a trusted proxy, as the
                client used it), like ``Strict-Transport-Security`` (RFC 6797 §7.2).
            combine: A field of its own even when other default headers of this name apply to
                a route (a list field, RFC 9110 §5.3, such as the ``RateLimit-Policy`` of two
                limiters); otherwise, of several of one name, the one registered with the
                longest prefix wins.

        Raises:
            ValueError: An invalid name or value (control characters, not ISO-8859-1), a
                field the server sets (``Content-Length``, ``Content-Type``, ``Date``,
                ``Server``, ``Connection``, ``Transfer-Encoding``), ``Vary`` per request, or
                a prefix that does not start with ``/``.
            TypeError: Neither or both of ``value`` and ``per_request``, a value that is
                neither a string nor a function, or ``if_request_has`` without
                ``per_request``.
            RegistrationError: The application is serving already.
        """
        self._check_open()
        self.default_headers.append(DefaultHeader(
            name, value, per_request=per_request, if_request_has=if_request_has, prefix=prefix,
            https_only=https_only, combine=combine, validated=validated))

    # -- providers, errors, extensions ----------------------------------------------------------

    @overload
    def provide(self, key: Union[str, type], factory: F) -> F: ...

    @overload
    def provide(self, key: Union[str, type]) -> Callable[[F], F]: ...

    def provide(self, key: Union[str, type], factory: Optional[F] = None) -> Any:
        """Inject the result of ``factory`` into parameters named ``key`` (or annotated with
        the type ``key``), computed once per request. Usable as a decorator.

        The factory is injected like a handler; a generator factory's code after its
        ``yield`` runs once the response is sent.

        Raises:
            RegistrationError: ``key`` is a server name or already provided.
        """

        def register(function: F) -> F:
            self._check_open()
            if isinstance(key, str) and key in ERROR_NAMES + ('connection',):
                raise RegistrationError(f'{key!r} is a server name and cannot be provided')
            if not isinstance(key, (str, type)):
                raise RegistrationError(f'a provider key is a name or a type, not {key!r}')
            plan = compile_plan(
                function, names=REQUEST_NAMES, where=f'provider for {key!r}',
                providers=self.providers, modes=(ASYNC, SYNC, ASYNC_GEN, SYNC_GEN),
                inline=True,
            )
            self.providers.add(Provider(key, plan))
            return function

        return register if factory is None else register(factory)

    def error(self, key: Union[int, type[BaseException]]) -> Callable[[F], F]:
        """Answer errors with the decorated function: by status code (``404``) or by
        exception class (``ValueError``). It receives the exception as ``exc`` and the
        response already set to the error status; its result is sent like a handler's."""
        if isinstance(key, bool) or not (
            (isinstance(key, int) and 400 <= key <= 599)
            or (isinstance(key, type) and issubclass(key, BaseException))
        ):
            raise RegistrationError(
                f'error handlers are for a status 400-599 or an exception class, not {key!r}'
            )

        def register(function: F) -> F:
            self._check_open()
            plan = compile_plan(
                function, names=ERROR_NAMES, where=f'error handler for {key!r}',
                providers=self.providers, modes=(ASYNC, SYNC, ASYNC_GEN),
            )
            self.errors.add(key, plan)
            return function

        return register

    def install(self, extension: Any) -> Any:
        """Install an extension: call its ``setup(app)`` now; its ``close`` runs when each
        worker stops, in reverse order of installation. Returns the extension.

        Raises:
            RegistrationError: No ``setup`` method, or installed twice.
        """
        self._check_open()
        setup = getattr(extension, 'setup', None)
        if not callable(setup):
            raise RegistrationError(f'extension {extension!r} has no setup(app) method')
        if any(installed is extension for installed in self.extensions):
            raise RegistrationError(f'extension {extension_name(extension)} is already installed')
        setup(self)
        self.extensions.append(extension)
        close = getattr(extension, 'close', None)
        if callable(close):
            self.extension_closers.append(compile_plan(
                close, names=WORKER_NAMES, where=f'close of extension {extension_name(extension)}',
                modes=(ASYNC, SYNC),
            ))
        return extension

    # -- serving --------------------------------------------------------------------------------

    def compile(self, options: Optional[Options] = None) -> CompiledApp:
        """The application as it is served with ``options``: routes, middleware chains and
        injection plans worked out once. It changes nothing here: compile as often as you
        like (each test client does).

        Raises:
            RegistrationError: A route and a middleware or an option that do not fit together.
        """
        return CompiledApp(self, options or Options())

    def freeze(self) -> None:
        """Close registration: adding a route, a hook, a provider, an extension or a mount
        afterwards raises `RegistrationError` (what is added once serving has started would
        never be served). `run` and the test client freeze the application they serve."""
        self._frozen = True
        for _, sub in self.mounts:
            sub.freeze()

    def dispatcher_factory(self, options: Optional[Options] = None
                           ) -> Callable[[Any], Runtime]:
        """Compile and freeze the application; return what makes its
        `tremolo.types.Dispatcher` in each worker, given the worker's event loop."""
        compiled = self.compile(options)
        self.freeze()
        return functools.partial(Runtime, compiled)

    def listen(self, address: Union[int, str]) -> None:
        """Also listen on ``address``: a port (on the host given to `run`),
        ``'host:port'``, or the path of a UNIX socket."""
        if isinstance(address, bool) or not isinstance(address, (int, str)):
            raise TypeError(f'listen() takes a port or a path, not {address!r}')
        self.listeners.append(address)

    def run(self, host: str = '127.0.0.1', port: int = 8000, *,
            loader: Optional[Callable[[], Tremolo]] = None, **options: Any) -> None:
        """Serve until interrupted (SIGINT/SIGTERM stop gracefully; with a supervisor, SIGHUP
        reloads).

        Args:
            host: Address to bind.
            port: Port to bind.
            loader: Imports the application afresh and returns it: on SIGHUP, the new workers
                serve what it returns (``python -m tremolo module:app`` passes one). Without
                it, SIGHUP replaces the workers with the code already loaded.
            **options: Any `Options` field: ``debug``, ``worker_num``,
                ``reload``, ``loop``, ``ssl``, ``access_log``, limits and timeouts...

        Raises:
            TypeError: An unknown option.
        """
        from ..server.serve import serve

        listen = list(options.pop('listen', [])) + list(self.listeners)
        settings = Options.from_kwargs(host=host, port=port, listen=listen, **options)
        if settings.interface == 'asgi':
            raise TypeError("interface='asgi' serves an ASGI application; a Tremolo "
                            "application is served with interface 'tremolo' or 'auto'")

        def reimport() -> Callable[[Any], Runtime]:
            assert loader is not None
            return loader().dispatcher_factory(settings)

        # Registration mistakes surface here, before any socket is opened.
        serve(settings, self.dispatcher_factory(settings),
              reimport if loader is not None else None)

    def _check_open(self) -> None:
        if self._frozen:
            raise RegistrationError(
                'the application is already serving: register everything before it starts'
            )

    def __repr__(self) -> str:
        return f'<Tremolo {self.name!r} routes={len(self.routes)}>'


#: The same class under its other name.
Application = Tremolo


def _methods(methods: Any, path: str) -> list[str]:
    if methods is None:
        return ['GET']
    if isinstance(methods, str):
        methods = [methods]
    result = []
    for method in methods:
        if method == ANY_METHOD:
            result.append(method)
            continue
        if not isinstance(method, str) or not method or not set(method.upper()) <= (
            _HTTP_METHOD_CHARS
        ):
            raise RegistrationError(f'invalid HTTP method {method!r} for route {path!r}')
        result.append(method.upper())
    return result


def _check_route_options(options: dict[str, Any], where: str) -> None:
    """Check the route options that have rules (`tremolo.options.ROUTE_RULES`); the others
    are free-form: middleware read them from ``context.options``."""
    for name, value in options.items():
        rules = ROUTE_RULES.get(name)
        if rules is not None:
            try:
                check_option(name, value, *rules)
            except (TypeError, ValueError) as exc:
                raise RegistrationError(f'{where}: {exc}') from None


__all__ = ['Tremolo', 'Application', 'RouteRecord']
