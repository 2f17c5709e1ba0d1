"""Several worker processes: started, watched, respawned, stopped gracefully.

The main process binds every address first (so a busy port fails before any worker starts, and
port 0 resolves to one port for all), then forks the workers. Each worker binds its own
``SO_REUSEPORT`` socket to the same TCP address, so the kernel spreads connections over them;
UNIX sockets are shared. A worker that dies is replaced; SIGINT or SIGTERM stops the workers
gracefully (each finishes its in-flight requests up to the graceful shutdown timeout).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any, Optional

from .options import Options
from .server import Address, addresses, bind, run_worker

if TYPE_CHECKING:
    from .app import Tremolo

logger = logging.getLogger('tremolo')

# A worker that dies sooner than this after starting is crashing at startup: wait before
# replacing it instead of forking in a tight loop.
_MIN_UPTIME = 1.0
_RESPAWN_DELAY = 1.0


class Supervisor:
    """Runs ``options.worker_num`` worker processes until told to stop."""

    def __init__(self, app: Tremolo, options: Options) -> None:
        self.app = app
        self.options = options
        self._context = multiprocessing.get_context('fork')
        self._workers: dict[int, tuple[Any, float]] = {}
        self._stopping = False
        self._reserved: list[socket.socket] = []
        self._shared: list[socket.socket] = []
        self._addresses: list[Address] = []

    def _prepare_sockets(self) -> None:
        for address in addresses(self.options):
            sock = bind(address, self.options.backlog, reuse_port=True)
            if isinstance(address, str):
                self._shared.append(sock)  # UNIX sockets: one accept queue for all workers
                continue
            name = sock.getsockname()
            self._addresses.append((address[0], name[1]))
            # Keep the port reserved while workers come and go, but do not accept on it.
            self._reserved.append(_unlisten(sock, address[0], name[1]))

    def _worker_sockets(self) -> list[socket.socket]:
        sockets = [bind(address, self.options.backlog, reuse_port=True)
                   for address in self._addresses]
        return sockets + self._shared

    def _spawn(self, index: int) -> None:
        process = self._context.Process(
            target=_worker_main, args=(self, index), name=f'tremolo-worker-{index}',
            daemon=False,
        )
        process.start()
        self._workers[index] = (process, time.monotonic())

    def run(self) -> None:
        """Start the workers and supervise them until SIGINT/SIGTERM."""
        self._prepare_sockets()
        previous = {
            signum: signal.signal(signum, self._on_signal)
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            for index in range(self.options.worker_num):
                self._spawn(index)
            logger.info('started %d workers (pid %d supervising)', len(self._workers),
                        os.getpid())
            self._watch()
        finally:
            self._stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            for sock in self._reserved + self._shared:
                sock.close()

    def _watch(self) -> None:
        while not self._stopping:
            sentinels = {process.sentinel: index
                         for index, (process, _) in self._workers.items()}
            ready = wait(list(sentinels), timeout=0.5)
            for sentinel in ready:
                if self._stopping:
                    break
                index = sentinels[sentinel]
                process, started = self._workers[index]
                process.join()
                uptime = time.monotonic() - started
                logger.warning('worker %d (pid %s) exited with code %s; starting a new one',
                               index, process.pid, process.exitcode)
                if uptime < _MIN_UPTIME:
                    time.sleep(_RESPAWN_DELAY)
                if not self._stopping:
                    self._spawn(index)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if not self._stopping:
            logger.info('received %s: stopping the workers', signal.Signals(signum).name)
        self._stopping = True

    def _stop_all(self) -> None:
        self._stopping = True
        processes = [process for process, _ in self._workers.values()]
        for process in processes:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.options.graceful_shutdown_timeout + 5
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                logger.warning('worker pid %s did not stop in time: killing it', process.pid)
                process.kill()
                process.join()


def _unlisten(sock: socket.socket, host: str, port: int) -> socket.socket:
    """Replace a listening socket by a bound, non-listening one on the same address."""
    family = sock.family
    sock.close()
    reserved = socket.socket(family, socket.SOCK_STREAM)
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    reserved.bind((host, port))
    return reserved


def _worker_main(supervisor: Supervisor, index: int) -> None:
    # The parent's handlers would only set its flag: a worker stops through its event loop.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for sock in supervisor._reserved:
        sock.close()
    sockets: Optional[list[socket.socket]] = None
    try:
        sockets = supervisor._worker_sockets()
        run_worker(supervisor.app, supervisor.options, sockets)
    except KeyboardInterrupt:
        pass
    finally:
        for sock in sockets or ():
            sock.close()
