"""Writing to the client: small writes held and sent together, big ones scattered, and the
producer made to wait while the client is behind (write flow control)."""

from __future__ import annotations

import asyncio
import os
from typing import Any, Optional

from .exceptions import ClientDisconnected

# Most bytes of streamed writes held to be sent together (see HTTPProtocol.write_soon).
_HOLD_LIMIT = 256 * 1024
# Held writes at least this big go out with one writev() instead of being joined first.
_SCATTER_MIN = 32 * 1024
# At most this many pieces per writev() (IOV_MAX is 1024 on Linux and the BSDs).
_SCATTER_MAX = 1024


#: Chunk-size lines of the piece sizes seen lately (RFC 9112 §7.1: the size in hex, then CRLF).
_SIZE_LINES: dict[int, bytes] = {}


class BufferedWriter:
    """The writing half of a connection's protocol (a base class of `HTTPProtocol`).

    Needs ``transport``, ``loop`` and ``closed`` from the protocol; ``_fd`` is the socket's
    descriptor when scatter writes are safe (plain TCP), else -1.
    """

    __slots__ = ()

    transport: Any
    loop: asyncio.AbstractEventLoop
    closed: bool

    def _init_output(self) -> None:
        self.writing_paused = False
        self._drain_waiter: Optional[asyncio.Future[None]] = None
        self._held: list[bytes] = []
        self._held_size = 0
        # The socket's descriptor for scatter writes (plain TCP only), else -1.
        self._fd = -1

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark.

        Raises:
            ClientDisconnected: The connection is closed.
        """
        if self.closed:
            raise ClientDisconnected('the client closed the connection')
        if not self.writing_paused:
            return
        waiter = self._drain_waiter
        if waiter is None:
            waiter = self._drain_waiter = self.loop.create_future()
        await waiter

    def write(self, data: bytes) -> None:
        """Write ``data`` now (after anything still held by `write_soon`)."""
        if self.closed:
            return
        if self._held:
            self._held.append(data)
            self.flush()
        else:
            self.transport.write(data)

    def write_soon(self, data: bytes) -> None:
        """Write ``data`` at the end of this turn of the event loop, together with whatever
        else is written before then.

        A streamed body arrives in many small writes; sending each at once costs a system call
        apiece. Held writes go out before the loop next waits for I/O, so nothing is delayed
        beyond the code already running, and at most ``_HOLD_LIMIT`` bytes are ever held.
        """
        self._hold((data,), len(data))

    def write_chunk_soon(self, data: bytes) -> None:
        """`write_soon` one piece of a chunked body with its framing (RFC 9112 §7.1)."""
        size = len(data)
        line = _SIZE_LINES.get(size)
        if line is None:
            line = b'%X\r\n' % size
            if len(_SIZE_LINES) < 64:  # a stream's pieces mostly share a few sizes
                _SIZE_LINES[size] = line
        self._hold((line, data, b'\r\n'), size)

    def _hold(self, pieces: tuple[bytes, ...], size: int) -> None:
        if self.closed:
            return
        held = self._held
        if not held:
            self.loop.call_soon(self.flush)
        held += pieces
        self._held_size += size
        if self._held_size >= _HOLD_LIMIT:
            self.flush()

    def flush(self) -> None:
        """Send what `write_soon` holds."""
        held = self._held
        if held:
            self._held = []
            size = self._held_size
            self._held_size = 0
            if self.closed:
                return
            if (size >= _SCATTER_MIN and self._fd >= 0 and len(held) <= _SCATTER_MAX
                    and not self.transport.get_write_buffer_size()):
                self._scatter(held, size)
            else:
                self.transport.write(b''.join(held))

    def _scatter(self, held: list[bytes], size: int) -> None:
        """Send big held writes straight from their pieces with one ``writev``: joining them
        first would copy every byte of a streamed body once more. Only while the transport
        buffers nothing (so no byte can overtake another); what the socket does not take now
        goes to the transport, which sends it when the socket is writable again."""
        try:
            sent = os.writev(self._fd, held)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            # A broken connection: the transport's own write finds out and closes it.
            sent = 0
        if sent >= size:
            return
        for index, piece in enumerate(held):
            if sent < len(piece):
                held[index] = piece[sent:]
                self.transport.write(b''.join(held[index:]))
                return
            sent -= len(piece)
