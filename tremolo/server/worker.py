"""A worker: one event loop serving a `tremolo.types.Dispatcher` on listening sockets, until a
signal stops it gracefully.

`run_worker` is the entry point of a worker process (or of the one process when there is a
single worker); `Worker` is the server itself, also used by `tremolo.testing.serve` in the
running event loop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from typing import TYPE_CHECKING, Any, Callable, Optional

from .protocol import HTTPProtocol
from .proxied import ProxyHeaderProtocol
from .state import ServerState

if TYPE_CHECKING:
    from ..options import Options
    from ..types import Dispatcher, DispatcherFactory

logger = logging.getLogger('tremolo')

#: The entry point of a worker process: ``target(sockets, started)`` serves on ``sockets`` and
#: calls ``started()`` once it accepts connections.
WorkerTarget = Callable[[list[socket.socket], Optional[Callable[[], None]]], None]


def event_loop_factory(kind: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes the event loop of a worker: ``'auto'`` follows the current policy (so a
    uvloop policy set by the user is honoured), ``'uvloop'`` requires uvloop, ``'asyncio'``
    forces the stdlib loop.

    Called at startup, before any socket is bound or worker forked, so that a missing uvloop
    stops the server with one clear error.

    Raises:
        RuntimeError: ``'uvloop'`` without uvloop installed.
    """
    if kind == 'uvloop':
        try:
            import uvloop
        except ImportError as exc:
            raise RuntimeError("loop='uvloop' needs uvloop: pip install uvloop") from exc
        return uvloop.new_event_loop
    if kind == 'asyncio':
        return asyncio.SelectorEventLoop
    return asyncio.new_event_loop


class Worker:
    """Serves a dispatcher on sockets in the running event loop. The worker owns ``sockets``:
    `stop` closes them.

    Args:
        make_dispatcher: Makes the dispatcher, given the running event loop (at `start`).
        options: The server's options.
        sockets: Listening sockets.
    """

    def __init__(self, make_dispatcher: DispatcherFactory, options: Options,
                 sockets: list[socket.socket]) -> None:
        self.make_dispatcher = make_dispatcher
        self.options = options
        self.sockets = sockets
        self.dispatcher: Optional[Dispatcher] = None
        self.state: Optional[ServerState] = None
        self._servers: list[asyncio.AbstractServer] = []
        self._stopping = False

    async def start(self) -> None:
        """Make the dispatcher, run its startup and start accepting connections."""
        loop = asyncio.get_running_loop()
        dispatcher = self.dispatcher = self.make_dispatcher(loop)
        await dispatcher.startup()
        state = self.state = ServerState(loop, self.options, dispatcher)
        state.pause_accepting = self._pause_accepting
        state.resume_accepting = lambda: state.run_in_background(self._accept())
        state.start()
        await self._accept()
        for sock in self.sockets:
            scheme = 'https' if self.options.ssl else 'http'
            name = sock.getsockname()
            is_unix = sock.family == getattr(socket, 'AF_UNIX', None)
            where = f'unix:{name}' if is_unix else f'{scheme}://{_host(name)}:{name[1]}'
            logger.info('serving on %s%s', where,
                        ' (PROXY protocol)' if self.options.proxy_protocol else '')

    async def _accept(self) -> None:
        """Accept connections on every socket (again, after `_pause_accepting`).

        Asyncio serves duplicates of the sockets: an asyncio server closes the socket it serves
        when it stops, and the event loops offer no public way to stop accepting for a while.
        Serving a duplicate and closing it stops accepting while the socket itself stays open
        and listening: the kernel keeps queueing new connections in its backlog until the
        worker serves a new duplicate.
        """
        loop = asyncio.get_running_loop()
        state = self.state
        assert state is not None

        protocol_class: Callable[[ServerState], asyncio.Protocol] = (
            ProxyHeaderProtocol if self.options.proxy_protocol else HTTPProtocol)

        def factory() -> asyncio.Protocol:
            return protocol_class(state)

        servers: list[asyncio.AbstractServer] = []
        for sock in self.sockets:
            if self._stopping:  # stop() closed the sockets meanwhile
                break
            servers.append(await loop.create_server(
                factory, sock=sock.dup(), ssl=self.options.ssl, backlog=self.options.backlog,
                ssl_handshake_timeout=self.options.header_timeout if self.options.ssl else None,
            ))
        self._servers = servers
        if self._stopping or not state.accepting:  # paused or stopped meanwhile
            self._pause_accepting()

    def _pause_accepting(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()

    async def stop(self, force: Optional[asyncio.Future[Any]] = None) -> None:
        """Stop accepting, let in-flight requests finish (up to the graceful shutdown
        timeout, or until ``force`` is done), cancel what is left, then run the dispatcher's
        shutdown."""
        self._stopping = True
        servers = self._servers
        self._pause_accepting()
        for sock in self.sockets:
            sock.close()  # new connections are refused from now on
        state = self.state
        if state is not None:
            state.close_idle()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.options.graceful_shutdown_timeout
            while ((state.connections or state.detached) and loop.time() < deadline
                   and not (force and force.done())):
                await asyncio.sleep(0.05)
            # Then the handlers still running are cancelled (503 where nothing was sent yet),
            # and whatever is still open a moment later is cut.
            for connection in list(state.connections):
                connection.cancel()
            for task in list(state.detached):
                task.cancel()  # its response was sent: only its own work after it is lost
            deadline = loop.time() + 1.0
            while state.connections and loop.time() < deadline:
                await asyncio.sleep(0.01)
            for connection in list(state.connections):
                connection.abort()
            state.stop()
        for server in servers:
            await server.wait_closed()
        if self.dispatcher is not None:
            await self.dispatcher.shutdown()


def _host(name: Any) -> str:
    host = name[0]
    return f'[{host}]' if ':' in host else host


#: A stop signal received before the event loop could handle it (see `remember_signal`).
_early_signal: Optional[int] = None


def remember_signal(signum: int, frame: Any) -> None:
    """A signal handler for the moments before a worker's event loop runs: the worker then
    stops at once, cleanly, instead of dying from the signal."""
    global _early_signal
    _early_signal = signum


async def run_worker_async(
    make_dispatcher: DispatcherFactory, options: Options, sockets: list[socket.socket],
    started: Optional[Callable[[], None]] = None,
) -> bool:
    """Serve until SIGINT or SIGTERM, then stop gracefully; a second signal cuts the graceful
    stop short (the requests still running are cancelled, the shutdown still runs).

    ``started`` is called once the worker accepts connections (the supervisor uses it to tell
    a worker that failed at startup from one that crashed later). Returns whether a signal
    stopped it.
    """
    loop = asyncio.get_running_loop()
    stopping = loop.create_future()
    forced = loop.create_future()

    def stop(signum: int) -> None:
        name = signal.Signals(signum).name
        if not stopping.done():
            logger.info('received %s: stopping gracefully', name)
            stopping.set_result(signum)
        elif not forced.done():
            logger.info('received %s again: stopping now', name)
            forced.set_result(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    if _early_signal is not None:
        stop(_early_signal)
    worker = Worker(make_dispatcher, options, sockets)
    try:
        if not stopping.done():
            await worker.start()
        if started is not None and not stopping.done():
            started()
        await stopping
    finally:
        await worker.stop(forced)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
            if stopping.done():
                # The process is on its way out: a further signal while it tears down (closing
                # the loop, the interpreter exiting) must not turn a clean exit into a death
                # by signal or a KeyboardInterrupt traceback.
                signal.signal(signum, signal.SIG_IGN)
    return stopping.done()


def run_worker(make_dispatcher: DispatcherFactory, options: Options,
               sockets: list[socket.socket], started: Optional[Callable[[], None]] = None,
               ) -> None:
    """Run one worker's event loop to completion in this process (see `run_worker_async`)."""
    loop = event_loop_factory(options.loop)()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(run_worker_async(make_dispatcher, options, sockets, started))
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
