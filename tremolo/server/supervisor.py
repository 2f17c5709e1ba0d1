"""Several worker processes: started, watched, respawned, stopped gracefully.

The main process binds every address first (so a busy port fails before any worker starts, and
port 0 resolves to one port for all), then forks the workers. Each worker binds its own
``SO_REUSEPORT`` socket to the same TCP address, so the kernel spreads connections over them;
UNIX sockets are shared. A worker that dies is replaced; SIGINT or SIGTERM stops the workers
gracefully (each finishes its in-flight requests up to the graceful shutdown timeout); a
second signal is passed on too, and makes them stop at once.
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

from .sockets import Address, addresses, bind, unlink_unix_socket
from .worker import remember_signal

if TYPE_CHECKING:
    from ..options import Options
    from .worker import WorkerTarget

logger = logging.getLogger('tremolo')

# A worker that dies sooner than this after starting is crashing at startup: wait before
# replacing it instead of forking in a tight loop.
_MIN_UPTIME = 1.0
_RESPAWN_DELAY = 1.0


class Supervisor:
    """Runs ``options.worker_num`` worker processes until told to stop.

    Args:
        options: The server's options (addresses, number of workers, timeouts).
        target: The entry point of each worker process: ``target(sockets, started)``.
    """

    def __init__(self, options: Options, target: WorkerTarget) -> None:
        self.options = options
        self.target = target
        self._context = multiprocessing.get_context('fork')
        self._workers: dict[int, tuple[Any, float, Any]] = {}
        self._stopping = False
        self._signals = 0
        self._pid = os.getpid()
        self._reserved: list[socket.socket] = []
        self._shared: list[socket.socket] = []
        self._paths: list[str] = []
        self._addresses: list[Address] = []
        #: Worker slots that have had a worker serving at least once.
        self._started: set[int] = set()
        self._failure: Optional[str] = None
        # A pipe written by the signal handler, so that waiting for workers wakes up at once.
        self._wakeup: Optional[tuple[int, int]] = None

    def _prepare_sockets(self) -> None:
        for address in addresses(self.options):
            sock = bind(address, self.options.backlog, reuse_port=True)
            if isinstance(address, str):
                self._shared.append(sock)  # UNIX sockets: one accept queue for all workers
                self._paths.append(address)
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
        ready = self._context.Event()  # set by the worker once it accepts connections
        process = self._context.Process(
            target=self._worker_main, args=(ready,), name=f'tremolo-worker-{index}',
            daemon=False,
        )
        process.start()
        self._workers[index] = (process, time.monotonic(), ready)

    def run(self) -> None:
        """Start the workers and supervise them until SIGINT/SIGTERM.

        Raises:
            RuntimeError: A worker failed at startup (its error is logged by the worker).
        """
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)
        self._wakeup = (read_end, write_end)
        previous = {
            signum: signal.signal(signum, self._on_signal)
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            # Inside the try: when a later address fails to bind, the earlier sockets close.
            self._prepare_sockets()
            for index in range(self.options.worker_num):
                self._spawn(index)
            logger.info('started %d workers (pid %d supervising)', len(self._workers),
                        os.getpid())
            self._watch()
        finally:
            self._stop_all()
            for signum, handler in previous.items():
                # Ignored after a stop signal: a further one while the process exits must not
                # turn a clean exit into a death by signal.
                signal.signal(signum, signal.SIG_IGN if self._signals else handler)
            for sock in self._reserved + self._shared:
                sock.close()
            for path in self._paths:
                unlink_unix_socket(path)
            self._wakeup = None
            os.close(read_end)
            os.close(write_end)
        if self._failure is not None:
            raise RuntimeError(self._failure)

    def _watch(self) -> None:
        while not self._stopping:
            sentinels = {process.sentinel: index
                         for index, (process, _, _) in self._workers.items()}
            # The signal handler writes to the wakeup pipe, so that a stop signal reaches the
            # workers at once (they stop accepting new connections), not at the next timeout.
            ready = wait([*sentinels, self._wakeup_fd()], timeout=5.0)
            for sentinel in ready:
                if self._stopping:
                    break
                if sentinel not in sentinels:
                    self._drain_wakeup()  # else a stray byte would make every wait return
                    continue
                index = sentinels[sentinel]
                process, started, serving = self._workers[index]
                process.join()
                if serving.is_set():
                    self._started.add(index)
                elif index not in self._started:
                    # A worker that cannot start the first time (an import, a hook or the event
                    # loop failing) will not start the next time either: stop, as one worker
                    # would, rather than repeat its traceback forever.
                    self._failure = (f'worker {index} (pid {process.pid}) failed to start '
                                     f'(exit code {process.exitcode}): stopping; its error '
                                     'is logged above')
                    logger.error('%s', self._failure)
                    self._stopping = True
                    break
                uptime = time.monotonic() - started
                logger.warning('worker %d (pid %s) exited with code %s; starting a new one',
                               index, process.pid, process.exitcode)
                if uptime < _MIN_UPTIME:
                    wait([self._wakeup_fd()], timeout=_RESPAWN_DELAY)  # a signal cuts it short
                if not self._stopping:
                    self._spawn(index)

    def _wakeup_fd(self) -> int:
        assert self._wakeup is not None
        return self._wakeup[0]

    def _drain_wakeup(self) -> None:
        try:
            os.read(self._wakeup_fd(), 512)
        except OSError:  # nothing to read
            pass

    def _on_signal(self, signum: int, frame: Any) -> None:
        if os.getpid() != self._pid:
            # A worker just forked, before it set its own handlers: it stops once it can.
            remember_signal(signum, frame)
            return
        self._signals += 1
        if not self._stopping:
            logger.info('received %s: stopping the workers', signal.Signals(signum).name)
        elif self._signals > 1:
            # A second signal: the workers cut their graceful stop short.
            logger.info('received %s again: stopping the workers now',
                        signal.Signals(signum).name)
            self._kill_workers(signal.SIGTERM)
        self._stopping = True
        if self._wakeup is not None:
            try:
                os.write(self._wakeup[1], b'\0')
            except OSError:  # the pipe is full: a wakeup is pending already
                pass

    def _kill_workers(self, signum: int) -> None:
        for process, _, _ in list(self._workers.values()):
            if process.is_alive():
                os.kill(process.pid, signum)

    def _stop_all(self) -> None:
        self._stopping = True
        processes = [process for process, _, _ in self._workers.values()]
        self._kill_workers(signal.SIGTERM)
        deadline = time.monotonic() + self.options.graceful_shutdown_timeout + 5
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                logger.warning('worker pid %s did not stop in time: killing it', process.pid)
                process.kill()
                process.join()

    def _worker_main(self, ready: Any) -> None:
        """The body of a worker process (forked): serve on its own sockets."""
        # The parent's handlers would only set its flag: a worker stops through its event loop,
        # and a signal that comes before the loop runs is remembered until then.
        signal.signal(signal.SIGINT, remember_signal)
        signal.signal(signal.SIGTERM, remember_signal)
        for sock in self._reserved:
            sock.close()
        if self._wakeup is not None:
            for fd in self._wakeup:
                os.close(fd)
            self._wakeup = None
        sockets: Optional[list[socket.socket]] = None
        try:
            sockets = self._worker_sockets()
            self.target(sockets, ready.set)
        except KeyboardInterrupt:
            pass
        finally:
            for sock in sockets or ():
                sock.close()


def _unlisten(sock: socket.socket, host: str, port: int) -> socket.socket:
    """Replace a listening socket by a bound, non-listening one on the same address."""
    family = sock.family
    sock.close()
    reserved = socket.socket(family, socket.SOCK_STREAM)
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    reserved.bind((host, port))
    return reserved
