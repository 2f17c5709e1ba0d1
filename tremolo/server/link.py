"""The line between a process and the one that started it: a supervisor and each of its
workers, the development reloader and the server it runs.

One end of a socket pair each, one byte per message. Orders go through it rather than through
signals, because a signal may also reach the worker straight from outside: Ctrl-C in a terminal
and systemd (``KillMode=control-group``) signal the whole process group at once, and a worker
must not count that signal and its supervisor's order as two signals (the second one means
"stop now"). The line also tells a worker that its supervisor is gone (the socket reads end of
file), so that no worker outlives it.
"""

from __future__ import annotations

import os
import socket
from typing import Optional

# From the parent to the child.
STOP = b'S'  # stop gracefully: finish what is in flight
STOP_NOW = b'N'  # cut the graceful stop short
DRAIN = b'D'  # about to be replaced: readiness answers 503 (the worker still serves)
UNDRAIN = b'U'  # not replaced after all (a reload failed): ready again

# From the child to the parent.
SERVING = b'R'  # the worker accepts connections
RECYCLE = b'M'  # max_requests is reached: please replace me

#: The environment variable that gives a server run by the reloader the descriptor of its
#: line to the reloader.
RELOADER_LINK_ENV = 'TREMOLO_RELOADER_LINK'


class Link:
    """One end of the line: a non-blocking socket.

    Args:
        sock: This end of the socket pair.
        slot: The worker's slot in its supervisor (``None`` outside a supervisor).
        figures_dir: Where the workers of the supervisor publish their figures, or ``None``.
    """

    def __init__(self, sock: socket.socket, slot: Optional[int] = None,
                 figures_dir: Optional[str] = None) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.slot = slot
        self.figures_dir = figures_dir

    @classmethod
    def pair(cls, slot: Optional[int] = None, figures_dir: Optional[str] = None
             ) -> tuple[Link, Link]:
        """``(parent's end, child's end)`` of a new line."""
        parent, child = socket.socketpair()
        return cls(parent, slot, figures_dir), cls(child, slot, figures_dir)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, message: bytes) -> bool:
        """Send ``message``; ``False`` if the other end is gone."""
        try:
            self.sock.send(message)
            return True
        except (BlockingIOError, InterruptedError):
            return True  # a full buffer: the other end is not reading, and will not need it
        except OSError:
            return False

    def receive(self) -> Optional[bytes]:
        """The messages waiting (``b''`` if none yet), or ``None`` once the other end is
        gone."""
        try:
            data = self.sock.recv(256)
        except (BlockingIOError, InterruptedError):
            return b''
        except OSError:
            return None
        return data or None

    def close(self) -> None:
        self.sock.close()

    def __repr__(self) -> str:
        return f'<Link fd {self.sock.fileno()} slot {self.slot}>'


def reloader_link() -> Optional[Link]:
    """In a server run by the development reloader: its line to the reloader."""
    value = os.environ.get(RELOADER_LINK_ENV)
    if not value:
        return None
    try:
        sock = socket.socket(fileno=int(value))
    except (ValueError, OSError):
        return None
    return Link(sock)
