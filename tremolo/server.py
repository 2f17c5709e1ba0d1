"""Serving: sockets, the event loop of a worker, graceful shutdown.

`serve` is what `Tremolo.run` and the command line call. One worker runs in the
calling process; several run as child processes supervised by `tremolo.supervisor`, each
with its own ``SO_REUSEPORT`` socket so that the kernel balances connections between them.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import stat
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from .dispatch import Runtime
from .logs import configure_logging
from .options import Options
from .protocol import HTTPProtocol
from .state import ServerState

if TYPE_CHECKING:
    from .app import Tremolo

logger = logging.getLogger('tremolo')

Address = Union[tuple[str, int], str]


def parse_address(value: Union[int, str], default_host: str) -> Address:
    """``8001`` → ``(host, 8001)``; ``'h:8001'`` → ``('h', 8001)``; a path → the path."""
    if isinstance(value, int):
        return (default_host, value)
    if value.isdigit():
        return (default_host, int(value))
    if '/' in value or value.endswith('.sock'):
        return value
    host, sep, port = value.rpartition(':')
    if not sep or not port.isdigit():
        raise ValueError(f'cannot read the address {value!r}: use PORT, HOST:PORT or a path')
    return (host.strip('[]') or default_host, int(port))


def addresses(options: Options) -> list[Address]:
    """Every address to listen on: the main one, then the extra ones, without repeats."""
    result: list[Address] = [(options.host, options.port)]
    for value in options.listen:
        address = parse_address(value, options.host)
        if address not in result:
            result.append(address)
    return result


def bind(address: Address, backlog: int, reuse_port: bool) -> socket.socket:
    """A listening socket for ``address`` (TCP with ``SO_REUSEPORT``, or a UNIX socket)."""
    if isinstance(address, str):
        try:
            if stat.S_ISSOCK(os.stat(address).st_mode):
                # Why: only a stale file from an earlier run may be replaced; unlinking the
                # socket of a server that still listens there silently took its address.
                if _unix_socket_listening(address):
                    raise OSError(errno.EADDRINUSE,
                                  f'a server is already listening on the UNIX socket {address}')
                os.unlink(address)  # a stale socket file from an earlier run
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(address)
        os.chmod(address, 0o666)
    else:
        host, port = address
        family = socket.AF_INET6 if ':' in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port and hasattr(socket, 'SO_REUSEPORT'):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def _unix_socket_listening(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def check_loop(kind: str) -> None:
    """Fail now if the event loop ``kind`` cannot be made.

    Why: the loop is only made in each worker, after the sockets are bound and the workers
    forked; a missing uvloop then crashed every worker (and made the supervisor respawn them
    forever) instead of stopping at startup with one clear error.
    """
    if kind == 'uvloop':
        try:
            import uvloop  # noqa: F401
        except ImportError as exc:
            raise RuntimeError("loop='uvloop' needs uvloop: pip install uvloop") from exc


def unlink_unix_socket(path: Any) -> None:
    """Remove the file of a UNIX socket at ``path`` (a no-op for anything else).

    Why: asyncio does not remove the file of a socket it was handed, so a stopped server left
    its socket file behind (``bind`` replaces a stale one, but the file misleads other tools).
    """
    if not isinstance(path, str) or not path:  # abstract sockets have no file
        return
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except OSError:
        pass


def new_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    """An event loop: ``'auto'`` follows the current policy (so a uvloop policy set by the
    user is honoured), ``'uvloop'`` requires uvloop, ``'asyncio'`` forces the stdlib loop."""
    if kind == 'uvloop':
        try:
            import uvloop
        except ImportError as exc:
            raise RuntimeError("loop='uvloop' needs uvloop: pip install uvloop") from exc
        return uvloop.new_event_loop()
    if kind == 'asyncio':
        return asyncio.SelectorEventLoop()
    return asyncio.new_event_loop()


class Worker:
    """Serves an application on sockets in the running event loop.

    Used by `serve` in each worker process, and by `tremolo.testing.serve` in
    tests. The worker owns ``sockets``: `stop` closes them.
    """

    def __init__(self, app: Tremolo, options: Options, sockets: list[socket.socket]) -> None:
        self.app = app
        self.options = options
        self.sockets = sockets
        self.state: Optional[ServerState] = None
        self.runtime: Optional[Runtime] = None
        self._servers: list[asyncio.AbstractServer] = []
        self._stopping = False

    async def start(self) -> None:
        """Compile the application, run ``on_worker_start`` hooks and start accepting."""
        loop = asyncio.get_running_loop()
        compiled = self.app.compile(self.options)
        self.runtime = Runtime(compiled, loop)
        await self.runtime.startup()
        state = self.state = ServerState(loop, self.options, self.runtime)
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

        Why duplicates of the sockets: an asyncio server closes the socket it serves when it
        stops, and the event loops offer no public way to stop accepting for a while. Serving
        a duplicate and closing it stops accepting, while the socket itself stays open and
        listening: the kernel keeps queueing new connections in its backlog until the worker
        serves a new duplicate.
        """
        loop = asyncio.get_running_loop()
        state = self.state
        assert state is not None

        protocol_class: Callable[[ServerState], asyncio.Protocol] = HTTPProtocol
        if self.options.proxy_protocol:
            from .proxied import ProxyHeaderProtocol

            protocol_class = ProxyHeaderProtocol

        def factory() -> asyncio.Protocol:
            return protocol_class(state)

        servers = []
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
        timeout, or until ``force`` is done), cancel what is left, then run
        ``on_worker_stop`` hooks."""
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
            while state.connections and loop.time() < deadline and not (force and force.done()):
                await asyncio.sleep(0.05)
            # Then the handlers still running are cancelled (503 where nothing was sent yet),
            # and whatever is still open a moment later is cut.
            for connection in list(state.connections):
                connection.cancel()
            deadline = loop.time() + 1.0
            while state.connections and loop.time() < deadline:
                await asyncio.sleep(0.01)
            for connection in list(state.connections):
                connection.abort()
            state.stop()
        for server in servers:
            await server.wait_closed()
        if self.runtime is not None:
            await self.runtime.shutdown()


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
    app: Tremolo, options: Options, sockets: list[socket.socket],
    started: Optional[Callable[[], None]] = None,
) -> bool:
    """Serve until SIGINT or SIGTERM, then stop gracefully; a second signal cuts the graceful
    stop short (the requests still running are cancelled, the hooks still run).

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
    worker = Worker(app, options, sockets)
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
                # Why: the process is on its way out; a further signal while it tears down
                # (closing the loop, the interpreter exiting) killed it with -SIGTERM or a
                # KeyboardInterrupt traceback instead of a clean exit.
                signal.signal(signum, signal.SIG_IGN)
    return stopping.done()


def run_worker(app: Tremolo, options: Options, sockets: list[socket.socket],
               started: Optional[Callable[[], None]] = None) -> None:
    """Run one worker's event loop to completion in this process."""
    loop = new_event_loop(options.loop)
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(run_worker_async(app, options, sockets, started))
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def serve(app: Tremolo, options: Options) -> None:
    """Serve ``app`` as ``options`` say, until interrupted."""
    configure_logging(options)
    reuse_port = False
    if options.reload:
        from .reloader import is_reloader_child, reserved_ports, run_with_reloader

        if not is_reloader_child():
            run_with_reloader(options)
            return
        options, reuse_port = reserved_ports(options)
    app.compile(options)  # registration mistakes surface before any socket is opened
    app._compiled = None
    for _, sub in app.mounts:
        sub._compiled = None
    check_loop(options.loop)
    if options.worker_num == 1:
        sockets: list[socket.socket] = []
        paths: list[str] = []
        try:
            for address in addresses(options):
                sockets.append(bind(address, options.backlog, reuse_port))
                if isinstance(address, str):
                    paths.append(address)
            run_worker(app, options, sockets)
        finally:
            # Why: a failed bind of a later address leaked the sockets bound before it, and
            # the files of UNIX sockets stayed behind after the server stopped.
            for sock in sockets:
                sock.close()
            for path in paths:
                unlink_unix_socket(path)
        return
    from .supervisor import Supervisor

    Supervisor(app, options).run()
