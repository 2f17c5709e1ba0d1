"""The figures of every worker of a server, where each worker can read them: a private
directory that the supervisor makes and removes.

Each worker publishes its figures (`tremolo.telemetry.Figures`) to a file of its own, replaced
whole every second (a reader never sees half a file). When a worker stops, the supervisor
moves its counters into the archive, which also holds the supervisor's own figures (workers
running, worker restarts), so that counters never go down across worker restarts and reloads.
Moving them is done under an exclusive lock and reading under a shared one, so that no reader
counts a stopped worker twice or not at all.
"""

from __future__ import annotations

import fcntl
import logging
import marshal
import os
import shutil
import tempfile
from typing import Optional

from ..telemetry import Figures

logger = logging.getLogger('tremolo')

_ARCHIVE = 'archive'
_LOCK = 'lock'
_PREFIX = 'worker-'


class FigureStore:
    """The figures directory of one supervisor.

    Args:
        path: The directory (made by `create` in the supervisor; the workers open it by
            path).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._archived = Figures()  # in the supervisor only
        self._supervisor = Figures()

    @classmethod
    def create(cls) -> FigureStore:
        """A new private directory (mode 0700), for a supervisor."""
        return cls(tempfile.mkdtemp(prefix='tremolo-figures-'))

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    # -- in a worker ----------------------------------------------------------------------------

    def publish(self, pid: int, figures: Figures) -> None:
        """Replace the published figures of worker ``pid``."""
        final = os.path.join(self.path, f'{_PREFIX}{pid}')
        temporary = final + '.tmp'
        try:
            with open(temporary, 'wb') as file:
                marshal.dump(figures.to_data(), file)
            os.replace(temporary, final)
        except OSError as exc:  # the supervisor is gone and removed the directory
            logger.debug('cannot publish figures in %s: %s', self.path, exc)

    def read(self, exclude: Optional[int] = None) -> Figures:
        """The sum of every published file (the workers but ``exclude``, the archive)."""
        figures = Figures()
        skip = f'{_PREFIX}{exclude}' if exclude is not None else None
        try:
            with self._locked(fcntl.LOCK_SH):
                for name in os.listdir(self.path):
                    if name == skip or not (name.startswith(_PREFIX) or name == _ARCHIVE) or (
                            name.endswith('.tmp')):
                        continue
                    loaded = self._load(os.path.join(self.path, name))
                    if loaded is not None:
                        figures.merge(loaded)
        except OSError as exc:
            logger.debug('cannot read figures in %s: %s', self.path, exc)
        return figures

    # -- in the supervisor ----------------------------------------------------------------------

    def archive(self, pid: int) -> None:
        """Worker ``pid`` has stopped: keep its counters, drop its gauges."""
        path = os.path.join(self.path, f'{_PREFIX}{pid}')
        with self._locked(fcntl.LOCK_EX):
            loaded = self._load(path)
            if loaded is not None:
                self._archived.merge(loaded, gauges=False)
            self._write_archive()
            for leftover in (path, path + '.tmp'):
                try:
                    os.unlink(leftover)
                except FileNotFoundError:
                    pass

    def supervisor_figures(self, figures: Figures) -> None:
        """Replace the supervisor's own figures (workers running, restarts)."""
        self._supervisor = figures
        with self._locked(fcntl.LOCK_EX):
            self._write_archive()

    def _write_archive(self) -> None:
        figures = Figures()
        figures.merge(self._archived)
        figures.merge(self._supervisor)
        final = os.path.join(self.path, _ARCHIVE)
        with open(final + '.tmp', 'wb') as file:
            marshal.dump(figures.to_data(), file)
        os.replace(final + '.tmp', final)

    # -- both -----------------------------------------------------------------------------------

    def _locked(self, kind: int) -> _Lock:
        return _Lock(os.path.join(self.path, _LOCK), kind)

    @staticmethod
    def _load(path: str) -> Optional[Figures]:
        try:
            with open(path, 'rb') as file:
                return Figures.from_data(marshal.load(file))
        except FileNotFoundError:
            return None
        except (OSError, EOFError, ValueError, TypeError, IndexError) as exc:
            logger.warning('unreadable figures in %s: %s', path, exc)
            return None


class _Lock:
    """``flock`` on the directory's lock file, as a context manager."""

    def __init__(self, path: str, kind: int) -> None:
        self.path = path
        self.kind = kind
        self.fd = -1

    def __enter__(self) -> _Lock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, self.kind)
        return self

    def __exit__(self, *exc_info: object) -> None:
        os.close(self.fd)  # closing releases the lock
