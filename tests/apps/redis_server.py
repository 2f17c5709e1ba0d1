"""Real ``redis-server`` processes for the tests: one per test, on a UNIX socket in the test's
temporary directory (no port to race for), stopped and started again at will.

``make test`` installs Debian's ``redis-server`` when it is missing and the tests run as root;
elsewhere the tests that need it are skipped, with the reason.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator, Optional

import pytest

REDIS_SERVER = shutil.which('redis-server') or (
    '/usr/bin/redis-server' if os.path.exists('/usr/bin/redis-server') else None)

needs_redis = pytest.mark.skipif(
    REDIS_SERVER is None,
    reason="redis-server is not installed (make test installs Debian's redis-server as root)",
)


class RedisServer:
    """A ``redis-server`` on a UNIX socket (and, if asked, a TCP port), without persistence."""

    def __init__(self, directory: Path, port: int = 0) -> None:
        assert REDIS_SERVER is not None
        self.directory = directory
        self.socket = str(directory / 'redis.sock')
        self.port = port
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.log = directory / 'redis.log'

    @property
    def url(self) -> str:
        """The ``unix://`` URL of the server."""
        return f'unix://{self.socket}'

    @property
    def tcp_url(self) -> str:
        assert self.port, 'started without a TCP port'
        return f'redis://127.0.0.1:{self.port}/0'

    def start(self) -> None:
        """Start it and wait until it answers."""
        assert self.process is None or self.process.poll() is not None
        args = [REDIS_SERVER, '--port', str(self.port), '--bind', '127.0.0.1',
                '--unixsocket', self.socket, '--unixsocketperm', '700', '--save', '',
                '--appendonly', 'no', '--dir', str(self.directory), '--logfile', str(self.log)]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        deadline = time.monotonic() + 10
        while not self.ping():
            if self.process.poll() is not None:
                raise AssertionError(f'redis-server exited: {self.log.read_text()}')
            if time.monotonic() > deadline:
                raise AssertionError('redis-server did not answer within 10 s')
            time.sleep(0.02)

    def ping(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(1)
                sock.connect(self.socket)
                sock.sendall(b'PING\r\n')
                return sock.recv(16).startswith(b'+PONG')
        except OSError:
            return False

    def stop(self) -> None:
        """Kill it at once (as a crash or a lost host would)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        try:
            os.unlink(self.socket)
        except FileNotFoundError:
            pass

    def pause(self) -> None:
        """Freeze it (``SIGSTOP``): it accepts connections but answers nothing, as a server
        that hangs or a network that drops everything would."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Let a frozen server go on (``SIGCONT``)."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGCONT)

    def info(self, section: str, field: str) -> str:
        """One field of ``INFO section``."""
        for line in self.command('INFO', section).decode().splitlines():
            if line.startswith(field + ':'):
                return line.split(':', 1)[1].strip()
        raise KeyError(field)

    def command(self, *args: str) -> bytes:
        """One command over a new connection, in the inline protocol: the raw answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(self.socket)
            sock.sendall(' '.join(args).encode() + b'\r\n')
            return sock.recv(65536)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A running ``redis-server`` of the test's own (skipped when there is none)."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (make test installs Debian's redis-server "
                    'as root)')
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
