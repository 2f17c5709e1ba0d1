"""The application frozen for serving: endpoints with their middleware chains precomputed.

Built once when serving starts (`Tremolo.compile`); nothing here changes per request.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping, Optional

from ..default_headers import DefaultHeader, DefaultHeaders, resolve
from ..exceptions import RegistrationError
from ..options import ROUTE_DEFAULTS, Options
from .errors import ErrorHandlers
from .hooks import Hook, Pipeline, chain, named_methods, ordered, prefix_covers
from .injection import SYNC, Plan, wants
from .routing import Router

if TYPE_CHECKING:
    from ..request import Request
    from ..response import Response
    from .app import RouteRecord, Tremolo
    from .websocket_routes import WebSocketRoute

_DEFAULT_CONTENT_TYPE = ROUTE_DEFAULTS['content_type']

#: The ``on_request`` and ``on_response`` chains of an endpoint, for one method or for all.
Chains = tuple[tuple[Plan, ...], tuple[Plan, ...]]


class Endpoint:
    """One handler on one route, with everything it needs per request precomputed.

    Attributes:
        plan: How to call the handler.
        where: ``"handler NAME for route PATH"``, for messages.
        options: The route options (read-only; each request copies them if it changes them).
        request_hooks: The ``on_request`` plans that apply, in order (to the methods that
            no hook limited to methods names; see `by_method`).
        response_hooks: The ``on_response`` plans that apply, in order (likewise).
        hooks: ``(request_hooks, response_hooks)``.
        by_method: The chains of the methods whose chains differ from `hooks` (some hooks
            run for some methods only), or ``None`` when every method has `hooks`.
        default_headers: The default headers of the route's responses, or ``None``.
        errors: The error handlers that apply.
        json_type: Whether dict/list results set ``application/json``.
        custom: Whether the route changes status, content type, body limits or handler
            timeout.
        direct: ``True`` when the handler can be awaited with the server names alone (the
            common case), ``False`` when its providers answer without waiting too, ``None``
            when it goes through `Runtime.call` (options to pass, providers that wait,
            debug mode, which times every call).
        provided: When `direct` is ``False`` and the handler takes providers only, each of
            them taking ``(request)`` or ``(request, response)``, none twice, and no hook
            takes providers (the handler's are the first asked): ``(parameter, provider,
            function, shape)`` for each, so that the handler's arguments are made without
            a call in between; else ``None``.
        websocket: How WebSocket handshakes are met, when the handler takes ``websocket``.
        lean: Nothing of the request's way through the endpoint needs the server values by
            name, unless something unusual happens (a hook of another kind, an error, options
            changed for the request): the handler takes providers only (`provided`), and
            there is no event stream, no WebSocket and no response hook. The dispatcher then
            makes them only if asked.
    """

    __slots__ = (
        'plan', 'where', 'path', 'options', 'status', 'content_type', 'json_type',
        'max_body_size', 'body_buffer_size', 'custom', 'body_limits', 'request_hooks',
        'response_hooks', 'hooks', 'by_method', 'default_headers', 'errors', 'uses_providers',
        'option_kwargs', 'direct', 'uses_sse', 'websocket', 'handler_timeout', 'own_timeout',
        'provided', 'one_provided', 'lean',
    )

    def __init__(
        self, plan: Plan, where: str, path: str, options: Mapping[str, Any],
        server_options: Options, request_hooks: tuple[Plan, ...],
        response_hooks: tuple[Plan, ...], errors: ErrorHandlers, explicit_type: bool,
        explicit_timeout: bool = False, by_method: Optional[dict[str, Chains]] = None,
        default_headers: Optional[DefaultHeaders] = None,
    ) -> None:
        self.plan = plan
        self.where = where
        self.path = path
        self.options = MappingProxyType(dict(options))
        self.status = options['status']
        self.content_type = options['content_type']
        self.json_type = not explicit_type
        self.max_body_size = options['max_body_size']
        self.body_buffer_size = options['body_buffer_size']
        #: The route sets body limits of its own.
        self.body_limits = (self.max_body_size != server_options.max_body_size
                            or self.body_buffer_size != server_options.body_buffer_size)
        self.custom = (self.status != 200 or self.content_type != _DEFAULT_CONTENT_TYPE
                       or self.body_limits)
        # Route options whose effective value differs from the handler's own default (set on
        # the decorator or by the server): passed explicitly, the rest is left to Python.
        self.option_kwargs = {
            name: options[name] for name, default in plan.options.items()
            if name in options and options[name] is not default
        }
        self.direct: Optional[bool] = None
        if plan.mode == 'async' and not self.option_kwargs and not server_options.debug:
            if not plan.providers:
                self.direct = True
            elif all(provider.plan.quick is SYNC for _, provider in plan.providers):
                self.direct = False
        self.websocket: Optional[WebSocketRoute] = (
            _websocket_route(plan.func, plan.mode, where) if 'websocket' in plan.server else None
        )
        self.request_hooks = request_hooks
        self.response_hooks = response_hooks
        self.hooks: Chains = (request_hooks, response_hooks)
        self.by_method = by_method or None
        self.default_headers = default_headers
        self.errors = errors
        every_hook = [*request_hooks, *response_hooks]
        for method_request_hooks, method_response_hooks in (by_method or {}).values():
            every_hook.extend(method_request_hooks + method_response_hooks)
        # No hook provides anything before the handler: its providers are the first asked.
        providers = [provider for _, provider in plan.providers]
        self.provided: Optional[tuple[tuple[str, Any, Any, int], ...]] = None
        if self.direct is False and not plan.server and not plan.params and all(
                provider.plan.shape in (1, 2) for provider in providers) and len(
                set(map(id, providers))) == len(providers) and not any(
                hook.providers for hook in every_hook):
            self.provided = tuple((name, provider, provider.plan.func, provider.plan.shape)
                                  for name, provider in plan.providers)
        #: `provided` is one provider, the handler's first parameter: it is passed by
        #: position, without a dictionary of keyword arguments.
        self.one_provided = self.provided is not None and len(self.provided) == 1 and (
            plan.first_positional == self.provided[0][0])
        #: Whether a function of this endpoint names ``sse`` (an event stream is made for it).
        self.uses_sse = any(wants(each, 'sse') for each in (
            plan, *every_hook, *errors.by_status.values(), *errors.by_class.values()))
        #: The route's handler_timeout: an event stream or a WebSocket lasts as long as it
        #: must, unless the route sets a limit itself.
        self.handler_timeout = options['handler_timeout']
        if not explicit_timeout and (self.uses_sse or self.websocket is not None):
            self.handler_timeout = 0.0
        #: The route's limit differs from the server's (the server is told per request).
        self.own_timeout = self.handler_timeout != server_options.handler_timeout
        if self.own_timeout:
            self.custom = True
        self.lean = (self.provided is not None and not self.uses_sse and self.websocket is None
                     and not response_hooks and not any(
                         method_response_hooks
                         for _, method_response_hooks in (by_method or {}).values()))
        self.uses_providers = bool(plan.providers) or any(
            hook.providers for hook in every_hook
        ) or any(handler.providers for handler in errors.by_status.values()) or any(
            handler.providers for handler in errors.by_class.values()
        )

    def customize(self, request: Request, response: Response) -> None:
        """Apply the route's status, content type and body limits to a new exchange."""
        response.status = self.status
        response.content_type = self.content_type
        if self.body_limits:
            request.max_body_size = self.max_body_size
            request.body_buffer_size = self.body_buffer_size
        if self.own_timeout:
            response.channel.set_handler_timeout(self.handler_timeout)

    def __repr__(self) -> str:
        return f'<Endpoint {self.where}>'


class CompiledApp:
    """An application and its mounted applications, flattened and frozen."""

    def __init__(self, app: Tremolo, options: Options) -> None:
        self.app = app
        self.options = options
        self.router: Router[Endpoint] = Router()
        hooks: dict[str, list[Hook]] = {}
        self._scopes: list[tuple[str, ErrorHandlers]] = []
        records: list[tuple[RouteRecord, str, ErrorHandlers]] = []
        closers: list[Plan] = []
        self._default_headers: list[DefaultHeader] = []
        # Equal sets of default headers are one object, shared by their endpoints.
        self._header_sets: dict[DefaultHeaders, DefaultHeaders] = {}
        self._collect(app, '', ErrorHandlers(), hooks, records, closers)
        _add_bandwidth_limiter(options, hooks)
        self._hooks = hooks
        route_defaults = options.route_defaults()
        for record, prefix, errors in records:
            path = record.pattern_with(prefix)
            merged = {**route_defaults, **record.plan.options, **record.options}
            methods = set(record.methods)
            if 'GET' in methods:
                methods.add('HEAD')
            # Only the routes that limit their own speed pay for it.
            limits = _route_limits(record.plan.options, record.options)
            chains, by_method = self._chains(path, frozenset(methods), limits or (), merged)
            endpoint = Endpoint(
                record.plan, record.where, path, merged, options, chains[0], chains[1],
                errors, explicit_type='content_type' in record.plan.options
                or 'content_type' in record.options,
                explicit_timeout='handler_timeout' in record.plan.options
                or 'handler_timeout' in record.options,
                by_method=by_method,
                default_headers=self._headers_for(path, merged, record.where),
            )
            self.router.add(path, record.methods, endpoint, record.where)
        self.on_connect = ordered(hooks.get('on_connect', []), 'on_connect')
        self.on_close = ordered(hooks.get('on_close', []), 'on_close')
        self.on_worker_start = ordered(hooks.get('on_worker_start', []), 'on_worker_start')
        self.on_worker_stop = ordered(hooks.get('on_worker_stop', []), 'on_worker_stop')
        self.extension_closers = tuple(reversed(closers))
        self._scopes.sort(key=lambda scope: len(scope[0]), reverse=True)
        # The endpoints of the paths no route matches, one per prefix that scopes a hook, a
        # default header or an error handler, longest first: what applies to a path is what
        # applies to the longest prefix that covers it (the prefixes that cover a path all
        # cover each other).
        prefixes = {prefix for prefix, _ in self._scopes} | {
            hook.prefix or '' for kind in ('on_request', 'on_response')
            for hook in hooks.get(kind, ())} | {
            header.prefix or '' for header in self._default_headers}
        self._fallbacks: list[tuple[str, Endpoint]] = [
            (prefix, self._fallback_for(prefix, route_defaults))
            for prefix in sorted(prefixes, key=len, reverse=True)
        ]

    def _collect(
        self, app: Tremolo, prefix: str, parent_errors: ErrorHandlers,
        hooks: dict[str, list[Hook]], records: list[Any], closers: list[Plan],
    ) -> None:
        errors = app.errors.layered(parent_errors)
        self._scopes.append((prefix, errors))
        for kind, registered in app.pipeline.hooks.items():
            for hook in registered:
                if prefix and kind in ('on_request', 'on_response'):
                    hook = hook.with_prefix(prefix)
                hooks.setdefault(kind, []).append(hook)
        for header in app.default_headers:
            self._default_headers.append(header.with_prefix(prefix) if prefix else header)
        for record in app.routes:
            records.append((record, prefix, errors))
        closers.extend(app.extension_closers)
        for sub_prefix, sub_app in app.mounts:
            self._collect(sub_app, prefix + sub_prefix, errors, hooks, records, closers)

    def _chains(self, path: str, methods: Optional[frozenset[str]],
                limits: tuple[Plan, ...], options: Mapping[str, Any]
                ) -> tuple[Chains, Optional[dict[str, Chains]]]:
        """The hook chains of an endpoint at ``path`` with the effective ``options``, that
        answers ``methods`` (``None``: any): those of the methods no hook names, and those of
        the methods whose chains differ from them."""
        request_hooks = self._hooks.get('on_request', [])
        response_hooks = self._hooks.get('on_response', [])

        def chains(method: Optional[str]) -> Chains:
            return (limits + chain(request_hooks, 'on_request', path, method, options),
                    chain(response_hooks, 'on_response', path, method, options))

        default = chains(None)
        named = named_methods(request_hooks + response_hooks, path)
        if methods is not None:
            named &= methods
        by_method = {method: chains(method) for method in sorted(named)}
        if methods is not None and named == methods and by_method:
            # Every method of the route has chains of its own: the first serves as default.
            default = next(iter(by_method.values()))
        by_method = {method: pair for method, pair in by_method.items() if pair != default}
        return default, by_method or None

    def _headers_for(self, path: str, options: Mapping[str, Any], where: str
                     ) -> Optional[DefaultHeaders]:
        applicable = [header for header in self._default_headers
                      if prefix_covers(header.prefix, path)]
        if not applicable:
            return None
        try:
            headers = resolve(applicable, options)
        except Exception as exc:  # a value function of the application's, failing
            raise RegistrationError(f'{where}: a default header: {exc!r}') from exc
        if headers is None:
            return None
        return self._header_sets.setdefault(headers, headers)

    def fallback_endpoint(self, path: str) -> Endpoint:
        """The endpoint for a path no route matches: the hooks, default headers and error
        handlers that apply to it, and no handler (the caller raises 404 or 405)."""
        for prefix, endpoint in self._fallbacks:
            if prefix_covers(prefix or None, path):
                return endpoint
        raise AssertionError('the root prefix covers every path')  # pragma: no cover

    def _fallback_for(self, prefix: str, route_defaults: Mapping[str, Any]) -> Endpoint:
        path = prefix or '/'
        chains, by_method = self._chains(path, None, (), route_defaults)
        return Endpoint(
            _NO_HANDLER, 'no route', path, route_defaults, self.options, chains[0], chains[1],
            self._errors_for(path), explicit_type=False, by_method=by_method,
            default_headers=self._headers_for(path, route_defaults, f'no route ({path})'),
        )

    def _errors_for(self, path: str) -> ErrorHandlers:
        for prefix, errors in self._scopes:
            if prefix_covers(prefix or None, path):
                return errors
        return ErrorHandlers()


def _websocket_route(func: Any, mode: str, where: str) -> WebSocketRoute:
    # Only applications with WebSocket routes load it.
    from .websocket_routes import websocket_route

    return websocket_route(func, mode, where)


def _add_bandwidth_limiter(options: Options, hooks: dict[str, list[Hook]]) -> None:
    """Install the bandwidth limiter that the ``download_rate``/``upload_rate`` options ask for,
    outermost of all middleware. It is imported only then: an unused limiter costs nothing."""
    if not options.download_rate and not options.upload_rate:
        return
    from ..middleware.bandwidth import BandwidthLimiter

    limiter = BandwidthLimiter(
        options.download_rate, options.upload_rate, scope=options.rate_scope,
        burst=options.rate_burst or None,
    )
    pipeline = Pipeline()
    pipeline.add_object(limiter, priority=_OUTERMOST)
    for kind, added in pipeline.hooks.items():
        if added:
            hooks.setdefault(kind, []).extend(added)


def _route_limits(*route_options: Mapping[str, Any]) -> Optional[tuple[Plan, ...]]:
    """The ``on_request`` hook applying a route's own ``rate`` and ``upload_rate`` options,
    if it sets them (an ``upload_rate`` inherited from the server is the limiter's)."""
    rate = upload_rate = 0
    for options in route_options:
        rate = options.get('rate', rate)
        upload_rate = options.get('upload_rate', upload_rate)
    if not rate and not upload_rate:
        return None
    from ..middleware.bandwidth import route_limits

    hook = route_limits(rate, upload_rate)
    return (Pipeline().add('on_request', hook, priority=_OUTERMOST).plan,)


#: Below any priority a user would choose: the limiter sees every request first.
_OUTERMOST = -(2 ** 31)


def _no_handler() -> None:  # pragma: no cover - never called: the route is missing
    return None


_NO_HANDLER = Plan(_no_handler, 'no route', 'sync')

