"""Several worker processes: started, watched, replaced, reloaded and stopped gracefully.

The main process binds every address first (so a busy port fails before any worker starts, and
port 0 resolves to one port for all), then forks the workers. Each worker *slot* has its own
``SO_REUSEPORT`` listening socket on each TCP address, so the kernel spreads connections over
the slots; UNIX sockets are shared. The supervisor keeps each slot's sockets, so that a worker
replaced on purpose (a reload, recycling) hands its accept queue over to its successor: the
successor accepts on the same socket before the old worker stops, and no connection waiting to
be accepted is lost. A worker that dies is replaced on new sockets (the kernel stops sending
connections to the dead worker's at once).

The supervisor talks to each worker through a `tremolo.server.link.Link`:

- SIGINT or SIGTERM stops the workers gracefully (each finishes its in-flight requests up to
  the graceful shutdown timeout); a second one makes them stop at once. Workers that also
  receive the signal themselves (it was sent to the process group) count it once.
- SIGHUP reloads: a new worker for every slot (with the application imported afresh when the
  server knows how: ``python -m tremolo module:app``), and once all of them accept connections,
  the old ones stop gracefully. If the new code fails to import or a new worker fails to start,
  the old workers go on serving and the reason is logged.
- A worker that reaches ``max_requests`` or ``max_worker_memory`` is replaced the same way, one
  at a time.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..telemetry import Figures
from . import link as messages
from .figures import FigureStore
from .link import Link
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
#: Seconds a new worker (a reload, a replacement) has to accept connections.
_START_TIMEOUT = 60.0
#: Seconds between two looks at the workers' memory (``max_worker_memory``).
_MEMORY_INTERVAL = 1.0

#: Makes the entry point of new workers with the application imported afresh (raises if the
#: import fails).
Reimport = Callable[[], 'WorkerTarget']


class WorkerProcess:
    """One worker process as the supervisor sees it."""

    __slots__ = ('slot', 'process', 'link', 'started', 'serving', 'retiring', 'deadline')

    def __init__(self, slot: int, process: Any, link: Link) -> None:
        self.slot = slot
        self.process = process
        self.link = link
        self.started = time.monotonic()
        #: It accepts connections.
        self.serving = False
        #: Told to stop (replaced, or the server stops).
        self.retiring = False
        #: When it is killed if still running (monotonic time; 0: none).
        self.deadline = 0.0

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def __repr__(self) -> str:
        return f'<worker {self.slot} pid {self.process.pid}>'


class Supervisor:
    """Runs ``options.worker_num`` worker processes until told to stop.

    Args:
        options: The server's options (addresses, number of workers, timeouts, recycling).
        target: The entry point of each worker process: ``target(sockets, link)``.
        reimport: Makes the entry point of the new workers of a reload, with the application
            imported afresh; ``None``: reloads start new workers with the same code.
        parent: The line to the development reloader that runs this server, if any.
    """

    def __init__(self, options: Options, target: WorkerTarget,
                 reimport: Optional[Reimport] = None, parent: Optional[Link] = None) -> None:
        self.options = options
        self.target = target
        self.reimport = reimport
        self.parent = parent
        self._context = multiprocessing.get_context('fork')
        #: The worker serving each slot, and the new ones starting to take over.
        self._current: dict[int, WorkerProcess] = {}
        self._incoming: dict[int, WorkerProcess] = {}
        self._retiring: list[WorkerProcess] = []
        #: Why the incoming workers start: 'reload', 'max_requests' or 'max_worker_memory'.
        self._incoming_reason = ''
        #: Slots whose worker asked to be replaced, with the reason, oldest first.
        self._recycling: list[tuple[int, int, str]] = []
        self._respawn_at: dict[int, float] = {}
        self._stopping = False
        self._signals = 0
        self._hangups = 0
        self._pid = os.getpid()
        self._reserved: list[socket.socket] = []
        self._shared: list[socket.socket] = []
        self._paths: list[str] = []
        self._addresses: list[Address] = []
        self._slot_sockets: dict[int, list[socket.socket]] = {}
        #: Worker slots that have had a worker serving at least once.
        self._started: set[int] = set()
        self._failure: Optional[str] = None
        self._restarts: dict[str, int] = {}
        self._figures: Optional[FigureStore] = None
        self._next_memory_check = 0.0
        # A pipe written by the signal handler, so that waiting for workers wakes up at once.
        self._wakeup: Optional[tuple[int, int]] = None

    # -- sockets --------------------------------------------------------------------------------

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

    def _sockets_of(self, slot: int) -> list[socket.socket]:
        """The listening sockets of ``slot`` (made when the slot has none)."""
        sockets = self._slot_sockets.get(slot)
        if sockets is None:
            sockets = self._slot_sockets[slot] = [
                bind(address, self.options.backlog, reuse_port=True)
                for address in self._addresses]
        return sockets

    def _close_slot_sockets(self, slot: int) -> None:
        for sock in self._slot_sockets.pop(slot, ()):
            sock.close()

    # -- workers --------------------------------------------------------------------------------

    def _spawn(self, slot: int, target: Optional[WorkerTarget] = None) -> WorkerProcess:
        sockets = self._sockets_of(slot)
        mine, theirs = Link.pair(slot, self._figures.path if self._figures else None)
        process = self._context.Process(
            target=self._worker_main,
            args=(slot, target or self.target, theirs, sockets, mine),
            name=f'tremolo-worker-{slot}', daemon=False,
        )
        process.start()
        theirs.close()
        worker = WorkerProcess(slot, process, mine)
        logger.debug('started worker %d (pid %d)', slot, worker.pid)
        return worker

    def _all(self) -> list[WorkerProcess]:
        return [*self._current.values(), *self._incoming.values(), *self._retiring]

    def run(self) -> None:
        """Start the workers and supervise them until SIGINT/SIGTERM.

        Raises:
            RuntimeError: A worker failed at startup (its error is logged by the worker).
        """
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)
        self._wakeup = (read_end, write_end)
        handled = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
        previous = {signum: signal.signal(signum, self._on_signal) for signum in handled}
        self._figures = FigureStore.create()
        try:
            # Inside the try: when a later address fails to bind, the earlier sockets close.
            self._prepare_sockets()
            for slot in range(self.options.worker_num):
                self._current[slot] = self._spawn(slot)
            self._publish_figures()
            logger.info('started %d workers (pid %d supervising)', len(self._current),
                        os.getpid())
            self._watch()
        finally:
            self._stop_all()
            for signum, handler in previous.items():
                # Ignored after a stop signal: a further one while the process exits must not
                # turn a clean exit into a death by signal.
                signal.signal(signum, signal.SIG_IGN if self._signals else handler)
            for slot in list(self._slot_sockets):
                self._close_slot_sockets(slot)
            for sock in self._reserved + self._shared:
                sock.close()
            for path in self._paths:
                unlink_unix_socket(path)
            self._wakeup = None
            os.close(read_end)
            os.close(write_end)
            self._figures.remove()
        if self._failure is not None:
            raise RuntimeError(self._failure)

    # -- watching -------------------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stopping:
            workers = self._all()
            handles: dict[Any, tuple[str, WorkerProcess]] = {}
            for worker in workers:
                handles[worker.process.sentinel] = ('exit', worker)
                handles[worker.link.sock] = ('message', worker)
            waiting: list[Any] = [*handles, self._wakeup_fd()]
            if self.parent is not None:
                waiting.append(self.parent.sock)
            for ready in wait(waiting, timeout=self._timeout()):
                if self._stopping:
                    break
                if ready == self._wakeup_fd():
                    self._drain_wakeup()  # else a stray byte would make every wait return
                elif self.parent is not None and ready is self.parent.sock:
                    self._parent_order()
                else:
                    what, worker = handles[ready]
                    if what == 'exit':
                        self._exited(worker)
                    else:
                        self._message(worker)
            if self._stopping:
                break
            self._timers()
            if self._hangups and not self._incoming:  # after a replacement in progress
                self._hangups = 0
                self._reload()
            self._next_replacement()

    def _timeout(self) -> float:
        now = time.monotonic()
        times = [*self._respawn_at.values(),
                 *(w.deadline for w in self._all() if w.deadline)]
        times += [w.started + _START_TIMEOUT for w in self._incoming.values()]
        if self.options.max_worker_memory:
            times.append(self._next_memory_check)
        if not times:
            return 5.0
        return min(5.0, max(0.0, min(times) - now))

    def _timers(self) -> None:
        now = time.monotonic()
        for slot, when in list(self._respawn_at.items()):
            if now >= when:
                del self._respawn_at[slot]
                self._current[slot] = self._spawn(slot)
                self._publish_figures()
        for worker in self._retiring:
            if worker.deadline and now >= worker.deadline and worker.process.is_alive():
                logger.warning('worker pid %s did not stop in time: killing it', worker.pid)
                worker.process.kill()
                worker.deadline = 0.0
        for worker in list(self._incoming.values()):
            if not worker.serving and now >= worker.started + _START_TIMEOUT:
                self._incoming_failed(worker, f'worker {worker.slot} (pid {worker.pid}) did '
                                      f'not start within {_START_TIMEOUT:g} s')
        if self.options.max_worker_memory and now >= self._next_memory_check:
            self._next_memory_check = now + _MEMORY_INTERVAL
            self._check_memory()

    def _message(self, worker: WorkerProcess) -> None:
        data = worker.link.receive()
        if not data:
            return  # gone: its exit is handled through its sentinel
        for message in (data[i:i + 1] for i in range(len(data))):
            if message == messages.SERVING:
                worker.serving = True
                self._started.add(worker.slot)
                if self._incoming.get(worker.slot) is worker:
                    self._incoming_serving()
            elif message == messages.RECYCLE and self._current.get(worker.slot) is worker:
                self._ask_replacement(worker, 'max_requests')

    def _exited(self, worker: WorkerProcess) -> None:
        self._message(worker)  # what it said before it exited (it may have been serving)
        worker.process.join()
        worker.link.close()
        if self._figures is not None:
            self._figures.archive(worker.pid)
        slot = worker.slot
        if worker in self._retiring:
            self._retiring.remove(worker)
            logger.debug('worker %d (pid %d) stopped', slot, worker.pid)
            return
        if self._incoming.get(slot) is worker:
            del self._incoming[slot]
            self._incoming_failed(worker, f'worker {slot} (pid {worker.pid}) exited with code '
                                  f'{worker.process.exitcode} before serving')
            return
        if self._current.get(slot) is not worker:
            return
        del self._current[slot]
        if not worker.serving and slot not in self._started:
            # A worker that cannot start the first time (an import, a hook or the event
            # loop failing) will not start the next time either: stop, as one worker
            # would, rather than repeat its traceback forever.
            self._failure = (f'worker {slot} (pid {worker.pid}) failed to start '
                             f'(exit code {worker.process.exitcode}): stopping; its error '
                             'is logged above')
            logger.error('%s', self._failure)
            self._stopping = True
            return
        logger.warning('worker %d (pid %s) exited with code %s; starting a new one',
                       slot, worker.pid, worker.process.exitcode)
        self._count_restart('exited')
        # Its sockets go with it: the kernel must stop queueing connections for a worker that
        # is not there. Its successor listens on new ones.
        self._close_slot_sockets(slot)
        incoming = self._incoming.pop(slot, None)
        if incoming is not None:
            self._current[slot] = incoming  # its replacement was starting already
            return
        if time.monotonic() - worker.started < _MIN_UPTIME:
            self._respawn_at[slot] = time.monotonic() + _RESPAWN_DELAY
        else:
            self._current[slot] = self._spawn(slot)
        self._publish_figures()

    # -- replacing workers ----------------------------------------------------------------------

    def _reload(self) -> None:
        logger.info('received SIGHUP: reloading')
        for worker in self._current.values():
            worker.link.send(messages.DRAIN)  # readiness answers 503 from now on
        target = self.target
        if self.reimport is not None:
            try:
                target = self.reimport()
            except (Exception, SystemExit):
                logger.exception('reload failed: the application cannot be imported; the '
                                 'workers go on serving the code they have')
                self._undrain()
                return
        self.target = target
        self._incoming_reason = 'reload'
        for slot in list(self._current):
            self._incoming[slot] = self._spawn(slot, target)

    def _ask_replacement(self, worker: WorkerProcess, reason: str) -> None:
        if any(slot == worker.slot for slot, _, _ in self._recycling):
            return
        self._recycling.append((worker.slot, worker.pid, reason))

    def _next_replacement(self) -> None:
        """Start the replacement of the next worker that asked for one: one at a time."""
        while self._recycling and not self._incoming and not self._stopping:
            slot, pid, reason = self._recycling.pop(0)
            worker = self._current.get(slot)
            if worker is None or worker.pid != pid:
                continue  # replaced meanwhile
            worker.link.send(messages.DRAIN)
            self._incoming_reason = reason
            self._incoming[slot] = self._spawn(slot)

    def _incoming_serving(self) -> None:
        """A new worker serves: once all of them do, the old ones stop."""
        if not all(worker.serving for worker in self._incoming.values()):
            return
        incoming, self._incoming = self._incoming, {}
        reason = self._incoming_reason
        for slot, worker in incoming.items():
            old = self._current.get(slot)
            self._current[slot] = worker
            if old is not None:
                self._retire(old)
            self._count_restart(reason)
            logger.info('worker %d: pid %d replaces pid %s (%s)', slot, worker.pid,
                        old.pid if old is not None else '-', reason)
        if reason == 'reload':
            logger.info('reloaded: %d new workers serve', len(incoming))
        self._publish_figures()

    def _incoming_failed(self, worker: WorkerProcess, why: str) -> None:
        """A new worker failed to start: the old ones go on serving."""
        reason = self._incoming_reason
        failed = [worker] + [w for w in self._incoming.values() if w is not worker]
        self._incoming = {}
        for each in failed:
            if each.process.is_alive():
                self._retire(each)
        if reason == 'reload':
            logger.error('reload failed: %s; the workers go on serving the code they have',
                         why)
        else:
            logger.error('replacing a worker (%s) failed: %s; it goes on serving', reason, why)
        self._undrain()

    def _undrain(self) -> None:
        for worker in self._current.values():
            worker.link.send(messages.UNDRAIN)

    def _retire(self, worker: WorkerProcess) -> None:
        worker.retiring = True
        worker.link.send(messages.STOP)
        worker.deadline = time.monotonic() + self.options.graceful_shutdown_timeout + 5
        self._retiring.append(worker)

    def _check_memory(self) -> None:
        limit = self.options.max_worker_memory
        for worker in self._current.values():
            if not worker.serving:
                continue
            rss = resident_memory(worker.pid)
            if rss is not None and rss > limit:
                if not any(slot == worker.slot for slot, _, _ in self._recycling):
                    logger.info('worker %d (pid %d) uses %d MiB, more than max_worker_memory '
                                '(%d MiB): replacing it', worker.slot, worker.pid, rss >> 20,
                                limit >> 20)
                self._ask_replacement(worker, 'max_worker_memory')

    # -- figures --------------------------------------------------------------------------------

    def _count_restart(self, reason: str) -> None:
        self._restarts[reason] = self._restarts.get(reason, 0) + 1

    def _publish_figures(self) -> None:
        if self._figures is None:
            return
        figures = Figures()
        figures.gauge('workers', len(self._current))
        for reason, count in self._restarts.items():
            figures.count('worker_restarts', count, (('reason', reason),))
        self._figures.supervisor_figures(figures)

    # -- signals and stopping -------------------------------------------------------------------

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
            if signum != signal.SIGHUP:
                remember_signal(signum, frame)
            return
        if signum == signal.SIGHUP:
            if not self._stopping:
                self._hangups += 1
        else:
            self._signals += 1
            if not self._stopping:
                logger.info('received %s: stopping the workers', signal.Signals(signum).name)
            elif self._signals > 1:
                logger.info('received %s again: stopping the workers now',
                            signal.Signals(signum).name)
            self._stopping = True
        if self._wakeup is not None:
            try:
                os.write(self._wakeup[1], b'\0')
            except OSError:  # the pipe is full: a wakeup is pending already
                pass

    def _parent_order(self) -> None:
        assert self.parent is not None
        data = self.parent.receive()
        if data is None or messages.STOP in data or messages.STOP_NOW in data:
            if not self._stopping:
                logger.info('told to stop: stopping the workers')
            self._stopping = True
            if data is None or messages.STOP_NOW in data:
                self._signals = max(self._signals, 2)

    def _stop_all(self) -> None:
        self._stopping = True
        # New connections are refused once the workers close their copies of the sockets.
        for slot in list(self._slot_sockets):
            self._close_slot_sockets(slot)
        workers = self._all()
        for worker in workers:
            if not worker.retiring:
                worker.retiring = True
                worker.link.send(messages.STOP)
        deadline = time.monotonic() + self.options.graceful_shutdown_timeout + 5
        told_now = False
        alive = [worker for worker in workers if worker.process.is_alive()]
        while alive:
            if self._signals > 1 and not told_now:
                told_now = True
                for worker in alive:
                    worker.link.send(messages.STOP_NOW)
            waiting: list[Any] = [worker.process.sentinel for worker in alive]
            if self._wakeup is not None:
                waiting.append(self._wakeup_fd())
            if self.parent is not None:
                waiting.append(self.parent.sock)
            wait(waiting, timeout=max(0.0, min(1.0, deadline - time.monotonic())))
            if self._wakeup is not None:
                self._drain_wakeup()
            if self.parent is not None and not told_now:
                data = self.parent.receive()
                if data is None or messages.STOP_NOW in (data or b''):
                    self._signals = max(self._signals, 2)
            if time.monotonic() >= deadline:
                for worker in alive:
                    if worker.process.is_alive():
                        logger.warning('worker pid %s did not stop in time: killing it',
                                       worker.pid)
                        worker.process.kill()
                deadline = float('inf')
            alive = [worker for worker in alive if worker.process.is_alive()]
        for worker in workers:
            worker.process.join()
            worker.link.close()

    def _worker_main(self, slot: int, target: WorkerTarget, link: Link,
                     sockets: list[socket.socket], supervisor_end: Link) -> None:
        """The body of a worker process (forked): serve on its slot's sockets."""
        # The parent's handlers would only set its flag: a worker stops through its event loop,
        # and a signal that comes before the loop runs is remembered until then. SIGHUP is the
        # supervisor's: sent to the process group, it must not stop the workers.
        signal.signal(signal.SIGINT, remember_signal)
        signal.signal(signal.SIGTERM, remember_signal)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        for sock in self._reserved:
            sock.close()
        for other, other_sockets in self._slot_sockets.items():
            if other != slot:
                for sock in other_sockets:
                    sock.close()
        # The supervisor's ends of the other workers' lines: a worker must see end of file
        # on its own line when the supervisor is gone, whoever else still runs.
        for worker in self._all():
            worker.link.close()
        supervisor_end.close()
        if self.parent is not None:
            self.parent.close()
        if self._wakeup is not None:
            for fd in self._wakeup:
                os.close(fd)
            self._wakeup = None
        try:
            target([*sockets, *self._shared], link)
        except KeyboardInterrupt:
            pass
        finally:
            for sock in sockets:
                sock.close()


def resident_memory(pid: int) -> Optional[int]:
    """The resident memory of process ``pid``, in bytes (Linux), or ``None``."""
    try:
        with open(f'/proc/{pid}/statm', 'rb') as file:
            return int(file.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError, IndexError):
        return None


def _unlisten(sock: socket.socket, host: str, port: int) -> socket.socket:
    """Replace a listening socket by a bound, non-listening one on the same address."""
    family = sock.family
    sock.close()
    reserved = socket.socket(family, socket.SOCK_STREAM)
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    reserved.bind((host, port))
    return reserved
