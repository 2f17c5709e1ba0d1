"""Middleware hooks: registration, ordering and the chains compiled for each route.

Hooks run by ``priority``, lower first on the way in (``on_connect``, ``on_request``,
``on_worker_start``) and in reverse on the way out (``on_response``, ``on_close``,
``on_worker_stop``); equal priorities keep their registration order. A hook with a ``prefix``
only runs for paths under it (``/api`` covers ``/api`` and ``/api/...``, not ``/apis``), and one
with ``methods`` only for requests of those methods (``GET`` covers ``HEAD``, as for routes),
and one with ``when`` only for the routes whose options it accepts. All three are resolved when
the chains are compiled: a hook that does not apply to a request is not called, which costs
nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Callable, Optional

from ..exceptions import RegistrationError
from .injection import (
    ASYNC,
    CONNECTION_NAMES,
    REQUEST_NAMES,
    SYNC,
    WORKER_NAMES,
    Plan,
    Providers,
    compile_plan,
)

#: A function of a route's effective options: whether a hook runs for that route.
RoutePredicate = Callable[[Mapping[str, Any]], Any]

#: Hook kind to the server names its functions may take.
HOOK_NAMES: dict[str, tuple[str, ...]] = {
    'on_request': REQUEST_NAMES,
    'on_response': REQUEST_NAMES,
    'on_connect': CONNECTION_NAMES,
    'on_close': CONNECTION_NAMES,
    'on_worker_start': WORKER_NAMES,
    'on_worker_stop': WORKER_NAMES,
}
#: Hooks that run on the way out, in reverse priority order.
OUTWARD = frozenset(('on_response', 'on_close', 'on_worker_stop'))
#: Hooks that can be scoped to a path prefix.
SCOPED = frozenset(('on_request', 'on_response'))

DEFAULT_PRIORITY = 100

_METHOD_CHARS = frozenset('ABCDEFGHIJKLMNOPQRSTUVWXYZ-_')

# One sequence for every application, so that equal priorities keep registration order even
# across mounted applications.
_registration_order = itertools.count(1)


class Hook:
    """One registered hook function.

    Attributes:
        methods: The request methods it runs for (``None``: all).
        when: A function of a route's effective options telling whether the hook runs for
            that route (``None``: all routes), asked once per route when the application is
            compiled.
    """

    __slots__ = ('kind', 'plan', 'priority', 'prefix', 'order', 'methods', 'when')

    def __init__(self, kind: str, plan: Plan, priority: int, prefix: Optional[str],
                 order: int, methods: Optional[frozenset[str]] = None,
                 when: Optional[RoutePredicate] = None) -> None:
        self.kind = kind
        self.plan = plan
        self.priority = priority
        self.prefix = prefix
        self.order = order
        self.methods = methods
        self.when = when

    def applies_to(self, path: str) -> bool:
        return prefix_covers(self.prefix, path)

    def runs_for(self, options: Mapping[str, Any]) -> bool:
        """Whether it runs for a route with these effective options (see `when`).

        Raises:
            RegistrationError: ``when`` failed.
        """
        if self.when is None:
            return True
        try:
            return bool(self.when(options))
        except Exception as exc:
            raise RegistrationError(
                f'{self.kind} hook {self.plan.name}: its when= function failed: {exc!r}'
            ) from exc

    def with_prefix(self, prefix: str) -> Hook:
        """This hook, as seen from an application that mounts its owner under ``prefix``."""
        scoped = prefix + self.prefix if self.prefix else prefix
        return Hook(self.kind, self.plan, self.priority, scoped, self.order, self.methods,
                    self.when)

    def __repr__(self) -> str:
        return f'<Hook {self.kind} {self.plan.name} priority={self.priority}>'


def prefix_covers(prefix: Optional[str], path: str) -> bool:
    """Whether ``path`` (a request path or a route path) lies under ``prefix``."""
    if not prefix:
        return True
    if path.startswith('^'):
        path = path[1:].replace('\\/', '/')
    return path.startswith(prefix) and (
        len(path) == len(prefix) or path[len(prefix)] == '/' or prefix.endswith('/')
    )


class Pipeline:
    """The hooks registered on one application."""

    def __init__(self) -> None:
        self.hooks: dict[str, list[Hook]] = {kind: [] for kind in HOOK_NAMES}

    def add(
        self, kind: str, func: Callable[..., Any], *, priority: int = DEFAULT_PRIORITY,
        prefix: Optional[str] = None, providers: Optional[Providers] = None,
        methods: Optional[Iterable[str]] = None, when: Optional[RoutePredicate] = None,
    ) -> Hook:
        """Register ``func`` as a ``kind`` hook.

        Raises:
            RegistrationError: Unknown kind, bad priority, prefix or methods, a ``when`` that
                is not callable, or a parameter nothing can supply.
        """
        if kind not in HOOK_NAMES:
            raise RegistrationError(f'unknown hook {kind!r}; known: {", ".join(HOOK_NAMES)}')
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise RegistrationError(
                f'priority of {kind} hook {getattr(func, "__qualname__", func)!r} must be an '
                f'int, not {priority!r}'
            )
        if prefix is not None:
            if kind not in SCOPED:
                raise RegistrationError(f'{kind} hooks cannot be scoped to a prefix')
            if not prefix.startswith('/'):
                raise RegistrationError(f'hook prefix {prefix!r} must start with /')
            prefix = prefix.rstrip('/') or None
        method_set = None if methods is None else hook_methods(kind, methods)
        if when is not None:
            if kind not in SCOPED:
                raise RegistrationError(f'{kind} hooks cannot be limited to routes (when=)')
            if not callable(when):
                raise RegistrationError(
                    f'when of {kind} hook {getattr(func, "__qualname__", func)!r} must be a '
                    f'function of the route options, not {type(when).__name__}')
        plan = compile_plan(
            func, names=HOOK_NAMES[kind], where=f'{kind} hook', providers=providers,
            modes=(ASYNC, SYNC), inline=True,
        )
        if kind not in SCOPED and plan.providers:
            raise RegistrationError(
                f'{plan.name} ({kind} hook): providers are only available to request hooks'
            )
        hook = Hook(kind, plan, priority, prefix, next(_registration_order), method_set, when)
        self.hooks[kind].append(hook)
        return hook

    def add_object(
        self, middleware: Any, *, priority: int = DEFAULT_PRIORITY,
        prefix: Optional[str] = None, providers: Optional[Providers] = None,
    ) -> list[Hook]:
        """Register every hook method (``on_request``, ``on_response``, ...) of an object.

        Raises:
            RegistrationError: The object has no hook method.
        """
        found = [
            (kind, getattr(middleware, kind)) for kind in HOOK_NAMES
            if callable(getattr(middleware, kind, None))
        ]
        if not found:
            raise RegistrationError(
                f'middleware {middleware!r} has none of the hook methods '
                f'{", ".join(HOOK_NAMES)}'
            )
        return [
            self.add(
                kind, method, priority=priority,
                prefix=prefix if kind in SCOPED else None, providers=providers,
            )
            for kind, method in found
        ]


def hook_methods(kind: str, methods: Iterable[str]) -> frozenset[str]:
    """The methods a ``kind`` hook runs for, upper-cased (``GET`` adds ``HEAD``).

    Raises:
        RegistrationError: Not a request or response hook, or not a list of method names.
    """
    if kind not in SCOPED:
        raise RegistrationError(f'{kind} hooks cannot be limited to methods')
    names = [methods] if isinstance(methods, str) else list(methods)
    if not names or not all(
            isinstance(name, str) and name and set(name.upper()) <= _METHOD_CHARS
            for name in names):
        raise RegistrationError(
            f'methods of a {kind} hook must be HTTP method names, such as '
            f"['POST', 'PUT'], not {methods!r}")
    found = {name.upper() for name in names}
    if 'GET' in found:
        found.add('HEAD')  # as for routes: HEAD is GET without the content
    return frozenset(found)


def ordered(hooks: list[Hook], kind: str) -> tuple[Plan, ...]:
    """The plans of ``hooks`` in the order they run."""
    ranked = sorted(hooks, key=lambda hook: (hook.priority, hook.order),
                    reverse=kind in OUTWARD)
    return tuple(hook.plan for hook in ranked)


def chain(hooks: list[Hook], kind: str, path: str, method: Optional[str] = None,
          options: Mapping[str, Any] = MappingProxyType({})) -> tuple[Plan, ...]:
    """The ``kind`` hooks that apply to ``path`` (a route with the effective ``options``), in
    the order they run: for requests of ``method``, or, when it is ``None``, for the methods
    that no hook names."""
    return ordered([
        hook for hook in hooks if hook.applies_to(path) and (
            hook.methods is None or method is not None and method in hook.methods
        ) and hook.runs_for(options)
    ], kind)


def named_methods(hooks: Iterable[Hook], path: str) -> frozenset[str]:
    """The methods named by the hooks that apply to ``path`` (those whose chains may differ
    from the others')."""
    found: set[str] = set()
    for hook in hooks:
        if hook.methods is not None and hook.applies_to(path):
            found.update(hook.methods)
    return frozenset(found)
