"""WebSocket echo round trips per second: Tremolo against aiohttp's own server, in one run.

One client sends a small text message, waits for the echo, and repeats, for a fixed time.
The client is a minimal blocking socket loop (precomputed masked frame, a two-byte header to
read back) so that it costs far less than either server; the server and the client are
pinned to different cores with taskset when it is available. The servers are measured
alternately, several rounds each, and the medians compared: the machine may be shared.
Besides the rate, the server's own CPU time per round trip (user + system, read from /proc)
is reported: it depends much less on what else runs on the machine.

    python bench/ws_echo.py [--seconds 10] [--rounds 3] [--size 16]

Run it with an interpreter that has both tremolo and aiohttp installed (the project's
``.venv``, for example ``make -C bench ws-echo``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

SERVERS = ('tremolo', 'aiohttp')


def serve_tremolo(port: int) -> None:
    from tremolo import Tremolo

    app = Tremolo()

    @app.route('/ws')
    async def echo(websocket):
        async for message in websocket:
            await websocket.send(message)

    app.run('127.0.0.1', port, access_log=False, log_level='warning')


def serve_aiohttp(port: int) -> None:
    from aiohttp import WSMsgType, web

    async def echo(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_str(message.data)
            elif message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data)
        return ws

    app = web.Application()
    app.router.add_get('/ws', echo)
    web.run_app(app, host='127.0.0.1', port=port, print=None, access_log=None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def connect(port: int, deadline: float) -> socket.socket:
    while True:
        try:
            sock = socket.create_connection(('127.0.0.1', port))
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(b'GET /ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\n'
                 b'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
                 b'Sec-WebSocket-Version: 13\r\n\r\n')
    head = b''
    while b'\r\n\r\n' not in head:
        head += sock.recv(4096)
    assert head.startswith(b'HTTP/1.1 101'), head[:100]
    assert head.endswith(b'\r\n\r\n'), 'frames before the first message'
    return sock


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 where /proc is missing)."""
    try:
        with open(f'/proc/{pid}/stat') as stat:
            fields = stat.read().rsplit(')', 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def client(port: int, seconds: float, size: int, pid: int = 0) -> tuple[int, float, float]:
    """Echo round trips for ``seconds``: (count, elapsed, server CPU seconds)."""
    sock = connect(port, time.monotonic() + 10)
    payload = b'x' * size
    mask = b'\x01\x02\x03\x04'
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    frame = bytes((0x81, 0x80 | size)) + mask + masked
    expected = bytes((0x81, size)) + payload
    want = len(expected)
    recv, send = sock.recv, sock.sendall
    for _ in range(200):  # warm up
        send(frame)
        data = recv(want)
        while len(data) < want:
            data += recv(want - len(data))
    count = 0
    cpu = cpu_seconds(pid)
    start = time.perf_counter()
    end = start + seconds
    while True:
        for _ in range(100):
            send(frame)
            data = recv(want)
            while len(data) < want:
                data += recv(want - len(data))
            if data != expected:
                raise AssertionError(f'unexpected echo {data!r}')
        count += 100
        now = time.perf_counter()
        if now >= end:
            break
    cpu = cpu_seconds(pid) - cpu
    sock.sendall(bytes((0x88, 0x82)) + mask + bytes((0x03 ^ 1, 0xE8 ^ 2)))
    sock.close()
    return count, now - start, cpu


def pinned(core: int) -> list[str]:
    if shutil.which('taskset') and (os.cpu_count() or 1) > 1:
        return ['taskset', '-c', str(core)]
    return []


def measure(server: str, seconds: float, size: int) -> tuple[float, float]:
    """(round trips per second, server CPU microseconds per round trip)"""
    port = free_port()
    process = subprocess.Popen(
        pinned(0) + [sys.executable, __file__, '--serve', server, '--port', str(port)],
        stdout=subprocess.DEVNULL,
    )
    try:
        if pinned(1):
            os.sched_setaffinity(0, {1})
        count, elapsed, cpu = client(port, seconds, size, process.pid)
    finally:
        process.terminate()
        process.wait(10)
    return count / elapsed, cpu / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=10.0)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--size', type=int, default=16, help='message size (< 126 bytes)')
    parser.add_argument('--serve', choices=SERVERS, help=argparse.SUPPRESS)
    parser.add_argument('--port', type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        (serve_tremolo if args.serve == 'tremolo' else serve_aiohttp)(args.port)
        return
    assert 0 < args.size < 126
    rates: dict[str, list[float]] = {name: [] for name in SERVERS}
    costs: dict[str, list[float]] = {name: [] for name in SERVERS}
    for round_number in range(1, args.rounds + 1):
        for server in SERVERS:  # alternately: drifting load on a shared machine hits both
            rate, cost = measure(server, args.seconds, args.size)
            rates[server].append(rate)
            costs[server].append(cost)
            print(f'round {round_number}  {server:8} {rate:10,.0f} round trips/s  '
                  f'{cost:6.1f} us server CPU per round trip', flush=True)
    rate = {name: statistics.median(values) for name, values in rates.items()}
    cost = {name: statistics.median(values) for name, values in costs.items()}
    print()
    for name in SERVERS:
        print(f'median   {name:8} {rate[name]:10,.0f} round trips/s  '
              f'{cost[name]:6.1f} us server CPU per round trip')
    print(f'ratio    tremolo / aiohttp: {rate["tremolo"] / rate["aiohttp"]:.2f}x the round trips,'
          f' {cost["aiohttp"] / cost["tremolo"]:.2f}x less server CPU per round trip')


if __name__ == '__main__':
    main()
