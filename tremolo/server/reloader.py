"""Development reloading: run the server in a child process and restart it on changes.

The parent re-runs the same command (``sys.argv``) in a child with ``TREMOLO_RELOADER_CHILD``
set, polls the modification times of the Python files the child could have imported (every
``*.py`` under the working directory and the program's directory), and restarts the child when
one changes.

The parent tells the child to stop through a `tremolo.server.link.Link`, never with a signal:
Ctrl-C in a terminal reaches the child too (it is in the same process group), and the child
must count that as one stop, not two. The child also stops when the parent is gone.

Port 0 is resolved once, by the parent: it reserves a free port (a bound socket that does not
listen, with ``SO_REUSEPORT``) and every child serves that port, so that a restart does not
move the server to a new port.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from . import link as messages
from .link import RELOADER_LINK_ENV, Link
from .sockets import addresses, parse_address

if TYPE_CHECKING:
    from ..options import Options

logger = logging.getLogger('tremolo')

ENV_FLAG = 'TREMOLO_RELOADER_CHILD'
#: The ports reserved by the parent for port 0, as JSON: ``{host: port}``.
PORTS_ENV = 'TREMOLO_RELOADER_PORTS'
_SKIP_DIRS = {'.git', '.venv', 'venv', '__pycache__', 'node_modules', 'build', 'dist', 'site'}


def is_reloader_child() -> bool:
    return os.environ.get(ENV_FLAG) == '1'


def child_command() -> list[str]:
    """The command that started this process, runnable again."""
    main = sys.modules.get('__main__')
    spec = getattr(main, '__spec__', None)
    if spec is not None and spec.name:
        name = spec.name[:-9] if spec.name.endswith('.__main__') else spec.name
        return [sys.executable, '-m', name, *sys.argv[1:]]
    return [sys.executable, *sys.argv]


def watched_roots() -> list[Path]:
    roots = {Path.cwd().resolve()}
    if sys.argv and sys.argv[0] and os.path.exists(sys.argv[0]):
        roots.add(Path(sys.argv[0]).resolve().parent)
    return sorted(roots)


def snapshot(roots: list[Path]) -> dict[str, float]:
    """Modification times of every ``*.py`` file under ``roots``."""
    times: dict[str, float] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS and not d.startswith('.')]
            for filename in filenames:
                if filename.endswith('.py'):
                    path = os.path.join(dirpath, filename)
                    try:
                        times[path] = os.stat(path).st_mtime
                    except OSError:
                        continue
    return times


def reserve_ports(options: Options) -> tuple[list[socket.socket], dict[str, int]]:
    """Reserve a port for each address of ``options`` on port 0: ``(sockets, {host: port})``."""
    sockets: list[socket.socket] = []
    ports: dict[str, int] = {}
    for address in addresses(options):
        if isinstance(address, str) or address[1] != 0:
            continue
        host = address[0]
        sock = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, 0))
        sockets.append(sock)
        ports[host] = sock.getsockname()[1]
    return sockets, ports


def reserved_ports(options: Options) -> tuple[Options, bool]:
    """In a child: ``options`` with port 0 replaced by the ports the parent reserved, and
    whether there were any (the child must then bind with ``SO_REUSEPORT``)."""
    ports = json.loads(os.environ.get(PORTS_ENV) or '{}')
    if not ports:
        return options, False
    listen = []
    for value in options.listen:
        address = parse_address(value, options.host)
        if isinstance(address, tuple) and address[1] == 0 and address[0] in ports:
            host = address[0]
            value = f'[{host}]:{ports[host]}' if ':' in host else f'{host}:{ports[host]}'
        listen.append(value)
    port = options.port or ports.get(options.host, 0)
    return dataclasses.replace(options, port=port, listen=listen), True


def run_with_reloader(options: Optional[Options] = None, interval: float = 1.0) -> None:
    """Run the program in a child process, restarting it when a source file changes."""
    roots = watched_roots()
    environ = {**os.environ, ENV_FLAG: '1'}
    reserved: list[socket.socket] = []
    if options is not None and hasattr(socket, 'SO_REUSEPORT'):
        reserved, ports = reserve_ports(options)
        environ[PORTS_ENV] = json.dumps(ports)
    signals = 0

    def on_signal(signum: int, frame: object) -> None:
        nonlocal signals
        signals += 1

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not signals:
            before = snapshot(roots)
            mine, theirs = Link.pair()
            environ[RELOADER_LINK_ENV] = str(theirs.fileno())
            os.set_inheritable(theirs.fileno(), True)
            child = subprocess.Popen(child_command(), env=environ, pass_fds=[theirs.fileno()])
            theirs.close()
            logger.info('reloader watching %s', ', '.join(map(str, roots)))
            changed = None
            while not signals and changed is None:
                # A child that exited by itself (an error at import?) is restarted at the next
                # change, once the error is fixed.
                time.sleep(interval)
                after = snapshot(roots)
                changed = next((p for p in after if after[p] != before.get(p)), None) or next(
                    (p for p in before if p not in after), None
                )
            _stop(child, mine, lambda: signals > 1,
                  (options.graceful_shutdown_timeout if options is not None else 30.0) + 5)
            if changed is not None and not signals:
                logger.info('%s changed: restarting', changed)
    finally:
        for signum, handler in previous.items():
            # After a stop signal, a further one must not kill the process as it exits.
            signal.signal(signum, signal.SIG_IGN if signals else handler)
        for sock in reserved:
            sock.close()


def _stop(child: subprocess.Popen[bytes], link: Link, now: Callable[[], bool],
          timeout: float) -> None:
    """Stop the child gracefully (at once when ``now()`` turns true), killing it if it
    takes longer than ``timeout`` seconds."""
    link.send(messages.STOP)
    told_now = False
    deadline = time.monotonic() + timeout
    while child.poll() is None:
        if now() and not told_now:
            told_now = True
            link.send(messages.STOP_NOW)
        if time.monotonic() >= deadline:
            child.kill()
            break
        try:
            child.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            pass
    child.wait()
    link.close()
