"""A worker: one event loop serving a `tremolo.types.Dispatcher` on listening sockets, until a
signal stops it gracefully.

`run_worker` is the entry point of a worker process (or of the one process when there is a
single worker); `Worker` is the server itself, also used by `tremolo.testing.serve` in the
running event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from typing import TYPE_CHECKING, Any, Callable, Optional

from . import link as messages
from .figures import FigureStore
from .protocol import HTTPProtocol
from .proxied import ProxyHeaderProtocol
from .state import ServerState

if TYPE_CHECKING:
    from ..options import Options
    from ..types import Dispatcher, DispatcherFactory
    from .link import Link

logger = logging.getLogger('tremolo')

#: The entry point of a worker process: ``target(sockets, link)`` serves on ``sockets``; with
#: a `Link` to its supervisor (or to the reloader), it tells it once it accepts connections
#: and takes its orders.
WorkerTarget = Callable[[list[socket.socket], Optional['Link']], None]

#: Seconds between two publications of a worker's figures (for the other workers' gathering).
PUBLISH_INTERVAL = 1.0

#: Turns of the event loop a stopping worker gives the connections it accepted last to be
#: set up (a TCP connection's protocol is made within two).
ACCEPT_SETTLE_TURNS = 4

#: Seconds a stopping worker serving TLS gives the handshakes under way to complete.
TLS_ACCEPT_SETTLE = 0.1


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
                 sockets: list[socket.socket], figures: Optional[FigureStore] = None) -> None:
        self.make_dispatcher = make_dispatcher
        self.options = options
        self.sockets = sockets
        self.dispatcher: Optional[Dispatcher] = None
        self.state: Optional[ServerState] = None
        #: Where the workers of the server publish their figures (``None``: this worker is the
        #: whole server).
        self.figures = figures
        self._servers: list[asyncio.AbstractServer] = []
        self._stopping = False
        self._publisher: Optional[asyncio.TimerHandle] = None

    async def start(self) -> None:
        """Make the dispatcher, run its startup and start accepting connections."""
        loop = asyncio.get_running_loop()
        dispatcher = self.dispatcher = self.make_dispatcher(loop)
        await dispatcher.startup()
        state = self.state = ServerState(loop, self.options, dispatcher)
        state.pause_accepting = self._pause_accepting
        state.resume_accepting = lambda: state.run_in_background(self._accept())
        state.start()
        figures = self.figures
        if figures is not None:
            pid = os.getpid()
            state.telemetry.connect(state.figures, lambda: figures.read(exclude=pid))
            if state.telemetry.publishing:
                self._publish()
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

    def _publish(self) -> None:
        """Publish this worker's figures now, and again in `PUBLISH_INTERVAL` seconds."""
        assert self.state is not None and self.figures is not None
        self.figures.publish(os.getpid(), self.state.telemetry.collect())
        if not self._stopping:
            self._publisher = self.state.loop.call_later(PUBLISH_INTERVAL, self._publish)

    def _pause_accepting(self) -> None:
        servers, self._servers = self._servers, []
        loop = asyncio.get_running_loop()
        if not isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop):
            for server in servers:
                server.close()
            return
        # An asyncio server closed while the connections of its last accept are still being
        # set up (each in a task of its own, which runs a turn later) fails to attach them,
        # silently: their sockets stay open, unserved, until the process exits, and their
        # clients get a reset (CPython 3.11's Server._attach asserts the server is open). So
        # accepting stops first; the servers close once those tasks have made their
        # connections (they were scheduled before this, and run first).
        for server in servers:
            assert isinstance(server, asyncio.Server)
            for sock in server.sockets:
                loop.remove_reader(sock.fileno())
            loop.call_soon(loop.call_soon, server.close)

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
            # The connections accepted last are still being set up: their protocol is made a
            # few turns of the loop later (after the handshake, over TLS). They are waited
            # for, then shut down as they open like the others (one request, answered with
            # Connection: close), rather than dropped with the process while their client is
            # sending its request.
            for _ in range(ACCEPT_SETTLE_TURNS):
                await asyncio.sleep(0)
            if self.options.ssl and not (force and force.done()):
                await asyncio.sleep(TLS_ACCEPT_SETTLE)
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
        if self._publisher is not None:
            self._publisher.cancel()
            self._publish()  # the last figures: the supervisor keeps their counters


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
    link: Optional[Link] = None,
) -> bool:
    """Serve until SIGINT or SIGTERM, or until ``link`` says to stop, then stop gracefully;
    a second signal (or the order to stop now) cuts the graceful stop short: the requests
    still running are cancelled, the shutdown still runs.

    Signals and orders are counted apart: a signal sent to the whole process group reaches
    the worker both directly and as its supervisor's order, and that is one stop, not two.

    With a ``link``, the worker tells it once it accepts connections (the supervisor tells a
    worker that failed at startup from one that crashed later) and when ``max_requests`` is
    reached, and stops gracefully if the other end goes away. Returns whether it was stopped
    (rather than failing).
    """
    loop = asyncio.get_running_loop()
    stopping = loop.create_future()
    forced = loop.create_future()
    signals = 0
    worker: Optional[Worker] = None

    def stop(reason: str, now: bool = False) -> None:
        if not stopping.done():
            logger.info('%s: stopping gracefully', reason)
            stopping.set_result(reason)
            if not now:
                return
        if now and not forced.done():
            logger.info('%s: stopping now', reason)
            forced.set_result(reason)

    def on_signal(signum: int) -> None:
        nonlocal signals
        signals += 1
        name = signal.Signals(signum).name
        stop(f'received {name}' if signals == 1 else f'received {name} again', signals > 1)

    def on_hangup() -> None:
        logger.warning('received SIGHUP: reloading needs a supervisor (the supervise option, '
                       'or worker_num above 1); ignored')

    def on_order() -> None:
        assert link is not None
        data = link.receive()
        if data is None:
            loop.remove_reader(link.fileno())
            stop('the supervisor is gone')
            return
        state = worker.state if worker is not None else None
        for order in (data[i:i + 1] for i in range(len(data))):
            if order == messages.STOP:
                stop('told to stop')
            elif order == messages.STOP_NOW:
                stop('told to stop now', now=True)
            elif order in (messages.DRAIN, messages.UNDRAIN) and state is not None:
                state.draining = order == messages.DRAIN

    # A supervised worker ignores SIGHUP (its supervisor reloads); one without a supervisor
    # says why it cannot.
    hangup = link is None or link.slot is None
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    if hangup:
        loop.add_signal_handler(signal.SIGHUP, on_hangup)
    if link is not None:
        loop.add_reader(link.fileno(), on_order)
    if _early_signal is not None:
        on_signal(_early_signal)
    figures = FigureStore(link.figures_dir) if link is not None and link.figures_dir else None
    worker = Worker(make_dispatcher, options, sockets, figures)
    try:
        if not stopping.done():
            await worker.start()
        if link is not None and not stopping.done():
            assert worker.state is not None

            def recycle() -> None:
                assert link is not None
                link.send(messages.RECYCLE)

            worker.state.on_recycle = recycle
            link.send(messages.SERVING)
        await stopping
    finally:
        await worker.stop(forced)
        if link is not None:
            loop.remove_reader(link.fileno())
        if hangup:
            loop.remove_signal_handler(signal.SIGHUP)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
            if stopping.done():
                # The process is on its way out: a further signal while it tears down (closing
                # the loop, the interpreter exiting) must not turn a clean exit into a death
                # by signal or a KeyboardInterrupt traceback.
                signal.signal(signum, signal.SIG_IGN)
    return stopping.done()


def run_worker(make_dispatcher: DispatcherFactory, options: Options,
               sockets: list[socket.socket], link: Optional[Link] = None) -> None:
    """Run one worker's event loop to completion in this process (see `run_worker_async`)."""
    loop = event_loop_factory(options.loop)()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(run_worker_async(make_dispatcher, options, sockets, link))
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
