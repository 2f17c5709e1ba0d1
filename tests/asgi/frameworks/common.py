"""What the framework applications of the behaviour suite share: the file they serve, what they
record for the tests to see (a background task done, a stream stopped), and the expected
answers."""

from __future__ import annotations

import atexit
import hashlib
import os
import tempfile
from pathlib import Path

HELLO = 'Hello, World!'
#: The file of ``GET /file``: 256 KiB, every byte value.
FILE_DATA = bytes(range(256)) * 1024
FILE_PATH = Path(tempfile.gettempdir()) / f'tremolo-asgi-suite-{os.getpid()}.bin'
FILE_PATH.write_bytes(FILE_DATA)
atexit.register(lambda: FILE_PATH.unlink(missing_ok=True))

#: The pieces of ``GET /stream``.
PIECES = [f'piece {number}\n'.encode() for number in range(5)]


class Record:
    """What an application did out of sight of its responses, for ``GET /record/NAME``."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, name: str) -> str:
        return self.values.get(name, 'pending')

    def set(self, name: str, value: str = 'done') -> None:
        self.values[name] = value


def upload_summary(size: int, digest: hashlib._Hash, pieces: int) -> dict:
    return {'size': size, 'sha256': digest.hexdigest(), 'pieces': pieces}
