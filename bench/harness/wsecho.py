"""The WebSocket echo measurement: one connection, a 16-byte text message sent, its echo
awaited, again and again; round trips per second and their latency.

The client is a blocking socket loop in a process of its own, pinned to the client core like
wrk: a precomputed masked frame out, a two-byte header and the payload back, so that it costs
far less than any server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from typing import Any, Optional

from .procs import pinned

SIZE = 16
HANDSHAKE = (b'GET %s HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
             b'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
MASK = b'\x01\x02\x03\x04'
PAYLOAD = b'x' * SIZE
FRAME = bytes((0x81, 0x80 | SIZE)) + MASK + bytes(
    byte ^ MASK[index % 4] for index, byte in enumerate(PAYLOAD))
ECHO = bytes((0x81, SIZE)) + PAYLOAD
CLOSE = bytes((0x88, 0x82)) + MASK + bytes((0x03 ^ 1, 0xE8 ^ 2))


def connect(port: int, path: str, timeout: float = 10.0) -> socket.socket:
    """An open WebSocket (the handshake answered 101, nothing else received yet).

    Raises:
        OSError: No connection, or another answer than 101.
    """
    sock = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(HANDSHAKE % path.encode())
    head = b''
    while b'\r\n\r\n' not in head:
        data = sock.recv(4096)
        if not data:
            raise OSError('the server closed the connection during the handshake')
        head += data
    if not head.startswith(b'HTTP/1.1 101'):
        sock.close()
        status = head.split(b'\r\n', 1)[0]
        raise OSError(f'handshake answered {status!r}')
    return sock


def round_trip(sock: socket.socket) -> None:
    sock.sendall(FRAME)
    data = sock.recv(len(ECHO))
    while len(data) < len(ECHO):
        more = sock.recv(len(ECHO) - len(data))
        if not more:
            raise OSError('the server closed the connection')
        data += more
    if data != ECHO:
        raise OSError(f'unexpected echo {data!r}')


def validate_ws(port: int, path: str) -> Optional[str]:
    """None when the endpoint echoes a message, else what is wrong."""
    try:
        sock = connect(port, path)
        try:
            round_trip(sock)
            round_trip(sock)
            sock.sendall(CLOSE)
        finally:
            sock.close()
    except OSError as exc:
        return f'WebSocket {path}: {exc}'
    return None


def client(port: int, path: str, seconds: float) -> dict[str, Any]:
    """Echo round trips for ``seconds`` (run in the client process)."""
    sock = connect(port, path)
    latencies = []
    errors = 0
    clock = time.perf_counter
    start = clock()
    end = start + seconds
    try:
        while True:
            before = clock()
            round_trip(sock)
            after = clock()
            latencies.append(after - before)
            if after >= end:
                break
        sock.sendall(CLOSE)
    except OSError:
        errors += 1
    finally:
        sock.close()
    elapsed = clock() - start
    latencies.sort()

    def percentile(fraction: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * fraction))] * 1000

    count = len(latencies)
    return {
        'rps': count / elapsed, 'requests': count, 'p50_ms': percentile(0.5),
        'p90_ms': percentile(0.9), 'p99_ms': percentile(0.99),
        'mib_per_s': count * 2 * (SIZE + 6) / elapsed / 2**20,
        'socket_errors': errors, 'non_2xx': 0, 'errors': errors,
    }


def run_ws_echo(port: int, path: str, seconds: float, cpu: Optional[int]) -> dict[str, Any]:
    """Measure in a client process pinned to ``cpu``.

    Raises:
        RuntimeError: The client failed or hung.
    """
    argv = pinned([sys.executable, '-m', 'harness.wsecho', str(port), path, str(seconds)], cpu)
    try:
        done = subprocess.run(argv, cwd=os.path.dirname(os.path.dirname(__file__)),
                              capture_output=True, text=True, timeout=seconds + 60)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f'the WebSocket client did not finish within {seconds + 60:.0f} s'
                           ) from exc
    if done.returncode != 0:
        raise RuntimeError(f'the WebSocket client failed: {done.stderr.strip()[-300:]}')
    sample: dict[str, Any] = json.loads(done.stdout)
    return sample


if __name__ == '__main__':
    print(json.dumps(client(int(sys.argv[1]), sys.argv[2], float(sys.argv[3]))))
