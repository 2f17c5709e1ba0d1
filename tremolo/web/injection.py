"""Signature-driven injection: a function's parameters are read once into a `Plan`.

A parameter is filled, in this order, from: the server's names for the kind of function
(``request``, ``response``, ``context``, ...), the route's path parameters, the registered
providers (by name, then by type annotation); otherwise its default value stands, and for
handlers that default is a *route option*. ``**kwargs`` receives every server name and path
parameter. A parameter that nothing can fill is a `RegistrationError`
naming the function, raised when it is registered.
"""

from __future__ import annotations

import inspect
import operator
import typing
from typing import Any, Callable, Optional, Union

from ..exceptions import RegistrationError

#: Names injected into handlers, request/response hooks and providers. ``sse`` is supplied
#: only to the functions that name it (see `wants`): creating it turns the response into an
#: event stream.
REQUEST_NAMES = ('request', 'response', 'context', 'app', 'globals', 'loop', 'logger',
                 'telemetry', 'websocket', 'sse')
#: Error handlers also receive the exception as ``exc``.
ERROR_NAMES = REQUEST_NAMES + ('exc',)
#: ``on_connect`` and ``on_close`` hooks.
CONNECTION_NAMES = ('connection', 'app', 'globals', 'loop', 'logger')
#: ``on_worker_start`` and ``on_worker_stop`` hooks, and the ``close`` of extensions:
#: ``options`` is the server's `tremolo.Options`, ``telemetry`` the worker's
#: `tremolo.Telemetry`.
WORKER_NAMES = ('app', 'globals', 'loop', 'logger', 'options', 'telemetry')

ASYNC, ASYNC_GEN, SYNC, SYNC_GEN = 'async', 'async generator', 'sync', 'sync generator'


class Provider:
    """A factory whose result is injected by name or by type, computed once per request.

    The factory is injected like a handler. It may be a function or coroutine function, or a
    (async) generator function: then the value is what it yields first, and the rest of it runs
    after the response is sent (for cleanup).
    """

    __slots__ = ('key', 'plan')

    def __init__(self, key: Union[str, type], plan: Plan) -> None:
        self.key = key
        self.plan = plan

    def __repr__(self) -> str:
        return f'<Provider {self.key!r} {self.plan.name}>'


class Providers:
    """The providers of an application, found by parameter name or annotation."""

    def __init__(self) -> None:
        self.by_name: dict[str, Provider] = {}
        self.by_type: dict[type, Provider] = {}

    def add(self, provider: Provider) -> None:
        table: dict[Any, Provider] = (
            self.by_name if isinstance(provider.key, str) else self.by_type
        )
        if provider.key in table:
            raise RegistrationError(f'a provider for {provider.key!r} is already registered')
        table[provider.key] = provider

    def find(self, name: str, annotation: Any) -> Optional[Provider]:
        provider = self.by_name.get(name)
        if provider is None and isinstance(annotation, type):
            provider = self.by_type.get(annotation)
            if provider is None:
                for key, candidate in self.by_type.items():
                    if issubclass(key, annotation):
                        return candidate
        return provider


class Plan:
    """How to call one function: where each of its arguments comes from.

    Attributes:
        func: The function.
        name: Its qualified name, for messages.
        mode: ``'async'``, ``'async generator'``, ``'sync'`` or ``'sync generator'``.
        server: Server names it takes, by parameter name.
        params: Path parameters it takes.
        providers: ``(parameter, provider)`` pairs.
        options: Parameters that took their default: name to default value.
        var_keyword: Whether it has ``**kwargs`` (it then receives every server name and path
            parameter).
    """

    __slots__ = ('func', 'name', 'mode', 'server', 'params', 'providers', 'options',
                 'var_keyword', 'inline', 'quick', 'invoke', 'args', 'spread', 'shape',
                 'sync_shape', 'first_positional')

    def __init__(self, func: Callable[..., Any], name: str, mode: str) -> None:
        self.func = func
        self.name = name
        self.mode = mode
        self.server: tuple[str, ...] = ()
        self.params: tuple[str, ...] = ()
        self.providers: tuple[tuple[str, Provider], ...] = ()
        self.options: dict[str, Any] = {}
        self.var_keyword = False
        #: Sync functions run on the event loop rather than in the thread pool (hooks and
        #: providers, which are expected to be quick; handlers may block).
        self.inline = False
        #: ``SYNC`` or ``ASYNC`` when the function takes server names and path parameters
        #: only and runs on the event loop: it can be called straight from its `kwargs`
        #: (middleware hooks, mostly); ``None`` otherwise.
        self.quick: Optional[str] = None
        #: ``invoke(values, params)`` calls the function with its server names and path
        #: parameters (providers and options apart), positionally where its signature
        #: allows: the quick way that `quick` plans are called.
        self.invoke: Callable[[dict[str, Any], dict[str, Any]], Any] = self._call_by_keyword
        #: For a function that takes one or more server names by position: what picks its
        #: argument from the server values (``spread``: several, as a tuple), so that the
        #: hottest callers call it without `invoke` in between; ``None`` otherwise.
        self.args: Optional[Callable[[dict[str, Any]], Any]] = None
        self.spread = False
        #: For a function taking exactly ``(request)``, ``(request, response)`` or
        #: ``(request, response, context)`` by position (the usual hook): 1, 2 or 3, so that
        #: the request's dispatcher passes them straight from its own variables; else 0.
        self.shape = 0
        #: `shape` when the plan is `quick` and sync (called straight, nothing awaited),
        #: else 0.
        self.sync_shape = 0
        #: The name of the first parameter when every parameter can be passed by position
        #: (see `_positional`), else ``None``.
        self.first_positional: Optional[str] = None

    def _call_by_keyword(self, values: dict[str, Any], params: dict[str, Any]) -> Any:
        return self.func(**self.kwargs(values, params))

    def kwargs(self, values: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments from server ``values`` and path ``params`` (no providers)."""
        if self.var_keyword:
            kwargs = values.copy()
            if params:
                kwargs.update(params)
            return kwargs
        kwargs = {name: values[name] for name in self.server}
        for name in self.params:
            kwargs[name] = params[name]
        return kwargs

    def __repr__(self) -> str:
        return f'<Plan {self.name} ({self.mode})>'


def wants(plan: Plan, name: str) -> bool:
    """Whether ``plan`` or a provider it uses (however deep) names the server name ``name``."""
    return name in plan.server or any(
        wants(provider.plan, name) for _, provider in plan.providers)


def function_mode(func: Callable[..., Any]) -> str:
    target = inspect.unwrap(func)
    if inspect.isasyncgenfunction(target):
        return ASYNC_GEN
    if inspect.iscoroutinefunction(target):
        return ASYNC
    if not inspect.isfunction(target) and callable(target) and (
        inspect.iscoroutinefunction(target.__call__)  # an object with an async __call__
    ):
        return ASYNC
    if inspect.isgeneratorfunction(target):
        return SYNC_GEN
    return SYNC


def describe(func: Callable[..., Any]) -> str:
    return getattr(func, '__qualname__', None) or getattr(func, '__name__', None) or repr(func)


def compile_plan(
    func: Callable[..., Any],
    *,
    names: tuple[str, ...],
    where: str,
    path_params: tuple[str, ...] = (),
    providers: Optional[Providers] = None,
    options_allowed: bool = False,
    modes: tuple[str, ...] = (ASYNC, ASYNC_GEN, SYNC, SYNC_GEN),
    inline: bool = False,
) -> Plan:
    """Read ``func``'s signature into a `Plan`.

    Args:
        func: The function to inspect.
        names: The server names available to this kind of function.
        where: Describes the registration for error messages, e.g. ``"route '/user/{id}'"``.
        path_params: The path parameters of its route.
        providers: Registered providers.
        options_allowed: Whether defaults are route options (handlers only).
        inline: Whether a sync function runs on the event loop (else in the thread pool).
        modes: The kinds of function accepted.

    Raises:
        RegistrationError: A parameter nothing can fill, a positional-only or ``*args``
            parameter, or a kind of function not accepted here.
    """
    if not callable(func):
        raise RegistrationError(f'{func!r} ({where}) is not callable')
    name = describe(func)
    mode = function_mode(func)
    if mode not in modes:
        raise RegistrationError(f'{name} ({where}) cannot be a {mode} function')
    plan = Plan(func, name, mode)
    plan.inline = inline
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise RegistrationError(f'cannot read the signature of {name} ({where})') from exc
    hints = _type_hints(func)
    server: list[str] = []
    params: list[str] = []
    found: list[tuple[str, Provider]] = []
    for parameter in signature.parameters.values():
        pname = parameter.name
        if parameter.kind is parameter.VAR_KEYWORD:
            plan.var_keyword = True
            continue
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.VAR_POSITIONAL):
            raise RegistrationError(
                f'{name} ({where}): parameter {pname!r} must be passable by keyword'
            )
        if pname in names:
            server.append(pname)
        elif pname in path_params:
            params.append(pname)
        else:
            provider = providers.find(pname, hints.get(pname)) if providers else None
            if provider is not None:
                found.append((pname, provider))
            elif parameter.default is not parameter.empty:
                if options_allowed:
                    plan.options[pname] = parameter.default
            else:
                available = ', '.join(names + path_params)
                raise RegistrationError(
                    f'{name} ({where}): nothing can supply parameter {pname!r}; it is not '
                    f'one of {available}, has no registered provider (register providers '
                    f'before the functions that use them) and has no default value'
                )
    plan.server = tuple(server)
    plan.params = tuple(params)
    plan.providers = tuple(found)
    positional = signature.parameters and _positional(func, signature)
    if positional:
        plan.first_positional = next(iter(signature.parameters))
    if not params and not found and not plan.var_keyword and len(server) == len(
            signature.parameters) and positional:
        plan.invoke = _positional_call(func, plan.server)
        if server:
            plan.args = operator.itemgetter(*server)
            plan.spread = len(server) > 1
            plan.shape = _SHAPES.get(plan.server, 0)
    else:
        plan.invoke = _keyword_call(plan)
    if not found and not plan.options and (mode == ASYNC or (mode == SYNC and inline)):
        plan.quick = ASYNC if mode == ASYNC else SYNC
        if plan.quick is SYNC:
            plan.sync_shape = plan.shape
    return plan


#: The `Plan.shape` of the signatures that take the request's own objects, in that order.
_SHAPES = {('request',): 1, ('request', 'response'): 2, ('request', 'response', 'context'): 3}


def _positional(func: Callable[..., Any], signature: inspect.Signature) -> bool:
    """Whether every parameter of ``func`` can be passed by position, in signature order,
    both as its signature says and as the callable itself takes them (a decorator that
    copies a signature with `functools.wraps` may take keywords only)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD,)
    if any(parameter.kind not in kinds for parameter in signature.parameters.values()):
        return False
    try:
        own = inspect.signature(func, follow_wrapped=False)
    except (TypeError, ValueError):
        return False
    return list(own.parameters) == list(signature.parameters) and all(
        parameter.kind in kinds for parameter in own.parameters.values())


def _positional_call(func: Callable[..., Any], names: tuple[str, ...]
                     ) -> Callable[[dict[str, Any], dict[str, Any]], Any]:
    """``invoke`` for a function of server names only, passed by position: a C getter
    picks the values, no keyword dictionary is built."""
    if not names:
        return lambda values, params: func()
    if len(names) == 1:
        name = names[0]
        return lambda values, params: func(values[name])
    getter = operator.itemgetter(*names)
    return lambda values, params: func(*getter(values))


def _keyword_call(plan: Plan) -> Callable[[dict[str, Any], dict[str, Any]], Any]:
    """``invoke`` for a function whose arguments go by keyword: the dictionary of arguments
    is built without a call of its own where it can be."""
    func = plan.func
    if plan.var_keyword:
        def invoke_all(values: dict[str, Any], params: dict[str, Any]) -> Any:
            # Every server name (and path parameter): the call copies the dictionary.
            return func(**values, **params) if params else func(**values)

        return invoke_all
    if plan.params or len(plan.server) < 2:
        kwargs = plan.kwargs
        return lambda values, params: func(**kwargs(values, params))
    names = plan.server
    getter = operator.itemgetter(*names)
    return lambda values, params: func(**dict(zip(names, getter(values))))


def _type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    target = inspect.unwrap(func)
    if not (inspect.isfunction(target) or inspect.ismethod(target)) and callable(target):
        target = target.__call__
    try:
        return typing.get_type_hints(target)
    except Exception:
        pass
    # One annotation that cannot be evaluated (``X | None`` before Python 3.10, a name imported
    # for type checkers only) must not hide the others: resolve them one by one.
    hints: dict[str, Any] = {}
    namespace = getattr(target, '__globals__', {})
    for key, value in (getattr(target, '__annotations__', None) or {}).items():
        if isinstance(value, str):
            try:
                value = eval(value, namespace)
            except Exception:
                continue
        hints[key] = value
    return hints
