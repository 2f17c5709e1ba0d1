"""The writing side of a connection, as responses and streams see it: a `WriteChannel`.

Small writes are held and sent together at the end of the event loop's turn, big ones are
scattered straight from their pieces with one ``writev``, files go zero-copy with
``loop.sendfile``, and a producer waits (`Output.drain`) while the client is behind (write flow
control). What belongs to the exchange rather than to the bytes (keep-alive, the end of a
response, upgrades) it asks of its connection, an `Exchange`.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any, BinaryIO, Optional, Protocol

from ..exceptions import ClientDisconnected

if TYPE_CHECKING:
    from ..options import Options
    from ..response import Response
    from ..upgrade import UpgradedStream

# Most bytes of streamed writes held to be sent together (see Output.write_soon).
_HOLD_LIMIT = 256 * 1024
# Held writes at least this big go out with one writev() instead of being joined first.
_SCATTER_MIN = 32 * 1024
# At most this many pieces per writev() (IOV_MAX is 1024 on Linux and the BSDs).
_SCATTER_MAX = 1024

#: Chunk-size lines of the piece sizes seen lately (RFC 9112 §7.1: the size in hex, then CRLF).
_SIZE_LINES: dict[int, bytes] = {}

# Event loop classes whose sendfile() raised NotImplementedError (uvloop): not tried again.
_NO_SENDFILE: set[type] = set()


class Exchange(Protocol):
    """What an `Output` asks of its connection (`tremolo.server.protocol.HTTPProtocol`)."""

    def response_finished(self, response: Response) -> None: ...

    def upgrade(self) -> UpgradedStream: ...

    def cancel_on_disconnect(self) -> None: ...

    def detach(self) -> None: ...
    def set_handler_timeout(self, seconds: float) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class Output:
    """The writing side of one connection: a `tremolo.types.WriteChannel`.

    Attributes:
        loop: The connection's event loop.
        options: The server's options.
        server_header: The ``Server`` header line.
        transport: The transport, once connected.
        closed: The connection is lost: nothing can be sent any more.
        closing: No further request will be read: the response must close the connection
            (set by the connection).
        writing_paused: The transport's buffer is above its high-water mark.
    """

    __slots__ = ('loop', 'options', 'server_header', 'transport', 'closed', 'closing',
                 'writing_paused', '_exchange', '_drain_waiter', '_held', '_held_size', '_fd',
                 '_lost')

    def __init__(self, exchange: Exchange, loop: asyncio.AbstractEventLoop, options: Options,
                 server_header: bytes) -> None:
        self.loop = loop
        self.options = options
        self.server_header = server_header
        self.transport: Any = None
        self.closed = False
        self.closing = False
        self.writing_paused = False
        self._exchange = exchange
        self._drain_waiter: Optional[asyncio.Future[None]] = None
        # What write_soon holds (None when nothing is: an idle connection keeps no list).
        self._held: Optional[list[bytes]] = None
        self._held_size = 0
        # The socket's descriptor for scatter writes (plain TCP only), else -1.
        self._fd = -1
        # Done when the connection is lost (made by the first `when_lost`).
        self._lost: Optional[asyncio.Future[None]] = None

    def connected(self, transport: Any, fd: int) -> None:
        """Write to ``transport``; ``fd`` is its socket's descriptor when writes may bypass
        it (plain TCP), else -1."""
        self.transport = transport
        self._fd = fd

    # -- write flow control (the transport's pause_writing / resume_writing) --------------------

    def pause(self) -> None:
        self.writing_paused = True

    def resume(self) -> None:
        self.writing_paused = False
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def lost(self) -> None:
        """The connection is gone: fail the producer waiting in `drain`."""
        self.closed = True
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ClientDisconnected('the client closed the connection'))
            waiter.exception()  # mark retrieved: nobody may be waiting any more
        lost = self._lost
        if lost is not None and not lost.done():
            lost.set_result(None)

    def when_lost(self) -> asyncio.Future[None]:
        """A future done once the connection is lost (the same one for every caller)."""
        lost = self._lost
        if lost is None:
            lost = self._lost = self.loop.create_future()
            if self.closed:
                lost.set_result(None)
        return lost

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

    def disconnected(self) -> bool:
        """Whether written bytes can no longer reach the client (closed or closing)."""
        return self.closed or self.transport.is_closing()

    # -- writing --------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Write ``data`` now (after anything still held by `write_soon`)."""
        if self.closed:
            return
        held = self._held
        if held:
            held.append(data)
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
        if held is None:
            held = self._held = []
            self.loop.call_soon(self.flush)
        held += pieces
        self._held_size += size
        if self._held_size >= _HOLD_LIMIT:
            self.flush()

    def flush(self) -> None:
        """Send what `write_soon` holds."""
        held = self._held
        if held:
            self._held = None
            size = self._held_size
            self._held_size = 0
            if self.closed:
                return
            if (size >= _SCATTER_MIN and self._fd >= 0 and len(held) <= _SCATTER_MAX
                    and not self.transport.get_write_buffer_size()):
                self._scatter(held, size)
            else:
                self.transport.write(b''.join(held))

    def discard(self) -> None:
        """Drop what is held (the connection is aborted)."""
        self._held = None
        self._held_size = 0

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

    async def sendfile(self, file: BinaryIO, offset: int, count: int) -> Optional[int]:
        """Send ``count`` bytes of ``file`` from ``offset`` with ``loop.sendfile``: the bytes
        sent, or ``None`` (nothing sent) when it cannot be used here (TLS, no socket, an event
        loop without it).

        Raises:
            ClientDisconnected: The client went away (the connection is aborted).
        """
        loop = self.loop
        transport = self.transport
        if (type(loop) in _NO_SENDFILE or transport.get_extra_info('sslcontext') is not None
                or transport.get_extra_info('socket') is None):
            return None
        self.flush()  # the head (and anything held) must precede the file's bytes
        if self.disconnected():
            raise ClientDisconnected('the client closed the connection')
        try:
            return await loop.sendfile(transport, file, offset, count, fallback=False)
        except NotImplementedError:
            _NO_SENDFILE.add(type(loop))
            return None
        except ConnectionError as exc:
            self.abort()
            raise ClientDisconnected('the client closed the connection') from exc
        except RuntimeError:
            # SendfileNotAvailableError (a RuntimeError) or a transport that does not support
            # it: raised before any byte was sent, so reads can take over from offset.
            return None

    # -- the exchange ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close once the written data has been sent."""
        self._exchange.close()

    def abort(self) -> None:
        """Close at once, discarding unsent data."""
        self._exchange.abort()

    def response_finished(self, response: Response) -> None:
        self._exchange.response_finished(response)

    def upgrade(self) -> UpgradedStream:
        return self._exchange.upgrade()

    def cancel_on_disconnect(self) -> None:
        self._exchange.cancel_on_disconnect()

    def detach(self) -> None:
        self._exchange.detach()
    def set_handler_timeout(self, seconds: float) -> None:
        self._exchange.set_handler_timeout(seconds)
