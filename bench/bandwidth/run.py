"""Bandwidth control, measured: accuracy of each limiter scope, fairness, the latency of an
unthrottled route meanwhile, and the memory of gigabyte transfers.

    make bench-bandwidth          (or: python bench/bandwidth/run.py [--quick])

The server (``app.py``) runs in its own process pinned to CPU 1, the aiohttp clients here on
CPU 0. Prints a Markdown report and writes it to ``bench/results/bandwidth.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / 'results'
MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1])
    raise RuntimeError('no VmRSS')


class Server:
    def __init__(self) -> None:
        self.port = free_port()
        command = [sys.executable, str(HERE / 'app.py'), str(self.port)]
        if _has_taskset():
            command = ['taskset', '-c', '1'] + command
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        self.url = f'http://127.0.0.1:{self.port}'

    async def wait(self) -> None:
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection('127.0.0.1', self.port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise RuntimeError('the server did not start')

    @property
    def pid(self) -> int:
        # The worker is the process itself (worker_num=1) or, under taskset, its child.
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _has_taskset() -> bool:
    return subprocess.run(['which', 'taskset'], capture_output=True).returncode == 0


async def download(session: aiohttp.ClientSession, url: str) -> tuple[int, float]:
    started = time.monotonic()
    size = 0
    async with session.get(url) as response:
        assert response.status == 200, response.status
        async for piece in response.content.iter_any():
            size += len(piece)
    return size, time.monotonic() - started


async def upload(session: aiohttp.ClientSession, url: str, size: int) -> float:
    async def body():
        piece = b'u' * 65536
        for _ in range(size // len(piece)):
            yield piece

    started = time.monotonic()
    async with session.post(url, data=body()) as response:
        assert await response.text() == str(size)
    return time.monotonic() - started


def session_from(address: str | None = None) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(local_addr=(address, 0) if address else None,
                                     force_close=False, limit=0)
    return aiohttp.ClientSession(connector=connector,
                                 timeout=aiohttp.ClientTimeout(total=None))


async def latency(session: aiohttp.ClientSession, url: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        async with session.get(url) as response:
            await response.read()
        times.append(time.perf_counter() - started)
    return times


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(quick: bool) -> list[str]:
    scale = 0.3 if quick else 1.0
    report = []
    server = Server()
    try:
        await server.wait()
        async with session_from() as session:
            # 1. One limited download and one limited upload, 1 MiB/s.
            size = int(10 * MiB * scale) // 65536 * 65536
            expected = size / MiB
            got, seconds = await download(session, f'{server.url}/limited?size={size}')
            assert got == size
            report.append(f'| download {size / MiB:.1f} MiB at 1 MiB/s (route `rate`) | '
                          f'{expected:.2f} s | {seconds:.2f} s | {seconds / expected - 1:+.1%} |')
            seconds = await upload(session, f'{server.url}/upload', size)
            report.append(f'| upload {size / MiB:.1f} MiB at 1 MiB/s (route `upload_rate`) | '
                          f'{expected:.2f} s | {seconds:.2f} s | {seconds / expected - 1:+.1%} |')

            # 2. Four downloads under a 4 MiB/s worker limit: 1 MiB/s each; and the latency
            # of an unthrottled route meanwhile, against its idle value.
            idle = await latency(session, f'{server.url}/free', 400)
            size4 = int(8 * MiB * scale) // 65536 * 65536
            sessions = [session_from() for _ in range(4)]
            url = f'{server.url}/worker/data?size={size4}'
            transfers = [asyncio.ensure_future(download(s, url)) for s in sessions]
            await asyncio.sleep(0.5)
            busy = await latency(session, f'{server.url}/free', 400)
            results = await asyncio.gather(*transfers)
            for s in sessions:
                await s.close()
            rates = [got / seconds / MiB for got, seconds in results]
            report.append(
                '| 4 downloads, `scope=worker` 4 MiB/s: each | 1.00 MiB/s | '
                + ', '.join(f'{rate:.3f}' for rate in rates)
                + f' MiB/s | {max(abs(rate - 1) for rate in rates):.1%} worst |'
            )
            ratio = statistics.median(busy) / statistics.median(idle)
            latency_row = (
                f'| unthrottled `GET` latency while throttled transfers run | ≤ 1.5× idle | '
                f'p50 {statistics.median(busy) * 1e3:.2f} ms vs idle '
                f'{statistics.median(idle) * 1e3:.2f} ms; p99 {pct(busy, 0.99) * 1e3:.2f} vs '
                f'{pct(idle, 0.99) * 1e3:.2f} ms | {ratio:.2f}× |'
            )

            # 3. One client address, four connections, 2 MiB/s per address: their sum.
            size_c = int(4 * MiB * scale) // 65536 * 65536
            sessions = [session_from('127.0.0.1') for _ in range(4)]
            started = time.monotonic()
            results = await asyncio.gather(*(
                download(s, f'{server.url}/client/data?size={size_c}') for s in sessions))
            total_seconds = time.monotonic() - started
            for s in sessions:
                await s.close()
            total = sum(got for got, _ in results) / MiB / total_seconds
            report.append(f'| 4 connections of one address, `scope=client` 2 MiB/s: sum | '
                          f'2.00 MiB/s | {total:.3f} MiB/s | {total / 2 - 1:+.1%} |')
            report.append(latency_row)

            # 4. Memory: a 1 GiB upload streamed to disk and a 1 GiB download from a generator.
            big = int(1024 * MiB * scale) // 65536 * 65536
            base = rss_kib(server.pid)
            peak = [base]

            async def sample():
                while True:
                    peak.append(rss_kib(server.pid))
                    await asyncio.sleep(0.05)

            sampler = asyncio.ensure_future(sample())
            seconds = await upload(session, f'{server.url}/to-disk', big)
            sampler.cancel()
            report.append(f'| {big / MiB:.0f} MiB upload streamed to disk: RSS growth | '
                          f'< 32 MiB | {(max(peak) - base) / 1024:.1f} MiB '
                          f'({big / MiB / seconds:.0f} MiB/s) | |')
            base = rss_kib(server.pid)
            peak = [base]
            sampler = asyncio.ensure_future(sample())
            got, seconds = await download(session, f'{server.url}/generate?size={big}')
            sampler.cancel()
            assert got == big
            report.append(f'| {big / MiB:.0f} MiB download from a generator: RSS growth | '
                          f'< 32 MiB | {(max(peak) - base) / 1024:.1f} MiB '
                          f'({big / MiB / seconds:.0f} MiB/s) | |')
    finally:
        server.stop()
    return report


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='a third of the sizes')
    args = parser.parse_args()
    if hasattr(os, 'sched_setaffinity') and os.cpu_count() and os.cpu_count() > 1:
        os.sched_setaffinity(0, {0})
    load = os.getloadavg()[0]
    rows = asyncio.run(main(args.quick))
    lines = [
        f'Bandwidth control ({"quick" if args.quick else "full"} run, load average {load:.2f} '
        f'before, Python {sys.version.split()[0]})',
        '',
        '| scenario | target | measured | error |',
        '|---|---|---|---|',
        *rows,
    ]
    text = '\n'.join(lines) + '\n'
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'bandwidth.md').write_text(text)
