"""Multipart upload throughput: Tremolo's ``request.parts()`` against aiohttp's
``request.multipart()`` reader, side by side in one run.

Each server runs in its own process pinned to one CPU, the client on another (``taskset``).
The client sends a ``multipart/form-data`` body holding one file part (100 MiB by default)
over a fresh connection, with a Content-Length, and times the request from its first byte to
the response. The servers read every piece of the part and either drop it (``--mode discard``)
or write it to a temporary file (``--mode disk``). Servers alternate round by round, so that a
noisy, shared machine disturbs both alike; the report gives the median throughput of each and
their ratio.

    .venv/bin/python bench/multipart_upload.py                 # 100 MiB, 7 rounds, discard
    .venv/bin/python bench/multipart_upload.py --mode disk --size-mib 200 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
BOUNDARY = '----BenchBoundary7MA4YWxkTrZu0gW'
PIECE = 64 * 1024  # what the handlers ask for at a time where they can choose

TREMOLO_APP = '''
import os, sys, tempfile
from tremolo import Tremolo

app = Tremolo()
MODE = sys.argv[2]


@app.post('/upload', max_body_size=1024 ** 3)
async def upload(request):
    total = 0
    async for part in request.parts():
        if MODE == 'disk':
            with tempfile.TemporaryFile(dir=os.environ.get('BENCH_DIR')) as file:
                async for piece in part:
                    file.write(piece)
        else:
            async for piece in part:
                pass
        total += part.size
    return str(total)


app.run('127.0.0.1', int(sys.argv[1]), access_log=False, log_level='warning')
'''

AIOHTTP_APP = '''
import os, sys, tempfile
from aiohttp import web

MODE = sys.argv[2]


async def upload(request):
    total = 0
    reader = await request.multipart()
    while True:
        part = await reader.next()
        if part is None:
            break
        file = tempfile.TemporaryFile(dir=os.environ.get('BENCH_DIR')) if MODE == 'disk' else None
        while True:
            chunk = await part.read_chunk(PIECE)
            if not chunk:
                break
            total += len(chunk)
            if file is not None:
                file.write(chunk)
        if file is not None:
            file.close()
    return web.Response(text=str(total))


app = web.Application(client_max_size=1024 ** 3)
app.router.add_post('/upload', upload)
web.run_app(app, host='127.0.0.1', port=int(sys.argv[1]), access_log=None, print=None)
'''.replace('PIECE', str(PIECE))

SERVERS = {'tremolo': TREMOLO_APP, 'aiohttp': AIOHTTP_APP}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def pinned(cpu: str, args: list[str]) -> list[str]:
    return ['taskset', '-c', cpu, *args] if cpu and shutil.which('taskset') else args


def start(name: str, port: int, mode: str, cpu: str, workdir: str) -> subprocess.Popen:
    env = {**os.environ, 'BENCH_DIR': workdir}
    process = subprocess.Popen(
        pinned(cpu, [sys.executable, '-c', SERVERS[name], str(port), mode]), env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=0.2).close()
            return process
        except OSError:
            if process.poll() is not None:
                error = process.stderr.read().decode()
                raise RuntimeError(f'{name} exited: {error}') from None
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f'{name} did not start')


async def upload(port: int, size: int, chunk: bytes) -> float:
    """One upload; the seconds it took."""
    head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="bench.bin"\r\nContent-Type: application/octet-stream\r\n\r\n').encode()
    tail = f'\r\n--{BOUNDARY}--\r\n'.encode()
    length = len(head) + size + len(tail)
    request = (f'POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n'
               f'Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n'
               f'Connection: close\r\n\r\n').encode()
    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    started = time.perf_counter()
    writer.write(request + head)
    sent = 0
    while sent < size:
        piece = chunk if size - sent >= len(chunk) else chunk[:size - sent]
        writer.write(piece)
        sent += len(piece)
        await writer.drain()
    writer.write(tail)
    response = await reader.read()
    elapsed = time.perf_counter() - started
    writer.close()
    status, _, body = response.partition(b'\r\n\r\n')
    if not status.startswith(b'HTTP/1.1 200') or body.strip() != str(size).encode():
        raise RuntimeError(f'unexpected answer: {response[:200]!r}')
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size-mib', type=int, default=100)
    parser.add_argument('--rounds', type=int, default=7)
    parser.add_argument('--mode', choices=('discard', 'disk'), default='discard')
    parser.add_argument('--server-cpu', default='0', help="taskset CPU list ('' for none)")
    parser.add_argument('--client-cpu', default='1', help="taskset CPU list ('' for none)")
    args = parser.parse_args()
    if args.client_cpu and hasattr(os, 'sched_setaffinity'):
        os.sched_setaffinity(0, {int(cpu) for cpu in args.client_cpu.split(',')})
    size = args.size_mib * MiB
    chunk = os.urandom(256 * 1024)
    results: dict[str, list[float]] = {name: [] for name in SERVERS}
    with tempfile.TemporaryDirectory() as workdir:
        for turn in range(args.rounds):
            order = list(SERVERS) if turn % 2 == 0 else list(reversed(SERVERS))
            for name in order:
                port = free_port()
                process = start(name, port, args.mode, args.server_cpu, workdir)
                try:
                    asyncio.run(upload(port, 4 * MiB, chunk))  # warm-up
                    seconds = asyncio.run(upload(port, size, chunk))
                finally:
                    process.terminate()
                    process.wait(10)
                results[name].append(size / MiB / seconds)
                print(f'round {turn + 1} {name:8} {results[name][-1]:8.1f} MiB/s', flush=True)
    print(f'\n{args.size_mib} MiB file part, mode {args.mode}, {args.rounds} rounds, median:')
    base = statistics.median(results['tremolo'])
    for name, samples in results.items():
        median = statistics.median(samples)
        print(f'  {name:8} {median:8.1f} MiB/s   x{median / base:.2f} of tremolo   '
              f'(min {min(samples):.1f}, max {max(samples):.1f})')


if __name__ == '__main__':
    main()
