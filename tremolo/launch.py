"""``tremolo.run(app)``: serve a Tremolo application or an ASGI 3 application.

This is where an application of either kind meets the server: the ``interface`` option (or
the application itself) decides which `tremolo.types.Dispatcher` serves it, and the same
server core, with every option, runs it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable, Optional

from .asgi.detect import ASGI, interface_of
from .options import Options

if TYPE_CHECKING:
    from .types import DispatcherFactory


def dispatcher_factory(app: Any, options: Options) -> DispatcherFactory:
    """What makes the dispatcher of ``app`` in each worker, as ``options.interface`` says.

    Raises:
        TypeError: ``app`` is not an application of the interface asked for.
        RegistrationError: A Tremolo application with a registration mistake.
    """
    if interface_of(app, options.interface) == ASGI:
        from .asgi.dispatcher import ASGIDispatcher

        return functools.partial(ASGIDispatcher, app, options)
    factory: DispatcherFactory = app.dispatcher_factory(options)
    return factory


def run(app: Any, host: str = '127.0.0.1', port: int = 8000, *,
        loader: Optional[Callable[[], Any]] = None, **options: Any) -> None:
    """Serve ``app`` until interrupted (SIGINT/SIGTERM stop gracefully).

    ``app`` is a Tremolo application (served as by its own `Tremolo.run`) or an ASGI 3
    application: FastAPI, Starlette, Django (``get_asgi_application()``), Quart, Litestar, or
    any ``async def app(scope, receive, send)``.

    Example:
        ```python
        import tremolo
        from myproject.asgi import application

        tremolo.run(application, host='0.0.0.0', port=8000, worker_num=4)
        ```

    Args:
        app: The application.
        host: Address to bind.
        port: Port to bind.
        loader: Imports the application afresh and returns it: on SIGHUP, the new workers
            serve what it returns (``python -m tremolo module:app`` passes one).
        **options: Any `Options` field (``interface`` forces the kind of application).

    Raises:
        TypeError: An unknown option, or an application of neither kind.
        LifespanFailure: The ASGI application's lifespan startup failed.
    """
    settings = Options.from_kwargs(host=host, port=port, **options)
    if interface_of(app, settings.interface) != ASGI:
        app.run(host, port, loader=loader, **options)
        return
    from .server.serve import serve

    def reimport() -> DispatcherFactory:
        assert loader is not None
        return dispatcher_factory(loader(), settings)

    serve(settings, dispatcher_factory(app, settings), reimport if loader is not None else None)
