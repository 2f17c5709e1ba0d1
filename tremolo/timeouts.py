"""The timeouts of a connection: how long it may wait, how fast the client must send, how long
a handler may run.

No timer is armed per request: a connection stores its deadlines as floats (free to set) and
the worker's sweep (`tremolo.state.ServerState.sweep`) calls `Timeouts.check_deadline` on
every connection once a second, so a timeout fires up to a second late.

- A request head is due within ``header_timeout``: counted from the connection for its first
  request, and from the first byte of the head between keep-alive requests (before that byte,
  ``keepalive_timeout`` applies). Late: ``408`` and close, or a silent close if nothing came.
- A head or a body must arrive at ``min_data_rate`` bytes per second or faster, on average
  since it began, once ``min_data_rate_grace`` seconds have passed. Time during which the
  server itself does not read (backpressure, waiting to send ``100 Continue``) is not counted.
  This cuts off slowloris clients (a head trickled a byte at a time) and slow-POST ones.
- A request may take ``handler_timeout`` seconds from its head to the end of its response;
  then the handler is cancelled (`Timeouts.cancel`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Optional

from .exceptions import RequestTimeout

if TYPE_CHECKING:
    import asyncio

    from .body_stream import BodyStream
    from .options import Options
    from .request import Request
    from .state import ServerState

logger = logging.getLogger('tremolo')

# What the deadline of a connection is for.
IDLE = 1  # between requests (keep-alive)
HEAD = 2  # a request head


class Timeouts:
    """The timeout side of `tremolo.protocol.HTTPProtocol`, which inherits it (the protocol
    holds the state, in slots: see `_init_timeouts`)."""

    __slots__ = ()

    def _init_timeouts(self) -> None:
        self._deadline = 0.0
        self._deadline_kind = 0
        # The minimum data rate: when the measured read (a head or a body) began (0: none),
        # and since when reading is paused by backpressure (that time is not the client's).
        self._rate_since = 0.0
        self._paused_since = 0.0
        self._handler_deadline = 0.0
        #: The handler was cancelled (a timeout, a forced stop): answer 503, not 500.
        self._cancelled = False

    if TYPE_CHECKING:  # provided by HTTPProtocol
        loop: asyncio.AbstractEventLoop
        options: Options
        state: ServerState
        closed: bool
        closing: bool
        connection: Any
        _buffer: bytes
        _request: Optional[Request]
        _body: Optional[BodyStream]
        _decoder: Any
        _task: Optional[asyncio.Task[None]]
        _upgraded: Any

        def close(self) -> None: ...
        def abort(self) -> None: ...
        def _reject(self, status: int, message: str) -> None: ...
        def pause_reading(self) -> None: ...

    def _set_deadline(self, seconds: float, kind: int) -> None:
        self._deadline = self.loop.time() + seconds
        self._deadline_kind = kind

    def cancel(self) -> None:
        """Stop the request in progress now: its handler is cancelled and answered 503 if its
        response has not started, else the connection is cut; an idle connection closes."""
        task = self._task
        self.closing = True
        if task is not None and not task.done():
            self._cancelled = True
            task.cancel()
        elif self._upgraded is not None or self._request is not None:
            self.abort()
        else:
            self.close()

    def check_deadline(self, now: float) -> None:
        """Enforce the timeouts and the minimum data rate (the sweep calls this every second)."""
        if self.closed:
            return
        if self._request is not None:
            if self._handler_deadline and now >= self._handler_deadline:
                logger.warning('%r took more than handler_timeout (%g s): cancelled',
                               self._request, self.options.handler_timeout)
                self._handler_deadline = 0.0
                self.cancel()
            elif self._rate_since and self._body is not None and self._too_slow(
                    now, self._body.received):
                # Slow POST: the handler gets a RequestTimeout (408) reading the body, and
                # the connection closes after the answer (the body is left unread).
                logger.debug('the request body from %s arrives too slowly',
                             self.connection.client)
                self._rate_since = 0.0
                self._decoder = None
                self.closing = True
                self.pause_reading()
                self._body.set_exception(RequestTimeout('the request body arrives too slowly'))
            return
        if self._rate_since and self._buffer and self._too_slow(now, len(self._buffer)):
            self._reject(408, 'the request head arrives too slowly')  # slowloris
        elif self._deadline and (now >= self._deadline or (
                self._deadline_kind == IDLE and self.state.full)):
            # At max_connections, connections idle between requests make room at once.
            if self._deadline_kind == HEAD and self._buffer:
                self._reject(408, 'timed out reading the request head')
            else:
                self.close()

    def _too_slow(self, now: float, received: int) -> bool:
        """Whether less than ``min_data_rate`` bytes per second arrived since the read began,
        once ``min_data_rate_grace`` has passed."""
        elapsed = (self._paused_since or now) - self._rate_since
        options = self.options
        return (elapsed >= options.min_data_rate_grace
                and received < elapsed * options.min_data_rate)
