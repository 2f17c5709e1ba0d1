"""Which interface an application speaks: Tremolo's own, or ASGI 3.

An ASGI 3 application is one awaitable call, ``await app(scope, receive, send)``: an
``async def`` function, or an object whose ``__call__`` is one (Starlette, FastAPI, Django's
``get_asgi_application()``, Quart, Litestar). Some wrappers only return an awaitable from a
plain ``__call__``: with three positional parameters they are taken as ASGI 3 too.
"""

from __future__ import annotations

import inspect
from typing import Any

NATIVE, ASGI = 'tremolo', 'asgi'


def is_native_app(app: Any) -> bool:
    """Whether ``app`` is a Tremolo application (it makes its own dispatcher)."""
    return callable(getattr(app, 'dispatcher_factory', None)) and callable(
        getattr(app, 'run', None))


def is_asgi_app(app: Any) -> bool:
    """Whether ``app`` looks like an ASGI 3 application (see the module)."""
    if is_native_app(app) or not callable(app):
        return False
    if inspect.isclass(app):
        return False  # calling it would make an instance, not answer a request
    call = app if inspect.isroutine(app) else getattr(app, '__call__', None)  # noqa: B004
    if inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(app):
        return _takes_three(app)
    return _positional_count(app) == 3


def interface_of(app: Any, interface: str = 'auto') -> str:
    """The interface to serve ``app`` with: ``'tremolo'`` or ``'asgi'``.

    Args:
        app: The application.
        interface: The ``interface`` option: ``'auto'`` detects it.

    Raises:
        TypeError: ``app`` is neither (naming what it is), or not of the kind forced.
    """
    if interface == NATIVE or (interface == 'auto' and is_native_app(app)):
        if not is_native_app(app):
            raise TypeError(f"interface='tremolo' needs a Tremolo application, not {app!r}")
        return NATIVE
    if interface == ASGI:
        if is_native_app(app) or not callable(app) or inspect.isclass(app):
            raise TypeError(f"interface='asgi' needs an ASGI 3 application (an async callable "
                            f"taking scope, receive and send), not {app!r}")
        return ASGI
    if is_asgi_app(app):
        return ASGI
    if callable(app) and not inspect.isclass(app) and _positional_count(app) == 1:
        raise TypeError(f'{app!r} looks like an ASGI 2 application (app(scope) returning a '
                        'coroutine function): only ASGI 3 is served; wrap it with '
                        'asgiref.compatibility.guarantee_single_callable')
    raise TypeError(f'{app!r} is not a Tremolo application, nor an ASGI 3 application '
                    '(an async callable taking scope, receive and send)')


def _positional_count(app: Any) -> int:
    try:
        parameters = inspect.signature(app).parameters.values()
    except (TypeError, ValueError):
        return -1
    if any(parameter.kind is parameter.VAR_POSITIONAL for parameter in parameters):
        return 3
    return sum(parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
               and parameter.default is parameter.empty for parameter in parameters)


def _takes_three(app: Any) -> bool:
    try:
        inspect.signature(app).bind(None, None, None)
    except TypeError:
        return False
    except ValueError:  # no signature to read (a builtin): take it at its word
        return True
    return True
