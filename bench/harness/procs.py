"""Server processes: free ports, start pinned to a core, wait for the port, kill the whole group,
and read the memory of a process tree from /proc."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO, Optional


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the server binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def pinned(argv: list[str], cpu: Optional[int]) -> list[str]:
    """``argv`` run under ``taskset -c CPU`` (unchanged when ``cpu`` is None)."""
    return argv if cpu is None else ['taskset', '-c', str(cpu), *argv]


class Server:
    """A running server: its own process group (killed whole), its log file and its port."""

    def __init__(self, name: str, argv: list[str], cwd: Path, port: int, log_path: Path,
                 env: Optional[dict[str, str]] = None) -> None:
        self.name = name
        self.port = port
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = open(log_path, 'ab')
        self._log.write(f'$ {" ".join(argv)}\n'.encode())
        self._log.flush()
        self.process = subprocess.Popen(
            argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            env={**os.environ, 'PYTHONUNBUFFERED': '1', **(env or {})},
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float) -> None:
        """Return once the port accepts connections.

        Raises:
            RuntimeError: The process exited, or the port stayed closed for ``timeout`` s.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f'exited with status {self.process.returncode}'
                                   f' before listening (see {self.log_path})')
            try:
                with socket.create_connection(('127.0.0.1', self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f'port {self.port} still closed after {timeout:.0f} s')

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors='replace')
        except OSError:
            return ''
        return '\n'.join(text.splitlines()[-lines:])

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds."""
        if self.alive():
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(self.process.pid, signal.SIGKILL)  # stray workers of a dead leader too
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (read from /proc/PID/task/*/children)."""
    result, pending = [], [pid]
    while pending:
        current = pending.pop()
        result.append(current)
        for task in Path(f'/proc/{current}/task').glob('*'):
            try:
                pending.extend(int(child) for child in (task / 'children').read_text().split())
            except (OSError, ValueError):
                continue
    return result


def socket_count(pid: int) -> int:
    """How many sockets the process holds open."""
    count = 0
    try:
        for fd in Path(f'/proc/{pid}/fd').iterdir():
            try:
                if os.readlink(fd).startswith('socket:'):
                    count += 1
            except OSError:
                continue
    except OSError:
        return 0
    return count


def worker_pid(pid: int) -> int:
    """The process of the tree that serves: the one holding the most sockets (a supervisor
    forking one worker holds just the listening socket)."""
    tree = process_tree(pid)
    return max(tree, key=lambda p: (socket_count(p), p == pid))


def rss_kib(pid: int) -> Optional[int]:
    """Resident set size of ``pid`` in KiB (VmRSS of /proc/PID/status)."""
    try:
        for line in Path(f'/proc/{pid}/status').read_text().splitlines():
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None
