"""Real server processes for the running tests: start, watch the log, request, stop, clean up.

Every process is started in a new session (its own process group) with its stderr and stdout
in files (a pipe nobody reads would block a chatty server), and :class:`Processes` kills every
group it started when the test ends, whatever happened.
"""

from __future__ import annotations

import asyncio
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional, Union

import aiohttp
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
#: ``serving on http://127.0.0.1:8000``, ``serving on http://[::1]:8000``, ``serving on unix:/p``
SERVING = re.compile(r'serving on (?:(https?)://(\[[^\]]*\]|[^\s:]+):(\d+)|unix:(\S+))')
STARTUP_TIMEOUT = 15.0
#: uvloop is a CPython extension module: it does not build on PyPy, and the ``test`` extras
#: install it only where ``platform_python_implementation == 'CPython'``.
needs_uvloop = pytest.mark.skipif(
    platform.python_implementation() != 'CPython',
    reason=f'uvloop does not support {platform.python_implementation()} (CPython-only extension)',
)


def free_port(host: str = '127.0.0.1') -> int:
    """A TCP port that was free a moment ago.

    There is a small race: another process may take the port between this socket's close and
    the server's bind. Tests use it only where the port must be known before the server starts
    (a reloaded server must come back on the same port; the seed examples hard-code theirs);
    elsewhere the server is given port 0 and its address is read from its log.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def free_ports(count: int, host: str = '127.0.0.1') -> list[int]:
    """``count`` distinct free ports (see `free_port`): the sockets stay bound until all are
    chosen, so the kernel cannot hand out the same port twice."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a server process: the repository importable (``tests.apps``)."""
    env = {k: v for k, v in os.environ.items() if k != 'TREMOLO_RELOADER_CHILD'}
    path = env.get('PYTHONPATH')
    env['PYTHONPATH'] = str(REPO_ROOT) + (os.pathsep + path if path else '')
    env['PYTHONUNBUFFERED'] = '1'
    env.update(extra)
    return env


class ServerProcess:
    """One started process, its log files, and waits on what it logs."""

    def __init__(self, args: list[str], *, cwd: Union[str, Path], env: dict[str, str],
                 logs: Path) -> None:
        self.args = args
        self.stderr_path = logs.with_suffix('.err')
        self.stdout_path = logs.with_suffix('.out')
        with open(self.stderr_path, 'wb') as err, open(self.stdout_path, 'wb') as out:
            self.process = subprocess.Popen(
                args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                start_new_session=True,
            )
        self.pid = self.process.pid

    # -- what it said ---------------------------------------------------------------------------

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors='replace')

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors='replace')

    def describe(self) -> str:
        return (f'command: {self.args}\nexit code: {self.process.poll()}\n'
                f'--- stderr ---\n{self.stderr}\n--- stdout ---\n{self.stdout}')

    def addresses(self) -> list[Union[tuple[str, int], str]]:
        """Every address logged as served so far (repeats included: one per worker)."""
        found: list[Union[tuple[str, int], str]] = []
        for match in SERVING.finditer(self.stderr):
            if match.group(4):
                found.append(match.group(4))
            else:
                found.append((match.group(2).strip('[]'), int(match.group(3))))
        return found

    # -- waiting --------------------------------------------------------------------------------

    async def wait_for(self, pattern: str, count: int = 1,
                       timeout: float = STARTUP_TIMEOUT) -> list[re.Match[str]]:
        """Wait until ``pattern`` (a regex) matched ``count`` times in stderr."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            matches = list(regex.finditer(self.stderr))
            if len(matches) >= count:
                return matches
            if self.process.poll() is not None:
                # One last look: it may have logged just before exiting.
                matches = list(regex.finditer(self.stderr))
                if len(matches) >= count:
                    return matches
                raise AssertionError(f'exited before logging {pattern!r} x{count}\n'
                                     f'{self.describe()}')
            if time.monotonic() > deadline:
                raise AssertionError(f'no {pattern!r} x{count} within {timeout} s\n'
                                     f'{self.describe()}')
            await asyncio.sleep(0.05)

    async def serving(self, count: int = 1) -> list[Union[tuple[str, int], str]]:
        """Wait for ``count`` 'serving on' lines and return the addresses."""
        await self.wait_for(SERVING.pattern, count)
        return self.addresses()

    async def url(self, path: str = '/') -> str:
        """``http://host:port{path}`` of the first TCP address served."""
        for address in await self.serving():
            if isinstance(address, tuple):
                host, port = address
                host = '127.0.0.1' if host in ('0.0.0.0', '') else host
                return f'http://{host}:{port}{path}'
        raise AssertionError(f'no TCP address served\n{self.describe()}')

    async def wait_exit(self, timeout: float = 15.0) -> int:
        """Wait for the process to exit by itself and return its exit code."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f'still running after {timeout} s\n{self.describe()}')
            await asyncio.sleep(0.05)
        return self.process.returncode

    def send(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def group_alive(self) -> bool:
        """Whether any process of its group (the server, its workers) is still running."""
        return _group_has_live_members(self.pid)

    def kill_group(self) -> None:
        """SIGKILL the whole process group and reap the leader."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - unkillable
            pass


def _group_has_live_members(pgid: int) -> bool:
    """Whether a process other than a zombie belongs to process group ``pgid`` (Linux)."""
    proc = Path('/proc')
    if not proc.is_dir():  # pragma: no cover - not Linux: trust killpg
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / 'stat').read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses.
        fields = stat[stat.rfind(')') + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != 'Z':
            return True
    return False


def children_of(pid: int) -> list[int]:
    """The pids of the live child processes of ``pid`` (Linux ``/proc``)."""
    result = []
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / 'stat').read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(')') + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid and fields[0] != 'Z':
            result.append(int(entry.name))
    return sorted(result)


class Processes:
    """Starts server processes for one test and kills every one of them at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[ServerProcess] = []

    def start(self, args: list[str], *, cwd: Union[str, Path, None] = None,
              env: Optional[dict[str, str]] = None, name: str = 'server') -> ServerProcess:
        logs = self.tmp_path / f'{name}-{len(self.started)}'
        server = ServerProcess(args, cwd=cwd or REPO_ROOT, env=env or child_env(), logs=logs)
        self.started.append(server)
        return server

    def cli(self, *args: str, **kwargs: Any) -> ServerProcess:
        """``python -m tremolo ARGS``."""
        return self.start([PYTHON, '-m', 'tremolo', *args], **kwargs)

    def script(self, path: Union[str, Path], *args: str, **kwargs: Any) -> ServerProcess:
        """``python PATH ARGS``."""
        return self.start([PYTHON, str(path), *args], **kwargs)

    def close(self) -> None:
        for server in self.started:
            server.kill_group()

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


# -- HTTP ---------------------------------------------------------------------------------------

async def fetch(url: str, *, unix: Optional[str] = None, timeout: float = 10.0,
                method: str = 'GET') -> tuple[int, str, dict[str, str]]:
    """One request over a new connection: status, text and headers."""
    connector: aiohttp.BaseConnector
    if unix is not None:
        connector = aiohttp.UnixConnector(path=unix, force_close=True)
    else:
        connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)
    ) as session:
        async with session.request(method, url) as response:
            return response.status, await response.text(), dict(response.headers)


async def fetch_text(url: str, **kwargs: Any) -> str:
    status, text, _ = await fetch(url, **kwargs)
    assert status == 200, (status, text)
    return text


async def refused(url: str, timeout: float = 10.0) -> bool:
    """Wait until connecting to ``url`` is refused; ``False`` if it still connects."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            await fetch(url, timeout=2.0)
        except aiohttp.ClientConnectorError:
            return True
        except (aiohttp.ClientError, asyncio.TimeoutError):
            pass  # accepted, then closed: the server is still stopping
        await asyncio.sleep(0.05)
    return False


async def trickle(host: str, port: int, head: bytes) -> bytes:
    """Send ``head`` a byte a second (a slowloris client): what the server answered once it
    cut the connection off, or ``b'not cut off'`` if it never did."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for byte in head:
            writer.write(bytes([byte]))
            try:
                return await asyncio.wait_for(reader.read(), 1.0)
            except asyncio.TimeoutError:
                continue
        return b'not cut off'
    finally:
        writer.close()
