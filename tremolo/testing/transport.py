"""An in-memory transport: what a socket would do, without one."""

from __future__ import annotations

import asyncio
from typing import Any, Optional


class MemoryTransport(asyncio.Transport):
    """Connects a protocol to a test instead of a socket.

    Data the test sends while reading is paused waits, as it would in the kernel, and is
    delivered when the protocol resumes reading. With ``write_buffer_limit`` set, unread output
    above the limit pauses the protocol's writing until the test reads (a slow client).

    Args:
        protocol: The protocol (``connection_made`` is called by `open`).
        peer: The client address reported to the server.
        sockname: The server address reported to the server.
        write_buffer_limit: Bytes of unread output before writing pauses (``None``: never).
    """

    def __init__(
        self, protocol: asyncio.Protocol, *, peer: Any = ('127.0.0.1', 40000),
        sockname: Any = ('127.0.0.1', 8000), write_buffer_limit: Optional[int] = None,
    ) -> None:
        super().__init__()
        self.protocol = protocol
        self.output = bytearray()
        self.reading = True
        self.aborted = False
        self.write_paused = False
        self._closing = False
        self._lost = False
        self._pending: list[bytes] = []
        self._pending_eof = False
        self._write_limit = write_buffer_limit
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._extra = {'peername': peer, 'sockname': sockname, 'sslcontext': None,
                       'socket': None}

    def open(self) -> MemoryTransport:
        self.protocol.connection_made(self)
        return self

    # -- the server's side ------------------------------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def write(self, data: Any) -> None:
        if self._closing:
            return
        self.output += data
        self._changed.set()
        if (self._write_limit is not None and not self.write_paused
                and len(self.output) > self._write_limit):
            self.write_paused = True
            self.protocol.pause_writing()

    def writelines(self, list_of_data: Any) -> None:
        self.write(b''.join(list_of_data))

    def can_write_eof(self) -> bool:
        return False

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._loop.call_soon(self._lose)

    def abort(self) -> None:
        self.aborted = True
        self.close()

    def _lose(self) -> None:
        if not self._lost:
            self._lost = True
            self._changed.set()
            self.protocol.connection_lost(None)

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        if self.reading:
            return
        self.reading = True
        pending, self._pending = self._pending, []
        for data in pending:
            if self._closing or not self.reading:
                self._pending.append(data)
                continue
            self.protocol.data_received(data)
        if self._pending_eof and self.reading and not self._pending:
            self._pending_eof = False
            self.send_eof()

    def is_reading(self) -> bool:
        return self.reading

    def get_write_buffer_size(self) -> int:
        return len(self.output) if self._write_limit is not None else 0

    def set_write_buffer_limits(self, high: Optional[int] = None, low: Optional[int] = None
                                ) -> None:
        self._write_limit = high

    # -- the test's side ------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the server closed the connection."""
        return self._lost

    def send(self, data: bytes) -> None:
        """Deliver ``data`` from the client (queued while the server is not reading)."""
        if self._closing or not data:
            return
        if not self.reading or self._pending:
            self._pending.append(data)
            return
        self.protocol.data_received(data)

    def send_eof(self) -> None:
        """The client shuts down its sending side."""
        if self._closing:
            return
        if not self.reading or self._pending:
            self._pending_eof = True
            return
        if not self.protocol.eof_received():
            self.close()

    def take_output(self) -> bytes:
        """Everything the server wrote since the last call (the client reads it)."""
        data = bytes(self.output)
        del self.output[:]
        if self.write_paused:
            self.write_paused = False
            self.protocol.resume_writing()
        return data

    async def wait(self, timeout: float) -> None:
        """Wait until the server writes or closes (or ``timeout`` passes).

        Raises:
            TimeoutError: Nothing happened in time.
        """
        self._changed.clear()
        if self.output or self._lost:
            return
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f'the server sent nothing for {timeout} s') from None
