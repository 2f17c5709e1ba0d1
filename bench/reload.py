"""Zero-downtime reloads, measured: wrk keeps 64 connections busy against two workers while the
server is reloaded with SIGHUP five times; every request must succeed and no connection may be
refused or reset.

    python3 reload.py [--reloads 5] [--connections 64] [--seconds 20]
    python3 reload.py --quick      # a smoke run: the same, in a few seconds

(``make -C bench reload``.) The server (``apps/tremolo_app.py`` through
``python -m tremolo``, so that each reload imports the application afresh) runs pinned to core
0 and wrk to core 1 when the machine has two cores or more. Prints one JSON object with wrk's
figures, the reloads done and the worker pids seen, and exits non-zero when a request failed or
a reload did not complete.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

from harness.load import LUA_DIR, run_wrk
from harness.procs import Server, free_port, pinned

BENCH_DIR = Path(__file__).resolve().parent
APPS_DIR = BENCH_DIR / 'apps'
LOGS_DIR = BENCH_DIR / 'results' / 'logs'
SERVER_CPU: Optional[int] = 0 if (os.cpu_count() or 1) >= 2 else None
CLIENT_CPU: Optional[int] = 1 if (os.cpu_count() or 1) >= 2 else None
RELOADED = re.compile(r'reloaded: \d+ new workers serve')


def default_python() -> str:
    for candidate in (BENCH_DIR / '.envs' / 'tremolo' / 'bin' / 'python',
                      BENCH_DIR.parent / '.venv' / 'bin' / 'python'):
        if candidate.exists():
            return str(candidate)
    return sys.executable


def reloads_done(server: Server) -> int:
    try:
        return len(RELOADED.findall(server.log_path.read_text(errors='replace')))
    except OSError:
        return 0


def measure(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    LOGS_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOGS_DIR / 'reload.log'
    log_path.unlink(missing_ok=True)
    argv = pinned([args.python, '-m', 'tremolo', 'tremolo_app:app', '--host', '127.0.0.1',
                   '--port', str(port), '--worker-num', str(args.workers), '--no-access-log',
                   '--loop', 'asyncio', '--backlog', '4096'], SERVER_CPU)
    server = Server('tremolo-reload', argv, APPS_DIR, port, log_path)
    try:
        server.wait_ready(30)
        time.sleep(1.0)  # every worker serves
        result: dict[str, Any] = {}

        def load() -> None:
            result.update(run_wrk(port, '/', args.connections, args.seconds,
                                  str(LUA_DIR / 'report.lua'), CLIENT_CPU))

        thread = threading.Thread(target=load)
        thread.start()
        # The reloads spread over the middle of the run, each waited for before the next.
        spacing = args.seconds / (args.reloads + 1)
        pids: set[int] = set()
        for number in range(1, args.reloads + 1):
            time.sleep(spacing * 0.5)
            os.kill(server.pid, signal.SIGHUP)
            deadline = time.monotonic() + 30
            while reloads_done(server) < number:
                if time.monotonic() > deadline:
                    raise RuntimeError(f'reload {number} did not complete:\n'
                                       f'{server.log_tail()}')
                time.sleep(0.02)
            pids.update(int(pid) for pid in re.findall(
                r'pid (\d+) replaces', server.log_path.read_text(errors='replace')))
            time.sleep(spacing * 0.5)
        thread.join()
        raw = result.pop('raw', {})
        return {
            'reloads': reloads_done(server), 'connections': args.connections,
            'seconds': args.seconds, 'requests': result.get('requests'),
            'rps': round(result.get('rps', 0.0)), 'non_2xx': result.get('non_2xx'),
            'connect_errors': raw.get('connect'), 'read_errors': raw.get('read'),
            'write_errors': raw.get('write'), 'timeouts': raw.get('timeout'),
            'errors': result.get('errors'), 'p99_ms': round(result.get('p99_ms', 0.0), 2),
            'max_ms': round(result.get('max_ms', 0.0), 2), 'new_worker_pids': sorted(pids),
        }
    finally:
        server.stop(grace=40)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--reloads', type=int, default=5)
    parser.add_argument('--connections', type=int, default=64)
    parser.add_argument('--seconds', type=float, default=20.0)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--quick', action='store_true', help='a smoke run (6 s)')
    parser.add_argument('--python', default=default_python(),
                        help='the interpreter that runs the server (default: .envs/tremolo)')
    args = parser.parse_args()
    args.python = os.path.abspath(args.python)  # the server runs in apps/ (not resolved: a venv)
    if args.quick:
        args.seconds = 6.0
    figures = measure(args)
    print(json.dumps(figures))
    ok = figures['errors'] == 0 and figures['reloads'] == args.reloads
    print('PASS' if ok else 'FAIL: requests failed or a reload did not complete')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
