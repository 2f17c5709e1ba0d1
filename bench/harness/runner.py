"""One benchmark run: start the servers, validate them, measure every scenario round-robin,
and always stop what was started."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from .idle import measure_idle
from .load import run_wrk, wrk_missing
from .procs import Server, free_port
from .results import Results
from .scenarios import IDLE, IMPORT, LOAD, WEBSOCKET, Scenario
from .servers import APPS_DIR, BASELINE, ServerSpec
from .startup import import_time
from .validate import ENDPOINTS, validate
from .wsecho import run_ws_echo


@dataclass(frozen=True)
class Config:
    """The knobs of a run (see run.py for their meaning)."""

    mode: str
    rounds: int
    duration: float
    warmup: float
    connections: int
    idle_connections: int
    server_cpu: Optional[int]
    client_cpu: Optional[int]
    start_timeout: float
    logs_dir: Path


class Runner:
    """Measures ``specs`` on ``scenarios``; :attr:`results` holds what was measured."""

    def __init__(self, config: Config, specs: list[ServerSpec], scenarios: list[Scenario],
                 say: Callable[[str], None] = print) -> None:
        self.config = config
        self.specs = specs
        self.scenarios = scenarios
        self.say = say
        self.results = Results(scenarios, [spec.name for spec in specs], BASELINE)
        self.validation: dict[str, dict[str, Optional[str]]] = {}
        self.running: dict[str, Server] = {}
        self.spares: list[Server] = []

    # -- the run --------------------------------------------------------------------------------

    def run(self) -> None:
        """Measure everything; the servers are stopped even on errors and Ctrl-C."""
        try:
            self._block_unavailable()
            if any(scenario.kind == LOAD for scenario in self.scenarios):
                for spec in self.specs:
                    self._start_shared(spec)
            for round_index in range(self.config.rounds):
                self._round(round_index)
        finally:
            self.stop_all()

    def _round(self, index: int) -> None:
        shift = index % len(self.specs)
        order = self.specs[shift:] + self.specs[:shift]  # drift hits every server alike
        for scenario in self.scenarios:
            for spec in order:
                if self.results.is_blocked(scenario.name, spec.name):
                    continue
                prefix = f'[round {index + 1}/{self.config.rounds}] {scenario.name:<11}' \
                         f'{spec.name:<18}'
                sample = self._measure(scenario, spec)
                self.results.add_sample(scenario.name, spec.name, sample)
                self.say(prefix + _describe(scenario, sample))

    def _measure(self, scenario: Scenario, spec: ServerSpec) -> dict[str, Any]:
        try:
            if scenario.kind == LOAD:
                return self._measure_load(scenario, spec)
            if scenario.kind == IDLE:
                return self._measure_idle(scenario, spec)
            return self._measure_import(spec)
        except RuntimeError as exc:
            return {'error': str(exc)}

    def _block_unavailable(self) -> None:
        no_wrk = wrk_missing()
        if no_wrk:
            self.say(f'load scenarios skipped: {no_wrk}')
        for spec in self.specs:
            if no_wrk:
                for scenario in self.scenarios:
                    if scenario.kind == LOAD:
                        self.results.block(scenario.name, spec.name, 'unavailable', no_wrk)
            reason = spec.unavailable()
            if reason:
                self.say(f'{spec.name}: unavailable: {reason}')
                for scenario in self.scenarios:
                    self.results.block(scenario.name, spec.name, 'unavailable', reason)

    # -- servers --------------------------------------------------------------------------------

    def _start(self, spec: ServerSpec, log_name: str) -> Server:
        """A started, listening server.

        Raises:
            RuntimeError: It did not come up (it is stopped then).
        """
        port = free_port()
        argv = spec.argv(port)
        if self.config.server_cpu is not None:
            argv = ['taskset', '-c', str(self.config.server_cpu), *argv]
        server = Server(spec.name, argv, APPS_DIR, port, self.config.logs_dir / log_name)
        try:
            server.wait_ready(self.config.start_timeout)
        except RuntimeError as exc:
            tail = server.log_tail(5).replace('\n', ' / ')
            server.stop()
            raise RuntimeError(f'did not start: {exc}: {tail}') from exc
        return server

    def _start_shared(self, spec: ServerSpec) -> None:
        """Start the instance that serves every load scenario, and validate its endpoints."""
        load = [s for s in self.scenarios if s.kind == LOAD]
        if all(self.results.is_blocked(s.name, spec.name) for s in load):
            return
        try:
            server = self._start(spec, f'{spec.name}.log')
        except RuntimeError as exc:
            self.say(f'{spec.name}: {exc}')
            for scenario in load:
                self.results.block(scenario.name, spec.name, 'failed', str(exc))
            return
        self.running[spec.name] = server
        checks = self.validation.setdefault(spec.name, {})
        for scenario in load:
            endpoint = scenario.endpoint or ''
            if endpoint not in checks:
                checks[endpoint] = validate(server.port, endpoint)
                if checks[endpoint]:
                    self.say(f'{spec.name}: INVALID {endpoint}: {checks[endpoint]}')
            if checks[endpoint]:
                self.results.block(scenario.name, spec.name, 'invalid', checks[endpoint])
        self.say(f'{spec.name}: listening on port {server.port} (pid {server.pid})')

    def _shared(self, scenario: Scenario, spec: ServerSpec) -> Server:
        """The shared instance, restarted if it died (noted in the cell)."""
        server = self.running[spec.name]
        if server.alive():
            return server
        code = server.process.returncode
        self.results.note(scenario.name, spec.name,
                          f'server had died (exit {code}; log: {server.log_path.name}), '
                          'restarted')
        self.say(f'{spec.name}: server died (exit {code}); last lines of its log:\n'
                 f'{server.log_tail()}')
        server.stop()
        self.spares.append(server)
        server = self._start(spec, f'{spec.name}.log')
        self.running[spec.name] = server
        return server

    def stop_all(self) -> None:
        for server in [*self.running.values(), *self.spares]:
            server.stop()
        self.running.clear()
        self.spares.clear()

    # -- measurements ---------------------------------------------------------------------------

    def _measure_load(self, scenario: Scenario, spec: ServerSpec) -> dict[str, Any]:
        server = self._shared(scenario, spec)
        endpoint = scenario.endpoint or ''
        path = ENDPOINTS[endpoint].path
        connections = scenario.connections or self.config.connections
        for seconds in (self.config.warmup, self.config.duration):  # warm-up not kept
            if seconds <= 0:
                continue
            if scenario.script == WEBSOCKET:
                sample = run_ws_echo(server.port, path, seconds, self.config.client_cpu)
            else:
                sample = run_wrk(server.port, path, connections, seconds, scenario.script,
                                 self.config.client_cpu, scenario.request_body)
        after = 'the server died under load' if not server.alive() else \
            validate(server.port, endpoint, repeat=1)
        if after:
            sample['after_load'] = after
            self.results.note(scenario.name, spec.name, f'after the load: {after}')
        return sample

    def _measure_idle(self, scenario: Scenario, spec: ServerSpec) -> dict[str, Any]:
        server = self._start(spec, f'{spec.name}-idle.log')
        try:
            problem = validate(server.port, 'hello')
            if problem:
                self.results.block(scenario.name, spec.name, 'invalid', problem)
                raise RuntimeError(problem)
            sample = measure_idle(server.pid, server.port, self.config.idle_connections)
            if not server.alive():
                raise RuntimeError('the server died while holding the idle connections')
        finally:
            server.stop()
        if sample['held'] < sample['connections']:
            self.results.note(scenario.name, spec.name,
                              f'held only {sample["held"]} of {sample["connections"]}')
        if sample['sample_still_served'] < sample['sample_size']:
            self.results.note(
                scenario.name, spec.name,
                f'{sample["sample_size"] - sample["sample_still_served"]} of '
                f'{sample["sample_size"]} sampled idle connections no longer answered')
        return sample

    def _measure_import(self, spec: ServerSpec) -> dict[str, Any]:
        return import_time(spec.python, spec.import_stmt, APPS_DIR, self.config.server_cpu)


def _describe(scenario: Scenario, sample: dict[str, Any]) -> str:
    if 'error' in sample:
        return f'ERROR: {sample["error"]}'
    if scenario.kind == LOAD:
        text = (f'{sample["rps"]:>10,.0f} req/s  p50 {sample["p50_ms"]:.2f} ms  '
                f'p99 {sample["p99_ms"]:.2f} ms  errors {sample["errors"]}')
        return text + (f'  AFTER LOAD: {sample["after_load"]}' if 'after_load' in sample else '')
    if scenario.kind == IDLE:
        per_1000 = sample['mib_per_1000']
        return (f'held {sample["held"]}/{sample["connections"]}  RSS {sample["rss_base_mib"]:.1f}'
                f' -> {sample["rss_mib"]:.1f} MiB  '
                f'{"-" if per_1000 is None else f"{per_1000:.2f}"} MiB/1000 conns')
    assert scenario.kind == IMPORT
    return f'import {sample["import_ms"]:.1f} ms (bare python {sample["python_ms"]:.1f} ms)'
