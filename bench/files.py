#!/usr/bin/env python3
"""File download throughput: Tremolo's Response.sendfile against nginx (stdlib only).

    python3 files.py                      # 1 GiB sparse file, 5 rounds
    python3 files.py --random --rounds 3  # random data instead of a sparse file
    make -C bench files                   # the same, with nginx/curl installed when missing

Each server is pinned to one CPU (``--server-cpu``), the client (curl, writing to /dev/null) to
the other (``--client-cpu``). In each round every variant downloads the file once, in turn, so
that a noisy neighbour hits them all alike; the report gives the median MiB/s of each, its
ratio to nginx, and the CPU time the server spent per GiB sent (user + system, from /proc: a
figure the neighbours disturb less than the speed). Variants:

- ``nginx``: ``sendfile on`` (``sendfile_max_chunk 0``, ``tcp_nopush off``: its best
  figures here), one worker process, access log off;
- ``tremolo``: ``return await response.sendfile(path)`` on asyncio: zero-copy;
- ``tremolo-filter``: the same with a pass-through stream filter, which forces the read path
  (pieces of ``--chunk-size`` bytes through ``response.write``, chunked);
- ``tremolo-uvloop``: uvloop has no ``loop.sendfile``: the read path, without filter.

The interpreter running this script serves Tremolo (``--python`` to choose another); it needs
``tremolo`` importable (and uvloop for the uvloop variant, skipped otherwise).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

MiB = 1024 * 1024

APP = '''
from tremolo import Tremolo

PATH = {path!r}
CHUNK = {chunk}
app = Tremolo()


@app.route('/sendfile')
async def zero_copy(response):
    return await response.sendfile(PATH)


@app.route('/filtered')
async def filtered(response):
    response.add_filter(lambda data, final: data)  # forces the read path
    return await response.sendfile(PATH, chunk_size=CHUNK)


@app.route('/read')
async def read(response):
    return await response.sendfile(PATH, chunk_size=CHUNK)
'''

NGINX_CONF = '''
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    sendfile_max_chunk 0;
    tcp_nopush off;
    default_type application/octet-stream;
    client_body_temp_path {tmp}/client_temp;
    proxy_temp_path {tmp}/proxy_temp;
    fastcgi_temp_path {tmp}/fastcgi_temp;
    uwsgi_temp_path {tmp}/uwsgi_temp;
    scgi_temp_path {tmp}/scgi_temp;
    server {{
        listen 127.0.0.1:{port};
        root {tmp};
        location / {{ }}
    }}
}}
'''


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, default=1024, help='file size in MiB (1024)')
    parser.add_argument('--random', action='store_true',
                        help='fill the file with random data (default: sparse)')
    parser.add_argument('--rounds', type=int, default=5, help='rounds (5)')
    parser.add_argument('--chunk-size', type=int, default=256 * 1024,
                        help='chunk size of the read path, bytes (262144)')
    parser.add_argument('--server-cpu', type=int, default=1)
    parser.add_argument('--client-cpu', type=int, default=0)
    parser.add_argument('--no-pin', action='store_true', help='pin nothing to a CPU')
    parser.add_argument('--python', default=sys.executable, help='interpreter for Tremolo')
    parser.add_argument('--nginx', default=shutil.which('nginx') or '/usr/sbin/nginx')
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def wait_listening(port: int, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f'the server exited with {process.returncode}')
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f'nothing listens on port {port} after {timeout} s')


def pinned(cpu: int, args: argparse.Namespace, command: list[str]) -> list[str]:
    if args.no_pin or not shutil.which('taskset'):
        return command
    return ['taskset', '-c', str(cpu), *command]


def make_file(path: Path, size: int, random: bool) -> None:
    with open(path, 'wb') as file:
        if random:
            block = 64 * MiB
            for start in range(0, size, block):
                file.write(os.urandom(min(block, size - start)))
        else:
            file.truncate(size)  # sparse: reads are zero pages, no disk involved
    os.chmod(path, 0o644)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and its descendants (Linux /proc; 0 elsewhere)."""
    total = 0.0
    pending = [pid]
    try:
        while pending:
            current = pending.pop()
            fields = Path(f'/proc/{current}/stat').read_text().rsplit(')', 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
            for task in Path(f'/proc/{current}/task').iterdir():
                pending += [int(child) for child in (task / 'children').read_text().split()]
    except OSError:
        return 0.0
    return total / os.sysconf('SC_CLK_TCK')


def download(url: str, args: argparse.Namespace, expected: int, pid: int
             ) -> tuple[float, float]:
    """One download with curl: its speed in MiB/s, and the server's CPU seconds per GiB."""
    command = pinned(args.client_cpu, args, [
        'curl', '-s', '-o', '/dev/null', '-w', '%{speed_download} %{size_download}', url])
    before = cpu_seconds(pid)
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout.split()
    cpu = (cpu_seconds(pid) - before) * 1024 * MiB / expected
    speed, size = float(out[0]), int(float(out[1]))
    if size != expected:
        raise RuntimeError(f'{url}: {size} bytes received, {expected} expected')
    return speed / MiB, cpu


class Servers:
    """Starts the servers and stops them all at the end."""

    def __init__(self, tmp: Path, args: argparse.Namespace) -> None:
        self.tmp = tmp
        self.args = args
        self.processes: list[subprocess.Popen] = []

    def start(self, name: str, command: list[str], port: int,
              env: Optional[dict[str, str]] = None) -> int:
        log = open(self.tmp / f'{name}.log', 'wb')
        process = subprocess.Popen(pinned(self.args.server_cpu, self.args, command),
                                   stdout=log, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
        self.processes.append(process)
        try:
            wait_listening(port, process)
        except RuntimeError as exc:
            raise RuntimeError(f'{name}: {exc}; see {self.tmp / (name + ".log")}') from None
        return process.pid

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def has_module(python: str, name: str) -> bool:
    return subprocess.run([python, '-c', f'import {name}'], capture_output=True).returncode == 0


def main() -> int:
    args = parse_args()
    if not shutil.which('curl'):
        print('bench files: curl is required (apt-get install curl)', file=sys.stderr)
        return 1
    size = args.size * MiB
    tmp = Path(tempfile.mkdtemp(prefix='tremolo-files-'))
    os.chmod(tmp, 0o755)  # nginx's worker runs as another user when started as root
    servers = Servers(tmp, args)
    urls: dict[str, tuple[str, int]] = {}  # variant: (url, server pid)
    try:
        print(f'file: {args.size} MiB ({"random" if args.random else "sparse"}) in {tmp}')
        make_file(tmp / 'big.bin', size, args.random)
        (tmp / 'app.py').write_text(APP.format(path=str(tmp / 'big.bin'), chunk=args.chunk_size))
        if os.path.exists(args.nginx):
            port = free_port()
            (tmp / 'nginx.conf').write_text(NGINX_CONF.format(tmp=tmp, port=port))
            pid = servers.start('nginx', [args.nginx, '-c', str(tmp / 'nginx.conf'), '-e',
                                          str(tmp / 'nginx-error.log')], port)
            urls['nginx'] = (f'http://127.0.0.1:{port}/big.bin', pid)
        else:
            print('nginx not found: run `make -C bench files` (installs it) or pass --nginx',
                  file=sys.stderr)
        env = {**os.environ, 'PYTHONPATH': str(tmp)}
        loops = ['asyncio'] + (['uvloop'] if has_module(args.python, 'uvloop') else [])
        for loop in loops:
            port = free_port()
            pid = servers.start(f'tremolo-{loop}', [
                args.python, '-m', 'tremolo', 'app:app', '--port', str(port), '--loop', loop,
                '--no-access-log', '--log-level', 'warning'], port, env)
            base = f'http://127.0.0.1:{port}'
            if loop == 'asyncio':
                urls['tremolo'] = (base + '/sendfile', pid)
                urls['tremolo-filter'] = (base + '/filtered', pid)
            else:
                urls['tremolo-uvloop'] = (base + '/read', pid)
        for url, pid in urls.values():  # warm up: page cache, first-request costs
            download(url, args, size, pid)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in urls}
        for round_number in range(args.rounds):
            for name, (url, pid) in urls.items():
                samples[name].append(download(url, args, size, pid))
            print(f'round {round_number + 1}: ' + ', '.join(
                f'{name} {values[-1][0]:.0f} MiB/s ({values[-1][1]:.2f} s CPU/GiB)'
                for name, values in samples.items()))
        report(samples, args)
    finally:
        servers.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def report(samples: dict[str, list[tuple[float, float]]], args: argparse.Namespace) -> None:
    medians = {name: statistics.median(speed for speed, _ in values)
               for name, values in samples.items()}
    cpu = {name: statistics.median(seconds for _, seconds in values)
           for name, values in samples.items()}
    nginx = medians.get('nginx')
    print()
    print(f'Download of a {args.size} MiB file, median of {args.rounds} rounds '
          f'(curl to /dev/null; server on CPU {args.server_cpu}, client on CPU '
          f'{args.client_cpu}; read path in pieces of {args.chunk_size // 1024} KiB)')
    print()
    print('| server | MiB/s | ratio to nginx | server CPU per GiB |')
    print('|---|---:|---:|---:|')
    for name, value in medians.items():
        ratio = f'{value / nginx:.0%}' if nginx else 'n/a'
        print(f'| {name} | {value:.0f} | {ratio} | {cpu[name]:.2f} s |')


if __name__ == '__main__':
    sys.exit(main())
