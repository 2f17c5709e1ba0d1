"""Drive load with wrk (one thread, pinned to the client core) and read its summary."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any, Optional

from .procs import pinned
from .servers import BENCH_DIR

LUA_DIR = BENCH_DIR / 'lua'
WRK_TIMEOUT = '10s'  # per request: a 1 MiB upload under 256 connections may take a while


def wrk_missing() -> Optional[str]:
    """Why wrk cannot run, or None."""
    if shutil.which('wrk') is None:
        return 'wrk is not installed (make -C bench setup installs it with apt-get)'
    return None


def run_wrk(port: int, path: str, connections: int, duration: float, script: str,
            cpu: Optional[int], request_body: int = 0) -> dict[str, Any]:
    """Run wrk for ``duration`` seconds; its summary with ``rps`` and ``errors`` added
    (``mib_per_s`` counts the ``request_body`` bytes each request sends, and the responses).

    Raises:
        RuntimeError: wrk failed, hung, or printed no summary.
    """
    argv = pinned([
        'wrk', '-t1', f'-c{connections}', f'-d{max(1, round(duration))}s',
        f'--timeout={WRK_TIMEOUT}', '-s', script, f'http://127.0.0.1:{port}{path}',
    ], cpu)
    try:
        done = subprocess.run(argv, cwd=LUA_DIR, capture_output=True, text=True,
                              timeout=duration + 60)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f'wrk did not finish within {duration + 60:.0f} s') from exc
    for line in done.stdout.splitlines():
        if line.startswith('BENCH_JSON '):
            return _summarize(json.loads(line[len('BENCH_JSON '):]), request_body)
    raise RuntimeError(f'wrk exited {done.returncode}: {(done.stderr or done.stdout)[-300:]}')


def _summarize(raw: dict[str, Any], request_body: int) -> dict[str, Any]:
    seconds = raw['duration_us'] / 1e6 or 1.0
    socket_errors = raw['connect'] + raw['read'] + raw['write'] + raw['timeout']
    return {
        'rps': raw['requests'] / seconds,
        'p50_ms': raw['p50_us'] / 1000,
        'p90_ms': raw['p90_us'] / 1000,
        'p99_ms': raw['p99_us'] / 1000,
        'max_ms': raw['max_us'] / 1000,
        'mib_per_s': (raw['bytes'] + raw['requests'] * request_body) / seconds / 2**20,
        'requests': raw['requests'],
        'socket_errors': socket_errors,
        'non_2xx': raw['status'],
        'errors': socket_errors + raw['status'],
        'raw': raw,
    }
