"""Resilience of a Tremolo server, measured: slow clients, a long soak, graceful shutdown under
load, a killed worker.

    python3 resilience.py slowloris [--slow 1000] [--seconds 30]
    python3 resilience.py soak [--seconds 600]
    python3 resilience.py shutdown
    python3 resilience.py killworker [--kills 5]

(``make -C bench slowloris``, ``soak``, ``shutdown``, ``killworker``; ``resilience`` runs all
four.) The server (``apps/resilience_app.py``) runs pinned to core 0 and the clients to core 1
when the machine has two cores or more. Only the standard library and wrk (for the soak) are
needed. Each measurement prints its figures and whether it met its goal, and exits non-zero if
it did not.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Optional

from harness.load import LUA_DIR, run_wrk
from harness.machine import load_average
from harness.procs import Server, free_port, pinned, rss_kib

BENCH_DIR = Path(__file__).resolve().parent
APPS_DIR = BENCH_DIR / 'apps'
LOGS_DIR = BENCH_DIR / 'results' / 'logs'
SERVER_CPU: Optional[int] = 0 if (os.cpu_count() or 1) >= 2 else None
CLIENT_CPU: Optional[int] = 1 if (os.cpu_count() or 1) >= 2 else None


def default_python() -> str:
    for candidate in (BENCH_DIR / '.envs' / 'tremolo' / 'bin' / 'python',
                      BENCH_DIR.parent / '.venv' / 'bin' / 'python'):
        if candidate.exists():
            return str(candidate)
    return sys.executable


def raise_fd_limit() -> int:
    """Raise the open-file limit to its hard limit (the server inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def start_server(args: argparse.Namespace, name: str, *extra: str) -> Server:
    port = free_port()
    argv = pinned([args.python, '-m', 'tremolo', 'resilience_app:app', '--host', '127.0.0.1',
                   '--port', str(port), '--no-access-log', '--loop', args.loop,
                   '--backlog', '4096', *extra, *args.server_args], SERVER_CPU)
    server = Server(name, argv, APPS_DIR, port, LOGS_DIR / f'resilience-{name}.log')
    server.wait_ready(30)
    return server


def pin_clients() -> None:
    if CLIENT_CPU is not None and hasattr(os, 'sched_setaffinity'):
        os.sched_setaffinity(0, {CLIENT_CPU})


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def header(title: str, args: argparse.Namespace) -> None:
    print(f'== {title}  (loop={args.loop}, load average {load_average()}, '
          f'server cpu {SERVER_CPU}, clients cpu {CLIENT_CPU})', flush=True)


async def get(port: int, target: str, timeout: float = 10.0) -> tuple[bytes, float]:
    """GET over a new connection: the status line and the seconds it took."""
    started = time.perf_counter()
    reader, writer = await asyncio.wait_for(asyncio.open_connection('127.0.0.1', port), timeout)
    try:
        writer.write(f'GET {target} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n'.encode())
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    return data.split(b'\r\n', 1)[0], time.perf_counter() - started


# -- slowloris ------------------------------------------------------------------------------------

async def slowloris(args: argparse.Namespace, port: int) -> bool:
    head = b'GET / HTTP/1.1\r\nHost: b\r\nUser-Agent: slowloris\r\n' + b'X-a: b\r\n' * 100
    stop = asyncio.Event()
    stats = {'open': 0, 'connects': 0, 'cut_408': 0, 'cut_silent': 0, 'connect_errors': 0}

    async def trickler() -> None:
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection('127.0.0.1', port)
            except OSError:
                stats['connect_errors'] += 1
                await asyncio.sleep(1)
                continue
            stats['connects'] += 1
            stats['open'] += 1
            try:
                for byte in head:
                    writer.write(bytes([byte]))
                    try:
                        answer = await asyncio.wait_for(reader.read(64), args.interval)
                    except asyncio.TimeoutError:
                        if stop.is_set():
                            break
                        continue
                    stats['cut_408' if answer.startswith(b'HTTP/1.1 408') else 'cut_silent'] += 1
                    break
            except OSError:
                stats['cut_silent'] += 1
            finally:
                stats['open'] -= 1
                writer.close()

    tricklers = []
    for _ in range(args.slow):
        tricklers.append(asyncio.ensure_future(trickler()))
        await asyncio.sleep(args.ramp / args.slow)
    print(f'{args.slow} slow connections opened over {args.ramp:g} s; '
          f'{stats["open"]} open now', flush=True)
    latencies: list[float] = []
    failures = 0
    open_samples = []
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        open_samples.append(stats['open'])
        try:
            status, seconds = await get(port, '/')
            if status.startswith(b'HTTP/1.1 200'):
                latencies.append(seconds)
            else:
                failures += 1
        except (OSError, asyncio.TimeoutError):
            failures += 1
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*tricklers)
    p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
    print(f'normal client: {len(latencies)} requests on new connections, {failures} failed; '
          f'latency p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies) * 1000:.1f} ms')
    print(f'slow connections open while measuring: mean {statistics.mean(open_samples):.0f}, '
          f'min {min(open_samples)}; slow connects {stats["connects"]}, cut off with 408: '
          f'{stats["cut_408"]}, closed silently: {stats["cut_silent"]}, connect errors: '
          f'{stats["connect_errors"]}')
    ok = failures == 0 and p99 < 100
    print(f'goal: p99 < 100 ms and no failure: {"met" if ok else "NOT MET"}')
    return ok


# -- soak -----------------------------------------------------------------------------------------

def soak(args: argparse.Namespace, server: Server) -> bool:
    samples: list[tuple[float, int]] = []
    done = threading.Event()
    started = time.monotonic()

    def sample() -> None:
        while not done.wait(5.0):
            rss = rss_kib(server.pid)
            if rss is not None:
                samples.append((time.monotonic() - started, rss))

    print(f'warm-up: {args.warmup:g} s of wrk -c{args.connections}', flush=True)
    warm = run_wrk(server.port, '/', args.connections, args.warmup, 'soak.lua', CLIENT_CPU)
    base = rss_kib(server.pid) or 0
    print(f'after warm-up: RSS {base / 1024:.1f} MiB; {warm["requests"]} requests', flush=True)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result = run_wrk(server.port, '/', args.connections, args.seconds, 'soak.lua', CLIENT_CPU)
    done.set()
    final = rss_kib(server.pid) or 0
    rss_values = [rss for _, rss in samples] or [final]
    failed = result['socket_errors'] + result['non_2xx']
    growth = (final - base) / base * 100 if base else 0.0
    print(f'soak: {args.seconds:g} s, {result["requests"]} requests ({result["rps"]:.0f}/s), '
          f'failed {failed} (socket errors {result["socket_errors"]}, non-2xx '
          f'{result["non_2xx"]}); latency p99 {result["p99_ms"]:.1f} ms')
    print(f'RSS: {base / 1024:.1f} MiB after warm-up, {final / 1024:.1f} MiB at the end '
          f'({growth:+.1f} %); during the soak min {min(rss_values) / 1024:.1f}, '
          f'max {max(rss_values) / 1024:.1f} MiB ({len(samples)} samples)')
    ok = failed == 0 and abs(growth) <= 10
    print(f'goal: RSS within 10 % of the warm-up value, no failed request: '
          f'{"met" if ok else "NOT MET"}')
    return ok


# -- graceful shutdown under load -----------------------------------------------------------------

async def shutdown(args: argparse.Namespace, server: Server) -> bool:
    """Clients keep one request in flight each (GET /slow, keep-alive); SIGTERM comes in the
    middle. Every request sent before the signal must be answered 200."""
    signalled = 0.0
    counts = {'before_ok': 0, 'before_failed': 0, 'after_ok': 0, 'after_refused': 0}
    request = f'GET /slow?seconds={args.slow_seconds} HTTP/1.1\r\nHost: b\r\n\r\n'.encode()

    async def client() -> None:
        while True:
            try:
                reader, writer = await asyncio.open_connection('127.0.0.1', server.port)
            except OSError:
                counts['after_refused'] += 1
                return
            try:
                while True:
                    sent = time.monotonic()
                    writer.write(request)
                    try:
                        head = await reader.readuntil(b'\r\n\r\n')
                        await reader.readexactly(4)  # 'slow'
                        ok = head.startswith(b'HTTP/1.1 200')
                    except (OSError, asyncio.IncompleteReadError):
                        ok = False
                    before = not signalled or sent < signalled
                    key = ('before_' if before else 'after_') + ('ok' if ok else 'failed')
                    counts[key] = counts.get(key, 0) + 1
                    if not ok or b'Connection: close' in head:
                        break
            finally:
                writer.close()

    clients = [asyncio.ensure_future(client()) for _ in range(args.clients)]
    await asyncio.sleep(args.before)
    signalled = time.monotonic()
    os.kill(server.pid, signal.SIGTERM)
    await asyncio.wait_for(asyncio.gather(*clients), 60)
    code = server.process.wait(30)
    stopped = time.monotonic() - signalled
    print(f'{args.clients} clients, each with one GET /slow?seconds={args.slow_seconds} in '
          f'flight; SIGTERM after {args.before:g} s; the server exited {code} '
          f'{stopped:.2f} s later')
    print(f'requests sent before the signal: {counts["before_ok"]} answered 200, '
          f'{counts["before_failed"]} failed; after it: {counts["after_refused"]} '
          f'connections refused, {counts.get("after_failed", 0)} failed on a closing connection')
    ok = counts['before_failed'] == 0 and code == 0
    print(f'goal: no request sent before the signal lost, exit 0: {"met" if ok else "NOT MET"}')
    return ok


# -- a killed worker ------------------------------------------------------------------------------

async def killworker(args: argparse.Namespace, server: Server) -> bool:
    """Clients keep keep-alive connections busy (GET /pid); a worker is SIGKILLed every few
    seconds. Failures must all be on the killed worker's connections; its replacement must
    answer within a second."""
    stop = asyncio.Event()
    failures: dict[int, int] = {}
    answered: dict[int, float] = {}  # pid -> when it first answered
    request = b'GET /pid HTTP/1.1\r\nHost: b\r\n\r\n'
    total = 0

    async def client() -> None:
        nonlocal total
        while not stop.is_set():
            worker = 0
            try:
                reader, writer = await asyncio.open_connection('127.0.0.1', server.port)
            except OSError:
                failures[-1] = failures.get(-1, 0) + 1
                continue
            try:
                while not stop.is_set():
                    writer.write(request)
                    head = await reader.readuntil(b'\r\n\r\n')
                    length = int(head.split(b'Content-Length: ')[1].split(b'\r\n')[0])
                    worker = int(await reader.readexactly(length))
                    answered.setdefault(worker, time.monotonic())
                    total += 1
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                failures[worker] = failures.get(worker, 0) + 1
            finally:
                writer.close()

    async def prober() -> None:
        # New connections, spread by the kernel over the listening workers: the clients
        # above reconnect at once, before a replacement listens, so they may never reach it.
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection('127.0.0.1', server.port)
                writer.write(b'GET /pid HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n')
                data = await asyncio.wait_for(reader.read(), 2.0)
                writer.close()
                answered.setdefault(int(data.rsplit(b'\r\n\r\n', 1)[1]), time.monotonic())
            except (OSError, asyncio.TimeoutError, ValueError):
                pass
            await asyncio.sleep(0.005)

    clients = [asyncio.ensure_future(client()) for _ in range(args.clients)]
    clients.append(asyncio.ensure_future(prober()))
    await asyncio.sleep(2.0)
    respawns = []
    ok = True
    for number in range(args.kills):
        workers = sorted(answered)
        victim = workers[number % len(workers)]
        before_failures = dict(failures)
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        while not (set(answered) - set(workers)):
            await asyncio.sleep(0.005)
            if time.monotonic() - killed > 10:
                print('no replacement answered within 10 s')
                return False
        newcomer = (set(answered) - set(workers)).pop()
        respawns.append(answered[newcomer] - killed)
        await asyncio.sleep(args.between)
        lost = {pid: count - before_failures.get(pid, 0) for pid, count in failures.items()
                if count != before_failures.get(pid, 0)}
        # 0: a connection that failed before its first answer: queued in the killed
        # worker's backlog (the kernel had accepted it for that worker), or refused (-1).
        others = {pid: count for pid, count in lost.items() if pid not in (victim, 0, -1)}
        print(f'kill {number + 1}: worker {victim} killed; replacement {newcomer} answered '
              f'after {respawns[-1] * 1000:.0f} ms; connections lost: {lost.get(victim, 0)} '
              f'of the killed worker, {lost.get(0, 0)} before their first answer, '
              f'{lost.get(-1, 0)} refused, {sum(others.values())} of other workers',
              flush=True)
        ok = ok and not others and respawns[-1] < 1.0
        answered.pop(victim, None)
    stop.set()
    await asyncio.gather(*clients)
    print(f'{args.clients} keep-alive clients, {total} requests answered; respawn (kill to '
          f'first answer of the replacement): min {min(respawns) * 1000:.0f} ms, median '
          f'{statistics.median(respawns) * 1000:.0f} ms, max {max(respawns) * 1000:.0f} ms')
    print(f'goal: only the killed worker\'s connections lost, back within 1 s: '
          f'{"met" if ok else "NOT MET"}')
    return ok


# -- main -----------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('what', choices=('slowloris', 'soak', 'shutdown', 'killworker'))
    parser.add_argument('--python', default=default_python(),
                        help='interpreter with tremolo installed')
    parser.add_argument('--loop', default='asyncio', choices=('asyncio', 'uvloop'))
    parser.add_argument('--server-args', nargs=argparse.REMAINDER, default=[],
                        help='more flags for python -m tremolo (last on the line)')
    parser.add_argument('--seconds', type=float, default=None,
                        help='measured duration (slowloris 30, soak $SOAK_SECONDS or 600)')
    parser.add_argument('--slow', type=int, default=1000, help='slowloris connections')
    parser.add_argument('--interval', type=float, default=3.0,
                        help='seconds between the bytes of a slowloris head')
    parser.add_argument('--ramp', type=float, default=5.0, help='seconds to open them')
    parser.add_argument('--warmup', type=float, default=30.0, help='soak warm-up seconds')
    parser.add_argument('--connections', type=int, default=64, help='wrk connections (soak)')
    parser.add_argument('--clients', type=int, default=100)
    parser.add_argument('--slow-seconds', type=float, default=0.5)
    parser.add_argument('--before', type=float, default=2.0)
    parser.add_argument('--kills', type=int, default=5)
    parser.add_argument('--between', type=float, default=2.0)
    args = parser.parse_args()
    args.python = os.path.abspath(args.python)  # the server runs in apps/ (not resolved: a venv)
    limit = raise_fd_limit()
    header(args.what, args)
    if args.what == 'slowloris':
        args.seconds = args.seconds or 30.0
        if limit < args.slow + 100:
            print(f'the open-file limit is {limit}: raise it (ulimit -n) for {args.slow} '
                  'connections')
            return 2
    if args.what == 'soak':
        args.seconds = args.seconds or float(os.environ.get('SOAK_SECONDS') or 600)
        (LUA_DIR / 'soak.lua').resolve(strict=True)
    extra = ('--worker-num', '2') if args.what == 'killworker' else ()
    server = start_server(args, args.what, *extra)
    try:
        time.sleep(1.0 if args.what == 'killworker' else 0.2)
        if args.what == 'soak':
            ok = soak(args, server)
        else:
            pin_clients()
            coroutine = {'slowloris': slowloris, 'shutdown': shutdown,
                         'killworker': killworker}[args.what]
            target = server.port if args.what == 'slowloris' else server
            ok = asyncio.run(coroutine(args, target))
    finally:
        server.stop()
    print(f'load average after: {load_average()}')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
