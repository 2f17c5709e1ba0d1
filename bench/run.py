#!/usr/bin/env python3
"""Run Tremolo and its peers side by side and report ratios to Tremolo (stdlib only).

    python3 run.py                  # full run: 3 rounds of 10 s per measurement
    python3 run.py --quick          # 1 round of 3 s
    python3 run.py --only tremolo,aiohttp --scenarios hello,json --rounds 1

Writes results/latest.md and results/latest.json; the servers' output goes to results/logs/.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Optional

from harness import report, scenarios, servers
from harness.idle import raise_fd_limit
from harness.load import wrk_missing
from harness.machine import load_average, machine_info
from harness.runner import Config, Runner
from harness.scenarios import IDLE, IMPORT, LOAD
from harness.validate import ENDPOINTS

RESULTS_DIR = servers.BENCH_DIR / 'results'
FULL = {'rounds': 3, 'duration': 10.0, 'warmup': 2.0}
QUICK = {'rounds': 1, 'duration': 3.0, 'warmup': 1.0}


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true',
                        help='short run: 1 round of 3 s per measurement, 1 s warm-up')
    parser.add_argument('--rounds', type=int, help='rounds over every server (full: 3)')
    parser.add_argument('--duration', type=float, help='seconds per measurement (full: 10)')
    parser.add_argument('--warmup', type=float,
                        help='seconds of load before each measurement, not counted (full: 2)')
    parser.add_argument('--connections', type=int, default=64,
                        help='wrk connections where a scenario does not fix them (default 64)')
    parser.add_argument('--idle-connections', type=int, default=10_000,
                        help='idle keep-alive connections held open (default 10000)')
    parser.add_argument('--only', type=_names, help='comma-separated servers (default: all)')
    parser.add_argument('--scenarios', type=_names,
                        help='comma-separated scenarios (default: all)')
    parser.add_argument('--server-cpu', type=int, default=1, help='CPU of the servers')
    parser.add_argument('--client-cpu', type=int, default=0, help='CPU of wrk and the runner')
    parser.add_argument('--no-pin', action='store_true', help='do not pin anything to a CPU')
    parser.add_argument('--start-timeout', type=float, default=30.0,
                        help='seconds a server has to start listening')
    parser.add_argument('--list', action='store_true', help='list servers and scenarios')
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.rounds < 1 or args.duration < 1 or args.warmup < 0 or args.connections < 1:
        parser.error('--rounds, --duration and --connections must be at least 1, '
                     '--warmup at least 0')
    return args


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(',') if name.strip()]


def list_choices() -> None:
    print('servers:')
    for spec in servers.SERVERS:
        print(f'  {spec.name:<25} {spec.label}')
    print('scenarios:')
    for scenario in scenarios.SCENARIOS:
        print(f'  {scenario.name:<25} {scenario.title_for(64)}')


def pinning(args: argparse.Namespace) -> tuple[Optional[int], Optional[int]]:
    """The (server, client) CPUs, and this process pinned to the client's; None when the
    machine has too few CPUs or taskset is missing."""
    if args.no_pin:
        return None, None
    available = os.sched_getaffinity(0)
    if shutil.which('taskset') is None or not {args.server_cpu, args.client_cpu} <= available \
            or args.server_cpu == args.client_cpu:
        print(f'warning: not pinning (CPUs available: {sorted(available)}, taskset: '
              f'{shutil.which("taskset")})', file=sys.stderr)
        return None, None
    os.sched_setaffinity(0, {args.client_cpu})
    return args.server_cpu, args.client_cpu


def idle_connections(wanted: int) -> int:
    """``wanted``, or less when the open-file limit cannot be raised enough."""
    limit = raise_fd_limit(wanted + 4096)
    if limit < wanted + 512:
        print(f'warning: open-file limit {limit}: holding {limit - 512} idle connections '
              f'instead of {wanted}', file=sys.stderr)
        return max(limit - 512, 1)
    return wanted


def estimate_seconds(config: Config, n_servers: int, chosen: list[scenarios.Scenario]) -> float:
    per = {LOAD: config.warmup + config.duration + 1.5, IDLE: 4 + config.idle_connections / 2000,
           IMPORT: 6.0}
    return sum(per[scenario.kind] for scenario in chosen) * n_servers * config.rounds


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    if args.list:
        list_choices()
        return 0
    try:
        specs = servers.select(args.only)
        chosen = scenarios.select(args.scenarios)
    except ValueError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    if servers.BASELINE not in [spec.name for spec in specs]:
        print(f'note: {servers.BASELINE} is not selected: no ratios', file=sys.stderr)
    if any(scenario.kind == LOAD for scenario in chosen) and wrk_missing():
        print(f'warning: {wrk_missing()}: the load scenarios are skipped', file=sys.stderr)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)  # even when started with SIGINT ignored (`cmd &`)
    server_cpu, client_cpu = pinning(args)
    logs_dir = RESULTS_DIR / 'logs'
    shutil.rmtree(logs_dir, ignore_errors=True)
    config = Config(
        mode='quick' if args.quick else 'full', rounds=args.rounds, duration=args.duration,
        warmup=args.warmup, connections=args.connections,
        idle_connections=idle_connections(args.idle_connections), server_cpu=server_cpu,
        client_cpu=client_cpu, start_timeout=args.start_timeout, logs_dir=logs_dir,
    )
    estimate = estimate_seconds(config, len(specs), chosen)
    print(f'{len(specs)} servers x {len(chosen)} scenarios x {config.rounds} round(s): '
          f'about {estimate / 60:.0f} min', flush=True)
    run: dict[str, Any] = {
        'started': datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
        'machine': machine_info(specs), 'config': _config_json(config),
        'server_envs': {spec.name: spec.env for spec in specs},
    }
    busy = run['machine']['load_average_before']
    if busy is not None and busy > 0.5:
        print(f'warning: load average {busy:.2f} before the run: other work on this machine '
              'will skew the numbers', file=sys.stderr, flush=True)
    runner = Runner(config, specs, chosen, say=lambda text: print(text, flush=True))
    started = time.monotonic()
    try:
        runner.run()
    except KeyboardInterrupt:
        run['interrupted'] = True
        print('\ninterrupted: the servers are stopped; writing partial results', flush=True)
    run['wall_seconds'] = time.monotonic() - started
    run['machine']['load_average_after'] = load_average()
    write_reports(run, runner, specs, chosen)
    return 130 if run.get('interrupted') else 0


def _interrupt(signum: int, frame: Any) -> None:
    for other in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(other, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
    raise KeyboardInterrupt


def _config_json(config: Config) -> dict[str, Any]:
    values = {key: getattr(config, key) for key in config.__dataclass_fields__}
    values['logs_dir'] = str(config.logs_dir)
    return values


def write_reports(run: dict[str, Any], runner: Runner, specs: list[servers.ServerSpec],
                  chosen: list[scenarios.Scenario]) -> None:
    runner.results.summarize()
    endpoints = [name for name in ENDPOINTS
                 if any(scenario.endpoint == name and scenario.kind == LOAD
                        for scenario in chosen)]
    run.update(validation=runner.validation, endpoints=endpoints)
    labels = {spec.name: spec.label for spec in specs}
    text = report.markdown(run, runner.results, labels)
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / 'latest.md').write_text(text)
    payload = {
        **run,
        'servers': [{'name': spec.name, 'label': spec.label, 'env': spec.env,
                     'argv': spec.argv(0), 'import': spec.import_stmt} for spec in specs],
        'scenarios': [{'name': s.name, 'title': s.title_for(run['config']['connections']),
                       'kind': s.kind} for s in chosen],
        'results': runner.results.to_json(),
    }
    (RESULTS_DIR / 'latest.json').write_text(json.dumps(payload, indent=2) + '\n')
    print()
    print(text)
    print(f'written: {Path(RESULTS_DIR / "latest.md")} and latest.json')


if __name__ == '__main__':
    sys.exit(main())
