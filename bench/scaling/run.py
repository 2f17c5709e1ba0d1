"""Scaling out, measured: one budget for several processes (with and without Redis), the cost
of a request-rate check in Redis against one in memory, and broadcast fan-out to WebSocket
subscribers spread over two workers.

    python bench/scaling/run.py [--quick] [--only budget,ratelimit,fanout]

Starts its own ``redis-server`` (on a UNIX socket in a temporary directory) when it is
installed; the Redis rows are left out otherwise. Prints a Markdown report and writes it to
``bench/results/scaling.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import aiohttp

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
RESULTS = HERE.parent / 'results'
MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Process:
    """A server (``app.py``) in a process group of its own."""

    def __init__(self, workers: int = 1, **env: str) -> None:
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        environment = {**os.environ, 'PYTHONPATH': str(HERE), **env}
        self.process = subprocess.Popen(
            [sys.executable, '-m', 'tremolo', 'app:app', '--port', str(self.port),
             '--worker-num', str(workers), '--no-access-log', '--log-level', 'warning'],
            cwd=HERE, env=environment, stdout=subprocess.DEVNULL, start_new_session=True)

    async def wait(self) -> None:
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection('127.0.0.1', self.port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise RuntimeError('the server did not start')

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)


class RedisServer:
    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix='tremolo-bench-redis-')
        self.socket = os.path.join(self.directory, 'redis.sock')
        self.url = f'unix://{self.socket}'
        self.process = subprocess.Popen(
            ['redis-server', '--port', '0', '--unixsocket', self.socket, '--save', '',
             '--appendonly', 'no', '--dir', self.directory],
            stdout=subprocess.DEVNULL, start_new_session=True)
        for _ in range(200):
            if os.path.exists(self.socket):
                return
            time.sleep(0.02)
        raise RuntimeError('redis-server did not start')

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)


async def started(*servers: Process) -> None:
    await asyncio.gather(*(server.wait() for server in servers))
    await asyncio.sleep(0.5)  # every worker of each serving


# -- one budget, two processes ------------------------------------------------------------------

async def timed_stream(url: str, seconds: int) -> float:
    """Bytes per second of one download (from its first byte to its last)."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f'{url}/download/{seconds}') as response:
            size = 0
            first: Optional[float] = None
            async for piece in response.content.iter_any():
                if first is None:
                    first = time.monotonic()
                size += len(piece)
        assert first is not None
        return size / (time.monotonic() - first)


async def budget(redis: Optional[RedisServer], seconds: int) -> list[dict]:
    rate = 4 * MiB
    if redis is None:
        label = 'one server, 2 workers, `scope=\'global\'` (shared memory)'
        servers = [Process(workers=2, RATE=str(rate))]
        urls = [servers[0].url] * 4
    else:
        label = 'two servers ("hosts"), one Redis, `scope=\'global\', store=redis`'
        servers = [Process(RATE=str(rate), REDIS_URL=redis.url) for _ in range(2)]
        urls = [servers[0].url, servers[0].url, servers[1].url, servers[1].url]
    try:
        await started(*servers)
        rates = await asyncio.gather(*(timed_stream(url, seconds) for url in urls))
    finally:
        for server in servers:
            server.stop()
    each = [r / MiB for r in rates]
    worst = max(abs(r - 1.0) for r in each)
    total = sum(each)
    return [{'scenario': label, 'target': '4 × 1.00 MiB/s, sum 4.00',
             'measured': ', '.join(f'{r:.3f}' for r in each) + f' (sum {total:.3f})',
             'error': f'each {worst:+.1%} worst, sum {(total - 4) / 4:+.1%}'}]


# -- request-rate check ---------------------------------------------------------------------------

async def hammer(url: str, seconds: float, concurrency: int = 32) -> float:
    """Requests per second of ``concurrency`` keep-alive clients for ``seconds``."""
    count = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def loop() -> None:
            nonlocal count
            while time.monotonic() < deadline:
                async with session.get(url) as response:
                    await response.read()
                    assert response.status == 200, response.status
                count += 1

        started_at = time.monotonic()
        await asyncio.gather(*(loop() for _ in range(concurrency)))
    return count / (time.monotonic() - started_at)


#: The request-rate limiter's stores and algorithms measured: (LIMITER, ALGORITHM, label).
LIMITERS = [
    ('none', 'gcra', 'no limiter'),
    ('memory', 'gcra', '`RateLimiter`, GCRA, in memory'),
    ('memory', 'sliding-window', '`RateLimiter`, sliding window, in memory'),
    ('redis', 'gcra', '`RateLimiter`, GCRA, in Redis'),
    ('redis', 'sliding-window', '`RateLimiter`, sliding window, in Redis'),
]


async def ratelimit(redis: Optional[RedisServer], seconds: float) -> list[dict]:
    rows = []
    kinds = [kind for kind in LIMITERS if redis is not None or kind[0] != 'redis']
    measured = {}
    for kind in kinds:
        env = {'LIMITER': kind[0], 'ALGORITHM': kind[1]}
        if redis is not None:
            env['REDIS_URL'] = redis.url  # every server alike, whatever counts
        server = Process(**env)
        try:
            await started(server)
            await hammer(server.url + '/', 0.5)  # warm up
            measured[kind] = await hammer(server.url + '/', seconds)
        finally:
            server.stop()
    base = measured[LIMITERS[0]]
    for kind in kinds:
        cost = (1 / measured[kind] - 1 / base) * 1e6
        rows.append({'scenario': f'`GET /`, {kind[2]}',
                     'target': '', 'measured': f'{measured[kind]:,.0f} req/s',
                     'error': 'reference' if kind is LIMITERS[0] else
                     f'{measured[kind] / base:.2f}× ({cost:+.0f} µs per request)'})
    return rows


# -- broadcast fan-out ----------------------------------------------------------------------------

async def fanout(redis: Optional[RedisServer], subscribers: int, messages: int) -> list[dict]:
    env = {'REDIS_URL': redis.url} if redis is not None else {}
    server = Process(workers=2, **env)
    ws_url = server.url.replace('http://', 'ws://') + '/subscribe'
    try:
        await started(server)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            sockets = []
            for _ in range(subscribers):
                ws = await session.ws_connect(ws_url)
                assert (await ws.receive()).data == 'subscribed'
                sockets.append(ws)

            async def receive_all(ws: aiohttp.ClientWebSocketResponse) -> None:
                for _ in range(messages):
                    await ws.receive()

            receiving = asyncio.gather(*(receive_all(ws) for ws in sockets))
            began = time.monotonic()
            for n in range(messages):
                async with session.post(server.url + '/publish', data=f'message {n}') as reply:
                    assert reply.status == 200, (reply.status, await reply.text())
            await asyncio.wait_for(receiving, 600)
            elapsed = time.monotonic() - began
            for ws in sockets:
                await ws.close()
    finally:
        server.stop()
    where = 'Redis pub/sub' if redis is not None else 'between the workers'
    return [{'scenario': f'broadcast to {subscribers:,} WebSocket subscribers on 2 workers, '
                         f'{where}',
             'target': '', 'measured': f'{messages / elapsed:,.0f} messages/s',
             'error': f'{messages * subscribers / elapsed:,.0f} deliveries/s'}]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='short runs (a smoke test)')
    parser.add_argument('--only', default='budget,ratelimit,fanout')
    args = parser.parse_args()
    only = set(args.only.split(','))
    redis = RedisServer() if shutil.which('redis-server') else None
    rows: list[dict] = []
    try:
        for store in (None, redis) if redis is not None else (None,):
            if 'budget' in only:
                rows += await budget(store, 2 if args.quick else 10)
            if 'fanout' in only:
                rows += await fanout(store, 100 if args.quick else 1000,
                                     20 if args.quick else 200)
        if 'ratelimit' in only:
            rows += await ratelimit(redis, 1.0 if args.quick else 10.0)
    finally:
        if redis is not None:
            redis.stop()
    lines = ['| scenario | target | measured | error / ratio |', '|---|---|---|---|']
    lines += [f"| {r['scenario']} | {r['target']} | {r['measured']} | {r['error']} |"
              for r in rows]
    report = '\n'.join(lines) + '\n'
    print(report)
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / 'scaling.md').write_text(report)
    if redis is None:
        print('redis-server is not installed: the Redis rows were left out', file=sys.stderr)


if __name__ == '__main__':
    asyncio.run(main())
