"""What the numbers were measured on: CPU, kernel, memory, tools, interpreters and packages."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

from .servers import BENCH_DIR, ServerSpec

VERSIONS_SCRIPT = '''
import json, sys
from importlib import metadata
packages = {}
for name in sys.argv[1:]:
    try:
        packages[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        packages[name] = None
print(json.dumps({'python': sys.version.split()[0],
                  'implementation': sys.implementation.name, 'packages': packages}))
'''


def machine_info(specs: list[ServerSpec]) -> dict[str, Any]:
    return {
        'cpu': _cpu_model(),
        'cpus': os.cpu_count(),
        'kernel': platform.platform(),
        'memory_gib': _memory_gib(),
        'runner_python': sys.version.split()[0],
        'wrk': (_first_line(['wrk', '-v']) or '').split(' Copyright')[0] or None,
        'hyperfine': _first_line(['hyperfine', '--version']),
        'tremolo_git': _git_revision(),
        'load_average_before': load_average(),
        'environments': _environments(specs),
    }


def load_average() -> Optional[float]:
    """The 1-minute load average: other work on the machine skews every number."""
    try:
        return float(Path('/proc/loadavg').read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _cpu_model() -> str:
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def _memory_gib() -> Optional[float]:
    try:
        for line in Path('/proc/meminfo').read_text().splitlines():
            if line.startswith('MemTotal:'):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError):
        pass
    return None


def _first_line(argv: list[str]) -> Optional[str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else None


def _git_revision() -> Optional[str]:
    repo = BENCH_DIR.parent
    revision = _first_line(['git', '-C', str(repo), 'rev-parse', '--short', 'HEAD'])
    if revision is None or revision.startswith('fatal'):
        return None
    status = subprocess.run(
        ['git', '-C', str(repo), 'status', '--porcelain', '--', 'tremolo', 'middleware',
         'extensions', 'pyproject.toml'],
        capture_output=True, text=True, timeout=10,
    )
    return revision + ('+uncommitted changes' if status.stdout.strip() else '')


def _environments(specs: list[ServerSpec]) -> dict[str, Any]:
    """Per virtual environment: its interpreter and the versions of the packages measured."""
    packages: dict[str, set[str]] = {}
    for spec in specs:
        if spec.unavailable() is None:
            packages.setdefault(spec.env, set()).update(spec.packages)
    result = {}
    for env, names in packages.items():
        python = BENCH_DIR / '.envs' / env / 'bin' / 'python'
        try:
            done = subprocess.run([str(python), '-c', VERSIONS_SCRIPT, *sorted(names)],
                                  capture_output=True, text=True, timeout=60,
                                  cwd=BENCH_DIR / 'apps')
            result[env] = json.loads(done.stdout)
        except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
            result[env] = {'error': str(exc)}
    return result
