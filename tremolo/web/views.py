"""Class-based views: one class per resource, one method per HTTP method."""

from __future__ import annotations

import inspect
from typing import Any, Callable

from ..exceptions import RegistrationError

#: Methods of a view class that answer HTTP methods (their upper-cased names).
VIEW_METHODS = ('get', 'post', 'put', 'patch', 'delete', 'head', 'options')


class View:
    """Base class for class-based views (subclassing it is optional).

    Define ``async def get(self, request, ...)``, ``post``, ... and register the class (or an
    instance) with ``app.route(path)``. Each method is injected like a handler. The instance is
    created once, at registration, and shared by every request: keep per-request data in
    ``context``, not on ``self``.

    Example:
        ```python
        @app.route('/items/{id:int}')
        class Item(View):
            async def get(self, id):
                return {'id': id}

            async def delete(self, id, response):
                response.set_status(204)
        ```
    """


def view_handlers(view: Any) -> dict[str, Callable[..., Any]]:
    """The HTTP method handlers of a view class or instance, by upper-cased method.

    Raises:
        RegistrationError: The view defines none of the HTTP methods, or its class cannot be
            instantiated without arguments.
    """
    if inspect.isclass(view):
        try:
            view = view()
        except TypeError as exc:
            raise RegistrationError(
                f'view {view.__qualname__} must be instantiable without arguments '
                f'(or register an instance)'
            ) from exc
    handlers = {
        name.upper(): getattr(view, name) for name in VIEW_METHODS
        if callable(getattr(view, name, None))
    }
    if not handlers:
        raise RegistrationError(
            f'view {type(view).__qualname__} defines none of {", ".join(VIEW_METHODS)}'
        )
    return handlers


def is_view(obj: Any) -> bool:
    """Whether ``obj`` is a view class or instance rather than a handler function."""
    if inspect.isclass(obj):
        return True
    return not (inspect.isfunction(obj) or inspect.ismethod(obj)) and any(
        callable(getattr(obj, name, None)) for name in VIEW_METHODS
    )
