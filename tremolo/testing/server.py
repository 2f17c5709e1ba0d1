"""A real server on an ephemeral port, in the running event loop."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from ..launch import dispatcher_factory
from ..options import Options
from ..server.sockets import bind
from ..server.worker import Worker


class RunningServer:
    """A server started by `serve`.

    Attributes:
        host: The address it listens on.
        port: The port it was given.
        url: ``http://host:port`` (``https://`` when serving with the ``ssl`` option).
        worker: The `Worker` serving it.
    """

    def __init__(self, host: str, port: int, worker: Worker) -> None:
        self.host = host
        self.port = port
        scheme = 'https' if worker.options.ssl is not None else 'http'
        self.url = f'{scheme}://{host}:{port}'
        self.worker = worker

    def __repr__(self) -> str:
        return f'<RunningServer {self.url}>'


@asynccontextmanager
async def serve(app: Any, host: str = '127.0.0.1', **options: Any
                ) -> AsyncIterator[RunningServer]:
    """Serve ``app`` (a Tremolo application or an ASGI 3 application) on a free port of
    ``host`` for the duration of the ``async with``.

    Example:
        ```python
        async with serve(app) as server:
            async with aiohttp.ClientSession() as session:
                async with session.get(server.url + '/hello') as response:
                    assert await response.text() == 'Hello world!'
        ```
    """
    options.setdefault('access_log', False)
    options.setdefault('graceful_shutdown_timeout', 5.0)
    sock = bind((host, 0), 128, reuse_port=False)
    port = sock.getsockname()[1]
    settings = Options.from_kwargs(host=host, port=port, **options)
    worker = Worker(dispatcher_factory(app, settings), settings, [sock])
    await worker.start()
    try:
        yield RunningServer(host, port, worker)
    finally:
        await worker.stop()
