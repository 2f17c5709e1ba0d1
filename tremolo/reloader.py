"""Development reloading: run the server in a child process and restart it on changes.

The parent re-runs the same command (``sys.argv``) in a child with ``TREMOLO_RELOADER_CHILD``
set, polls the modification times of the Python files the child could have imported (every
``*.py`` under the working directory and the program's directory), and restarts the child when
one changes.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

logger = logging.getLogger('tremolo')

ENV_FLAG = 'TREMOLO_RELOADER_CHILD'
_SKIP_DIRS = {'.git', '.venv', 'venv', '__pycache__', 'node_modules', 'build', 'dist', 'site'}


def is_reloader_child() -> bool:
    return os.environ.get(ENV_FLAG) == '1'


def child_command() -> list[str]:
    """The command that started this process, runnable again."""
    main = sys.modules.get('__main__')
    spec = getattr(main, '__spec__', None)
    if spec is not None and spec.name:
        name = spec.name[:-9] if spec.name.endswith('.__main__') else spec.name
        return [sys.executable, '-m', name, *sys.argv[1:]]
    return [sys.executable, *sys.argv]


def watched_roots() -> list[Path]:
    roots = {Path.cwd().resolve()}
    if sys.argv and sys.argv[0] and os.path.exists(sys.argv[0]):
        roots.add(Path(sys.argv[0]).resolve().parent)
    return sorted(roots)


def snapshot(roots: list[Path]) -> dict[str, float]:
    """Modification times of every ``*.py`` file under ``roots``."""
    times: dict[str, float] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS and not d.startswith('.')]
            for filename in filenames:
                if filename.endswith('.py'):
                    path = os.path.join(dirpath, filename)
                    try:
                        times[path] = os.stat(path).st_mtime
                    except OSError:
                        continue
    return times


def run_with_reloader(interval: float = 1.0) -> None:
    """Run the program in a child process, restarting it when a source file changes."""
    roots = watched_roots()
    environ = {**os.environ, ENV_FLAG: '1'}
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping:
            before = snapshot(roots)
            child = subprocess.Popen(child_command(), env=environ)
            logger.info('reloader watching %s', ', '.join(map(str, roots)))
            changed = None
            while not stopping and changed is None:
                # A child that exited by itself (an error at import?) is restarted at the next
                # change, once the error is fixed.
                time.sleep(interval)
                after = snapshot(roots)
                changed = next((p for p in after if after[p] != before.get(p)), None) or next(
                    (p for p in before if p not in after), None
                )
            _stop(child)
            if changed is not None and not stopping:
                logger.info('%s changed: restarting', changed)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
