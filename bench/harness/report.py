"""Render a run as Markdown (printed and saved as results/latest.md) and JSON."""

from __future__ import annotations

from typing import Any, Optional

from .results import Results
from .scenarios import IDLE, IMPORT, LOAD, Scenario


def markdown(run: dict[str, Any], results: Results, labels: dict[str, str]) -> str:
    lines = _header(run)
    lines += _environments(run, results, labels)
    lines += _summary(run, results)
    for scenario in results.scenarios:
        lines += _detail(run, results, scenario)
    lines += _validation(run, results)
    return '\n'.join(lines) + '\n'


def _header(run: dict[str, Any]) -> list[str]:
    machine, config = run['machine'], run['config']
    state = ' (INTERRUPTED: partial results)' if run.get('interrupted') else ''
    return [
        f'# Tremolo benchmark: {run["started"]}{state}',
        '',
        f'- Machine: {machine["cpu"]}, {machine["cpus"]} CPUs, {machine["memory_gib"]} GiB, '
        f'{machine["kernel"]}',
        f'- Pinning: server on CPU {config["server_cpu"]}, wrk and client on CPU '
        f'{config["client_cpu"]} (`taskset`); loopback 127.0.0.1',
        f'- Mode: {config["mode"]}: {config["rounds"]} round(s), {config["duration"]:g} s per '
        f'measurement after {config["warmup"]:g} s of warm-up, {config["connections"]} '
        f'connections unless said; servers alternate round-robin; medians over rounds',
        f'- Idle: {config["idle_connections"]} keep-alive connections; import: '
        f'{machine["hyperfine"] or "loop of runs"}',
        f'- Tools: {machine["wrk"]}; runner Python {machine["runner_python"]}; Tremolo '
        f'git {machine["tremolo_git"]}',
        f'- Wall time: {run["wall_seconds"]:.0f} s; load average before/after: '
        f'{machine["load_average_before"]} / {machine.get("load_average_after")} '
        '(above ~0.5, other work shared the CPUs: treat the numbers with care)',
        '',
    ]


def _environments(run: dict[str, Any], results: Results, labels: dict[str, str]
                  ) -> list[str]:
    lines = ['| server | what | interpreter | packages |', '|---|---|---|---|']
    envs = run['machine']['environments']
    for server in results.servers:
        info = envs.get(run['server_envs'][server], {})
        python = f'{info.get("implementation", "?")} {info.get("python", "?")}' if info else '-'
        packages = ', '.join(f'{name} {version}' for name, version in
                             info.get('packages', {}).items()) or '-'
        lines.append(f'| {server} | {labels[server]} | {python} | {packages} |')
    return lines + ['']


def _summary(run: dict[str, Any], results: Results) -> list[str]:
    base = results.baseline
    columns = [scenario for scenario in results.scenarios]
    lines = [
        f'## Summary: ratio to {base}',
        '',
        'Load: req/s ÷ Tremolo\'s (higher is faster). Idle: MiB per 1,000 idle connections ÷ '
        'Tremolo\'s (lower is leaner). Import: ms ÷ Tremolo\'s (lower is quicker). The '
        f'{base} row gives its own values.',
        '',
        '| server | ' + ' | '.join(scenario.name for scenario in columns) + ' |',
        '|---|' + '---:|' * len(columns),
    ]
    for server in results.servers:
        cells = [_summary_cell(results, scenario, server) for scenario in columns]
        lines.append(f'| {server} | ' + ' | '.join(cells) + ' |')
    return lines + ['']


def _summary_cell(results: Results, scenario: Scenario, server: str) -> str:
    cell = results.cell(scenario.name, server)
    summary = cell.get('summary')
    if not summary:
        return _status_word(cell)
    flag = ' ⚠' if cell['notes'] or summary.get('errors') else ''
    if server == results.baseline or summary.get('ratio') is None:
        if scenario.kind == LOAD:
            return f'{summary["rps"]:,.0f} req/s{flag}'
        if scenario.kind == IDLE:
            return f'{_num(summary["mib_per_1000"], 2)} MiB/1k{flag}'
        return f'{summary["import_ms"]:.0f} ms{flag}'
    return f'{_num(summary["ratio"], 2)}×{flag}'


def _detail(run: dict[str, Any], results: Results, scenario: Scenario) -> list[str]:
    connections = scenario.connections or run['config']['connections']
    lines = [f'## {scenario.name}: {scenario.title_for(connections)}', '']
    if scenario.kind == LOAD:
        lines += ['| server | req/s | × tremolo | p50 ms | p99 ms | MiB/s | errors | notes |',
                  '|---|---:|---:|---:|---:|---:|---:|---|']
    elif scenario.kind == IDLE:
        lines += ['| server | held | RSS before MiB | RSS with them MiB | MiB per 1,000 | '
                  'conns per MiB | × tremolo | notes |',
                  '|---|---:|---:|---:|---:|---:|---:|---|']
    else:
        lines += ['| server | import ms | bare python ms | × tremolo | notes |',
                  '|---|---:|---:|---:|---|']
    for server in results.servers:
        lines.append(_detail_row(results.cell(scenario.name, server), scenario, server))
    return lines + ['']


def _detail_row(cell: dict[str, Any], scenario: Scenario, server: str) -> str:
    summary = cell.get('summary')
    notes = '; '.join(cell['notes']).replace('|', '/').replace('\n', ' ')
    if not summary:
        reason = (cell.get('reason') or '').replace('|', '/').replace('\n', ' ')
        width = {LOAD: 7, IDLE: 7, IMPORT: 3}[scenario.kind]
        return f'| {server} | **{_status_word(cell)}** |' + ' |' * (width - 1) + \
            f' {reason} {notes} |'
    ratio = _num(summary.get('ratio'), 2)
    if scenario.kind == LOAD:
        errors = f'{summary["errors"]:,}'
        if summary['errors']:
            errors += f' ({summary["socket_errors"]:,} socket, {summary["non_2xx"]:,} non-2xx)'
        return (f'| {server} | {summary["rps"]:,.0f} | {ratio} | {_num(summary["p50_ms"], 2)} '
                f'| {_num(summary["p99_ms"], 2)} | {_num(summary["mib_per_s"], 1)} | {errors} '
                f'| {notes} |')
    if scenario.kind == IDLE:
        return (f'| {server} | {summary["held"]:,}/{summary["connections"]:,} | '
                f'{_num(summary["rss_base_mib"], 1)} | {_num(summary["rss_mib"], 1)} | '
                f'{_num(summary["mib_per_1000"], 2)} | {_num(summary["conns_per_mib"], 0)} | '
                f'{ratio} | {notes} |')
    return (f'| {server} | {_num(summary["import_ms"], 1)} | {_num(summary["python_ms"], 1)} | '
            f'{ratio} | {notes} |')


def _validation(run: dict[str, Any], results: Results) -> list[str]:
    endpoints = run['endpoints']
    if not endpoints:
        return []
    lines = ['## Validation (before the load)', '',
             '| server | ' + ' | '.join(endpoints) + ' |',
             '|---|' + '---|' * len(endpoints)]
    load = next(scenario.name for scenario in results.scenarios if scenario.kind == LOAD)
    for server in results.servers:
        checks = run['validation'].get(server, {})
        unchecked = _status_word(results.cell(load, server))  # unavailable, did not start
        cells = [_check_word(checks.get(endpoint, unchecked)) for endpoint in endpoints]
        lines.append(f'| {server} | ' + ' | '.join(cells) + ' |')
    return lines + ['']


def _check_word(outcome: Optional[str]) -> str:
    if outcome is None:
        return 'ok'
    return outcome.replace('|', '/').replace('\n', ' ')


def _status_word(cell: dict[str, Any]) -> str:
    return {'pending': 'not run', 'invalid': 'INVALID', 'unavailable': 'unavailable',
            'failed': 'FAILED'}.get(cell['status'], cell['status'])


def _num(value: Optional[float], digits: int) -> str:
    return '-' if value is None else f'{value:,.{digits}f}'
