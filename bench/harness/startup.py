"""Start-up cost: the wall time of ``python -c "import X"`` (hyperfine when installed, else a
loop of runs), next to the bare interpreter's ``python -c pass``."""

from __future__ import annotations

import json
import shlex
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from .procs import pinned

RUNS = 20


def import_time(python: Path, statement: str, cwd: Path, cpu: Optional[int]) -> dict[str, Any]:
    """Median milliseconds of ``python -c STATEMENT`` and of ``python -c pass``.

    Raises:
        RuntimeError: The import fails.
    """
    check = subprocess.run([str(python), '-c', statement], cwd=cwd, capture_output=True,
                           text=True, timeout=60)
    if check.returncode != 0:
        raise RuntimeError(f'{statement!r} failed: {check.stderr.strip()[-300:]}')
    measure = _hyperfine if shutil.which('hyperfine') else _loop
    return {
        'import_ms': measure([str(python), '-c', statement], cwd, cpu),
        'python_ms': measure([str(python), '-c', 'pass'], cwd, cpu),
        'tool': 'hyperfine' if shutil.which('hyperfine') else f'loop of {RUNS}',
    }


def _hyperfine(argv: list[str], cwd: Path, cpu: Optional[int]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / 'result.json'
        command = shlex.join(pinned(argv, cpu))
        subprocess.run(
            ['hyperfine', '--shell=none', '--warmup', '3', '--runs', str(RUNS), '--style',
             'none', '--export-json', str(export), command],
            cwd=cwd, capture_output=True, check=True, timeout=300,
        )
        return statistics.median(json.loads(export.read_text())['results'][0]['times']) * 1000


def _loop(argv: list[str], cwd: Path, cpu: Optional[int]) -> float:
    times = []
    for _ in range(RUNS + 3):
        started = time.perf_counter()
        subprocess.run(pinned(argv, cpu), cwd=cwd, capture_output=True, check=True, timeout=60)
        times.append(time.perf_counter() - started)
    return statistics.median(times[3:]) * 1000
