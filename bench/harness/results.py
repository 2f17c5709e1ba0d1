"""Collect the samples of every (scenario, server) cell across rounds and reduce them to
medians and ratios to the baseline server."""

from __future__ import annotations

import statistics
from typing import Any, Optional

from .scenarios import IDLE, IMPORT, LOAD, Scenario

# Per kind: the metric compared to the baseline, and whether more of it is better.
KEY_METRIC = {LOAD: ('rps', True), IDLE: ('mib_per_1000', False), IMPORT: ('import_ms', False)}
MEDIANS = {
    LOAD: ('rps', 'p50_ms', 'p90_ms', 'p99_ms', 'mib_per_s'),
    IDLE: ('rss_base_mib', 'rss_mib', 'mib_per_1000', 'conns_per_mib', 'open_seconds'),
    IMPORT: ('import_ms', 'python_ms'),
}
TOTALS = {LOAD: ('requests', 'socket_errors', 'non_2xx', 'errors'), IDLE: (), IMPORT: ()}


class Results:
    """Every measurement of one run, as JSON-ready dictionaries."""

    def __init__(self, scenarios: list[Scenario], servers: list[str], baseline: str) -> None:
        self.scenarios = scenarios
        self.servers = servers
        self.baseline = baseline
        self.cells: dict[str, dict[str, dict[str, Any]]] = {
            scenario.name: {
                server: {'status': 'pending', 'reason': None, 'blocked': False, 'samples': [],
                         'notes': []}
                for server in servers
            }
            for scenario in scenarios
        }

    def cell(self, scenario: str, server: str) -> dict[str, Any]:
        return self.cells[scenario][server]

    def add_sample(self, scenario: str, server: str, sample: dict[str, Any]) -> None:
        self.cell(scenario, server)['samples'].append(sample)

    def block(self, scenario: str, server: str, status: str, reason: str) -> None:
        """Mark a cell as not measured for the rest of the run: ``invalid`` (wrong answers),
        ``unavailable`` (not installed) or ``failed`` (did not start)."""
        cell = self.cell(scenario, server)
        if not cell['blocked']:
            cell['status'], cell['reason'], cell['blocked'] = status, reason, True

    def note(self, scenario: str, server: str, text: str) -> None:
        notes = self.cell(scenario, server)['notes']
        if text not in notes:
            notes.append(text)

    def is_blocked(self, scenario: str, server: str) -> bool:
        return self.cell(scenario, server)['blocked']

    def summarize(self) -> None:
        """Fill each cell's ``summary`` (medians, totals, ratio to the baseline) and status."""
        for scenario in self.scenarios:
            row = self.cells[scenario.name]
            for cell in row.values():
                self._summarize_cell(scenario.kind, cell)
            metric, _ = KEY_METRIC[scenario.kind]
            base = _metric(row.get(self.baseline), metric)
            for cell in row.values():
                value = _metric(cell, metric)
                if cell['summary'] is not None:
                    cell['summary']['ratio'] = value / base if value and base else None

    @staticmethod
    def _summarize_cell(kind: str, cell: dict[str, Any]) -> None:
        good = [sample for sample in cell['samples'] if 'error' not in sample]
        if cell['blocked'] and not good:
            cell['summary'] = None
            return
        if not good:
            cell['status'] = 'failed' if cell['samples'] else cell['status']
            errors = [sample['error'] for sample in cell['samples']]
            cell['reason'] = cell['reason'] or ('; '.join(dict.fromkeys(errors)) or None)
            cell['summary'] = None
            return
        cell['status'] = 'ok'
        summary: dict[str, Any] = {'rounds': len(good)}
        for key in MEDIANS[kind]:
            values = [sample[key] for sample in good if sample.get(key) is not None]
            summary[key] = statistics.median(values) if values else None
        for key in TOTALS[kind]:
            summary[key] = sum(sample[key] for sample in good)
        if kind == IDLE:
            summary['held'] = min(sample['held'] for sample in good)
            summary['connections'] = good[0]['connections']
        cell['summary'] = summary

    def to_json(self) -> dict[str, Any]:
        return {
            name: {server: dict(cell) for server, cell in row.items()}
            for name, row in self.cells.items()
        }


def _metric(cell: Optional[dict[str, Any]], metric: str) -> Optional[float]:
    if not cell or not cell.get('summary'):
        return None
    return cell['summary'].get(metric)
