"""The timeouts of a connection: how long it may wait, how fast the client must send, how long
a handler may run.

No timer is armed per request: a connection's `Deadlines` are floats (free to set), and the
worker's sweep (`tremolo.server.state.ServerState.sweep`) checks every connection once a
second, so a timeout fires up to a second late. `Deadlines` has no clock of its own: every
method takes the current time, which keeps it a plain calculation (its tests use a fake clock).

- A request head is due within ``header_timeout``: counted from the connection for its first
  request, and from the first byte of the head between keep-alive requests (before that byte,
  ``keepalive_timeout`` applies). Late: ``408`` and close, or a silent close if nothing came.
- A head or a body must arrive at ``min_data_rate`` bytes per second or faster, on average
  since it began, once ``min_data_rate_grace`` seconds have passed. Time during which the
  server itself does not read (backpressure, waiting to send ``100 Continue``) is not counted.
  This cuts off slowloris clients (a head trickled a byte at a time) and slow-POST ones.
- A request may take ``handler_timeout`` seconds from its head to the end of its response;
  then its handler is cancelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from ..options import Options

# What `Deadlines.check` finds.
ON_TIME = 0
HANDLER_TIMEOUT = 1  # the handler ran out of handler_timeout: cancel it
BODY_TOO_SLOW = 2  # the body arrives below min_data_rate: fail its reads with 408
HEAD_TOO_SLOW = 3  # the head arrives below min_data_rate: 408 and close (slowloris)
HEAD_TIMEOUT = 4  # the head is not complete within header_timeout: 408 and close
IDLE_TIMEOUT = 5  # nothing came in time (or room is needed at max_connections): close

# What the connection's deadline is for.
_IDLE = 1  # between requests (keep-alive)
_HEAD = 2  # a request head


class Deadlines:
    """The deadlines of one connection, as times of the event loop's clock.

    Args:
        options: The server's options (the timeouts and the minimum data rate).
    """

    __slots__ = ('_options', '_deadline', '_kind', '_rate_since', '_paused_since',
                 '_handler_deadline')

    def __init__(self, options: Options) -> None:
        self._options = options
        self._deadline = 0.0
        self._kind = 0
        # The minimum data rate: when the measured read (a head or a body) began (None: no
        # read is measured), and since when reading is paused by backpressure (that time is
        # not the client's).
        self._rate_since: Optional[float] = None
        self._paused_since: Optional[float] = None
        self._handler_deadline = 0.0

    # -- what happens on the connection ---------------------------------------------------------

    def connected(self, now: float) -> None:
        """The first request head is due within ``header_timeout`` of the connection."""
        self._deadline = now + self._options.header_timeout
        self._kind = _HEAD

    def head_pending(self, now: float) -> None:
        """Part of a head has arrived: it is due within ``header_timeout`` of its first byte,
        at the minimum data rate."""
        if self._kind != _HEAD:
            self._deadline = now + self._options.header_timeout
            self._kind = _HEAD
        if self._rate_since is None and self._options.min_data_rate:
            self._rate_since = now

    def request_started(self, now: float, body: bool, expect_continue: bool) -> None:
        """A head is complete: the handler's time starts, and the body's rate (unless the
        client waits for ``100 Continue`` before sending it)."""
        options = self._options
        self._deadline = self._handler_deadline = 0.0
        self._rate_since = self._paused_since = None
        self._kind = 0
        if options.handler_timeout:
            self._handler_deadline = now + options.handler_timeout
        if body and options.min_data_rate and not expect_continue:
            self._rate_since = now

    def body_invited(self, now: float) -> None:
        """``100 Continue`` was sent: the body may come now, at the minimum data rate."""
        if self._options.min_data_rate:
            self._rate_since = now

    def body_ended(self) -> None:
        """The body is complete, or will not be read any further: its rate is not watched."""
        self._rate_since = self._paused_since = None

    def request_ended(self) -> None:
        """The response is complete: the handler's time and the body's rate stop."""
        self._handler_deadline = 0.0
        self._rate_since = self._paused_since = None

    def idle(self, now: float) -> None:
        """The response is complete and the connection waits for the next request, for
        ``keepalive_timeout`` (what `request_ended` does is done too)."""
        self._deadline = now + self._options.keepalive_timeout
        self._kind = _IDLE
        self._handler_deadline = 0.0
        self._rate_since = self._paused_since = None

    def upgraded(self) -> None:
        """The connection speaks another protocol, which keeps its own time."""
        self._deadline = self._handler_deadline = 0.0
        self._rate_since = None

    def reading_paused(self, now: float) -> None:
        """The server stopped reading (backpressure): the client's rate is not measured."""
        if self._rate_since is not None:
            self._paused_since = now

    def reading_resumed(self, now: float) -> None:
        if self._paused_since is not None:
            if self._rate_since is not None:
                self._rate_since += now - self._paused_since
            self._paused_since = None

    def handler_timeout(self, started: float, seconds: float) -> None:
        """The current request (its head complete at ``started``) has ``seconds`` to end its
        response instead of ``handler_timeout`` (0: no limit): a route's own limit."""
        self._handler_deadline = started + seconds if seconds else 0.0

    def handler_cancelled(self) -> None:
        """The handler was cancelled for running out of time: once is enough."""
        self._handler_deadline = 0.0

    # -- the sweep ------------------------------------------------------------------------------

    def check(self, now: float, *, busy: bool, head_received: int,
              body_received: Optional[int], full: bool) -> int:
        """What is late at ``now``: `ON_TIME` or the timeout to enforce.

        Args:
            now: The event loop's time.
            busy: A request is being answered.
            head_received: Bytes of the next request head received so far.
            body_received: Bytes of the current request body received so far (``None``
                without a body).
            full: The worker serves ``max_connections``: connections idle between requests
                close at once, to make room.
        """
        if busy:
            if self._handler_deadline and now >= self._handler_deadline:
                return HANDLER_TIMEOUT
            if self._rate_since is not None and body_received is not None and self._too_slow(
                    self._rate_since, now, body_received):
                return BODY_TOO_SLOW
            return ON_TIME
        if self._rate_since is not None and head_received and self._too_slow(
                self._rate_since, now, head_received):
            return HEAD_TOO_SLOW
        if self._deadline and (now >= self._deadline or (self._kind == _IDLE and full)):
            if self._kind == _HEAD and head_received:
                return HEAD_TIMEOUT
            return IDLE_TIMEOUT
        return ON_TIME

    def _too_slow(self, since: float, now: float, received: int) -> bool:
        """Whether less than ``min_data_rate`` bytes per second arrived since the read began
        (``since``), once ``min_data_rate_grace`` has passed."""
        paused = self._paused_since
        elapsed = (now if paused is None else paused) - since
        options = self._options
        return (elapsed >= options.min_data_rate_grace
                and received < elapsed * options.min_data_rate)
