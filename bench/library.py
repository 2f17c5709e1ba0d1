#!/usr/bin/env python3
"""The middleware library's cost, side by side in one run (stdlib only, like run.py).

Two comparisons, each made with wrk over loopback, the server pinned to one core and wrk to
the other, the variants alternating round after round:

- ``stack``: ``GET /`` on Tremolo bare, and with request ids, CORS, security headers, a
  request-rate limiter and sessions (its handler reading an empty session) installed
  (``apps/library_app.py``: ``bare`` and ``stacked``). Reported: requests per second and the
  stack's cost as a share of the bare throughput (the target: 15% at most).
- ``gzip``: ``GET /json``, 1 MiB of JSON streamed in 64 pieces and compressed at gzip level 6
  on the way, by Tremolo's ``Compression`` and by Starlette's ``GZipMiddleware`` on uvicorn
  (httptools, uvloop) (``apps/library_app.py:gzip``, ``apps/starlette_gzip_app.py``).
  Reported: requests and MiB (uncompressed) per second, and the ratio to Tremolo.

Loopback throughput on a shared machine drifts by tens of percent between minutes, which
a 15% target cannot tolerate: each round measures both variants back to back (in
alternating order), and the report gives, beside the medians, the median of the rounds' own
ratios, and the CPU time the server spent per request (user and system, read from /proc
around each measurement). For the stack, a last measurement takes the drift out altogether
(``--together``, on by default): bare and stacked serve at the same time, sharing the
server's core, each loaded by its own wrk over the same seconds, so that whatever slows the
machine slows both alike, and their throughputs compare as their costs per request do.

Before any load, each server's answer is checked (the same bytes once decoded, the headers
the stack adds). The report is printed and written to ``results/library.md``.

    make -C bench library                     # setup, then the full run (about 3 minutes)
    python3 library.py --smoke                # one short round of each, to see that it runs
    python3 library.py --only stack --rounds 5 --duration 10
"""

from __future__ import annotations

import argparse
import gzip as gziplib
import http.client
import os
import statistics
import sys
import threading
import time
from pathlib import Path

from harness.load import run_wrk, wrk_missing
from harness.machine import load_average
from harness.procs import Server, free_port, process_tree
from harness.servers import APPS_DIR, BENCH_DIR, ENVS_DIR

RESULTS = BENCH_DIR / 'results'
COMMON = ['--host', '127.0.0.1', '--port', '{port}', '--no-access-log', '--log-level',
          'warning', '--backlog', '4096', '--keepalive-timeout', '300']

#: name -> (environment, argv after the interpreter, path, wrk script)
VARIANTS = {
    'tremolo-bare': ('tremolo', ['-m', 'tremolo', 'library_app:bare', *COMMON], '/',
                     'report.lua'),
    'tremolo-stack': ('tremolo', ['-m', 'tremolo', 'library_app:stacked', *COMMON], '/',
                      'report.lua'),
    'tremolo-gzip': ('tremolo', ['-m', 'tremolo', 'library_app:gzip', *COMMON], '/json',
                     'gzip.lua'),
    'starlette-gzip': ('uvicorn', [
        '-m', 'uvicorn', 'starlette_gzip_app:app', '--http', 'httptools', '--loop', 'uvloop',
        '--host', '127.0.0.1', '--port', '{port}', '--no-access-log', '--log-level',
        'warning', '--backlog', '4096', '--timeout-keep-alive', '300'], '/json', 'gzip.lua'),
}
COMPARISONS = {'stack': ('tremolo-bare', 'tremolo-stack'),
               'gzip': ('tremolo-gzip', 'starlette-gzip')}
#: Uncompressed bytes of one /json answer (for MiB/s).
JSON_SIZE = None


def start(name: str, cpu: int | None) -> Server:
    env, args, _, _ = VARIANTS[name]
    python = ENVS_DIR / env / 'bin' / 'python'
    if not python.exists():
        raise SystemExit(f'{python} is missing: run `make -C bench library-setup` first')
    port = free_port()
    argv = [str(python), *(arg.format(port=port) for arg in args)]
    if cpu is not None:
        argv = ['taskset', '-c', str(cpu), *argv]
    server = Server(name, argv, APPS_DIR, port, RESULTS / 'logs' / f'library-{name}.log')
    server.wait_ready(30)
    return server


def cpu_seconds(pid: int) -> float:
    """The CPU time (user and system) spent so far by ``pid`` and its descendants."""
    ticks = os.sysconf('SC_CLK_TCK')
    total = 0
    for each in process_tree(pid):
        try:
            fields = Path(f'/proc/{each}/stat').read_text().rsplit(')', 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (proc(5): fields 14, 15)
    return total / ticks


def fetch(port: int, path: str, gzip: bool) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
    connection.request('GET', path, headers={'Accept-Encoding': 'gzip'} if gzip else {})
    response = connection.getresponse()
    body = response.read()
    headers = {name.lower(): value for name, value in response.getheaders()}
    connection.close()
    return response.status, headers, body


def validate(name: str, server: Server) -> str | None:
    """What is wrong with the server's answer, or None."""
    _, _, path, script = VARIANTS[name]
    status, headers, body = fetch(server.port, path, script == 'gzip.lua')
    if status != 200:
        return f'status {status}'
    if path == '/':
        if body != b'Hello, World!':
            return f'body {body[:40]!r}'
        stacked = ('x-request-id', 'x-content-type-options', 'ratelimit')
        if name == 'tremolo-stack' and not all(header in headers for header in stacked):
            return f'the stack did not answer: {sorted(headers)}'
        return None
    if headers.get('content-encoding') != 'gzip':
        return f'not gzip: {headers.get("content-encoding")}'
    sys.path.insert(0, str(APPS_DIR))
    from library_data import JSON_PIECES

    global JSON_SIZE
    JSON_SIZE = sum(map(len, JSON_PIECES))
    if gziplib.decompress(body) != b''.join(JSON_PIECES):
        return 'the decoded body differs'
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--only', default='stack,gzip', help='comparisons: stack, gzip')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--duration', type=float, default=10.0, help='seconds per measurement')
    parser.add_argument('--warmup', type=float, default=2.0)
    parser.add_argument('--connections', type=int, default=64)
    parser.add_argument('--server-cpu', type=int, default=1)
    parser.add_argument('--client-cpu', type=int, default=0)
    parser.add_argument('--no-pin', action='store_true', help='do not pin to CPUs')
    parser.add_argument('--together', type=int, default=5, metavar='ROUNDS',
                        help='rounds of the stack measured with both variants at once, '
                             'sharing the server core (0: none)')
    parser.add_argument('--smoke', action='store_true',
                        help='one round of 1 s measurements: checks that everything runs')
    args = parser.parse_args()
    if args.smoke:
        # Few connections: 64 streams of 1 MiB compressed at once take longer than 1 s.
        args.rounds, args.duration, args.warmup, args.connections = 1, 1.0, 0.5, 8
    missing = wrk_missing()
    if missing:
        raise SystemExit(missing)
    server_cpu = None if args.no_pin else args.server_cpu
    client_cpu = None if args.no_pin else args.client_cpu
    comparisons = [name.strip() for name in args.only.split(',') if name.strip()]
    unknown = [name for name in comparisons if name not in COMPARISONS]
    if unknown:
        raise SystemExit(f'unknown comparison(s): {", ".join(unknown)}')
    RESULTS.mkdir(exist_ok=True)
    before = load_average()
    lines = ['# Middleware library', '',
             f'{args.rounds} round(s) of {args.duration:g} s, {args.connections} connections, '
             f'load average {before} before the run.', '']
    for comparison in comparisons:
        names = COMPARISONS[comparison]
        servers = {name: start(name, server_cpu) for name in names}
        try:
            for name, server in servers.items():
                problem = validate(name, server)
                if problem:
                    raise SystemExit(f'{name} answers wrongly: {problem} '
                                     f'(see {server.log_path})')
            samples: dict[str, list[dict]] = {name: [] for name in names}
            for round_number in range(args.rounds):
                order = names if round_number % 2 == 0 else names[::-1]
                for name in order:
                    _, _, path, script = VARIANTS[name]
                    port = servers[name].port
                    if args.warmup:
                        run_wrk(port, path, args.connections, args.warmup, script, client_cpu)
                    cpu = cpu_seconds(servers[name].pid)
                    sample = run_wrk(port, path, args.connections, args.duration, script,
                                     client_cpu)
                    requests = sample['rps'] * args.duration
                    sample['cpu_us'] = ((cpu_seconds(servers[name].pid) - cpu) / requests * 1e6
                                        if requests else 0.0)
                    samples[name].append(sample)
                    print(f'{comparison} round {round_number + 1}: {name} '
                          f'{sample["rps"]:.0f} req/s, {sample["cpu_us"]:.1f} µs of CPU per '
                          f'request', flush=True)
            shared = (together(servers, args, client_cpu) if comparison == 'stack' else [])
        finally:
            for server in servers.values():
                server.stop()
        lines.extend(report(comparison, names, samples))
        if shared:
            lines.extend(report_together(shared, args))
    lines.append(f'Load average after the run: {load_average()}.')
    text = '\n'.join(lines) + '\n'
    print(text)
    (RESULTS / 'library.md').write_text(text)
    return 0


def together(servers: dict[str, Server], args: argparse.Namespace, client_cpu: int | None
             ) -> list[dict[str, float]]:
    """Rounds of the stack comparison with both servers loaded at once (see the module's
    description): each round's requests per second of each."""
    rounds = []
    connections = max(1, args.connections // 2)

    def load(name: str, found: dict[str, float]) -> None:
        _, _, path, script = VARIANTS[name]
        found[name] = run_wrk(servers[name].port, path, connections, args.duration, script,
                              client_cpu)['rps']

    for round_number in range(args.together):
        found: dict[str, float] = {}
        threads = [threading.Thread(target=load, args=(name, found)) for name in servers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if len(found) != len(servers):
            raise SystemExit('a load of the stack measured together failed')
        rounds.append(found)
        print(f'stack together, round {round_number + 1}: ' + ', '.join(
            f'{name} {rps:.0f} req/s' for name, rps in found.items()), flush=True)
    return rounds


def report_together(rounds: list[dict[str, float]], args: argparse.Namespace) -> list[str]:
    costs = [1 - each['tremolo-stack'] / each['tremolo-bare'] for each in rounds
             if each['tremolo-bare']]
    return [f'Both at once, sharing the server core ({len(rounds)} round(s) of '
            f'{args.duration:g} s, {max(1, args.connections // 2)} connections each): the '
            f'stack costs {statistics.median(costs):.1%} of the bare throughput (median; '
            f'rounds: {", ".join(f"{cost:.1%}" for cost in costs)}).', '']


def report(comparison: str, names: tuple[str, ...], samples: dict[str, list[dict]]
           ) -> list[str]:
    rps = {name: statistics.median(s['rps'] for s in samples[name]) for name in names}
    cpu = {name: statistics.median(s['cpu_us'] for s in samples[name]) for name in names}
    errors = {name: sum(s['errors'] for s in samples[name]) for name in names}
    p99 = {name: statistics.median(s['p99_ms'] for s in samples[name]) for name in names}
    base = names[0]
    lines = [f'## {comparison}', '', '| server | req/s | p99 ms | errors | ratio to '
             f'{base} | CPU µs per request |' + (
                 ' MiB/s (uncompressed) |' if comparison == 'gzip' else ''),
             '|---|---|---|---|---|---|' + ('---|' if comparison == 'gzip' else '')]
    for name in names:
        ratio = f'{rps[name] / rps[base]:.2f}' if rps[base] else 'n/a'
        row = (f'| {name} | {rps[name]:.0f} | {p99[name]:.2f} | {errors[name]} | {ratio} | '
               f'{cpu[name]:.1f} |')
        if comparison == 'gzip':
            row += f' {rps[name] * (JSON_SIZE or 0) / 2**20:.1f} |'
        lines.append(row)
    if comparison == 'stack' and rps['tremolo-bare']:
        cost = 1 - rps['tremolo-stack'] / rps['tremolo-bare']
        paired = statistics.median(
            1 - stack['rps'] / bare['rps']
            for bare, stack in zip(samples['tremolo-bare'], samples['tremolo-stack'])
            if bare['rps'])
        cpu_cost = 1 - cpu['tremolo-bare'] / cpu['tremolo-stack'] if cpu['tremolo-stack'] else 0
        lines += ['', f'The stack costs {cost:.1%} of the bare throughput (target: 15% at '
                      f'most); the median of the rounds\' own costs: {paired:.1%}; by the CPU '
                      f'time per request: {cpu_cost:.1%}.']
    lines.append('')
    return lines


if __name__ == '__main__':
    started = time.monotonic()
    status = main()
    print(f'({time.monotonic() - started:.0f} s)')
    sys.exit(status)
