"""What the connections of one worker share: options, the dispatcher, the timeout sweep and
the connection limits."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..telemetry import Figures, Telemetry
from .logs import AccessLog

if TYPE_CHECKING:
    from ..http.forwarded import TrustedProxies
    from ..options import Options
    from ..types import Admitted, Dispatcher, Tracked

logger = logging.getLogger('tremolo')
access_logger = logging.getLogger('tremolo.access')

# What `ServerState.admit` decides for a new connection.
ADMITTED = 0
WAIT = 1  # over max_connections: held, unread, until a connection closes
REFUSED = 2  # over max_connections_per_ip: its request is answered 503

# What a connection is doing (``HTTPProtocol.activity``), for the server's figures.
IDLE = 0
ANSWERING = 1
UPGRADED = 2
STREAMING_EVENTS = 3


class ServerState:
    """What the connections of one worker share: options, dispatcher and the timeout sweep.

    Timeouts are checked by one sweep per second over all connections rather than a timer per
    request: a deadline is a float stored on the connection, which costs nothing to set.

    Limits: at ``max_connections`` the worker stops accepting (``pause_accepting``, set by the
    `tremolo.server.worker.Worker`) until a connection closes. The event loop accepts in
    batches, so a few connections may still arrive past the limit: they wait, unread, for a
    free slot.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, options: Options, dispatcher: Dispatcher
    ) -> None:
        self.loop = loop
        self.options = options
        self.dispatcher = dispatcher
        self.connections: set[Tracked] = set()
        name = options.server_name
        self.server_header = b'Server: %s\r\n' % name.encode('latin-1') if name else b''
        telemetry = getattr(dispatcher, 'telemetry', None)
        #: What the server tells about this worker (the dispatcher's, if it has one).
        self.telemetry: Telemetry = (telemetry if isinstance(telemetry, Telemetry)
                                     else Telemetry())
        #: Told the end of every exchange: the telemetry's list itself, so that listeners
        #: added later are called too (empty: the protocol does nothing more per request).
        self.listeners = self.telemetry.listeners
        self.access_log = options.access_log and access_logger.isEnabledFor(logging.INFO)
        if self.access_log:
            self.listeners.insert(0, AccessLog(options))
        self.telemetry.connect(self.figures)
        #: Requests started, and those rejected by the server itself by (status, kind).
        self.requests = 0
        self.rejected: dict[tuple[int, str], int] = {}
        #: Requests after which the worker asks to be replaced (0: never): max_requests,
        #: plus a random part of max_requests_jitter.
        self.recycle_at = 0
        if options.max_requests:
            self.recycle_at = options.max_requests + random.randint(
                0, options.max_requests_jitter)
        #: Called once when `recycle_at` requests have started (set by the worker).
        self.on_recycle: Optional[Callable[[], None]] = None
        #: The worker is being replaced (a reload, recycling): readiness answers 503.
        self.draining = False
        #: The paths answered by the server itself: ``{path: 'ready' or 'live'}``, or None.
        self.health: Optional[dict[bytes, str]] = None
        if options.readiness_path or options.liveness_path:
            self.health = {path.encode(): kind for path, kind in (
                (options.readiness_path, 'ready'), (options.liveness_path, 'live')) if path}
        #: The trusted proxies, compiled once; ``None`` when no peer is trusted (the common
        #: case costs one ``is None`` test per connection).
        self.trusted_proxies: Optional[TrustedProxies] = None
        if options.trusted_proxies:
            from ..http.forwarded import TrustedProxies

            self.trusted_proxies = TrustedProxies(
                options.trusted_proxies, options.forwarded_headers
            )
        self.closing = False
        self._sweeper: Optional[asyncio.TimerHandle] = None
        self._background: set[asyncio.Future[Any]] = set()
        #: Handlers that carry on after their response, their connection gone on without them
        #: (`tremolo.types.WriteChannel.detach`): the graceful stop waits for them too.
        self.detached: set[asyncio.Task[Any]] = set()
        self.sweep_interval = 1.0
        self.max_connections = options.max_connections
        self.max_per_ip = options.max_connections_per_ip
        self._per_ip: dict[str, int] = {}
        #: Connections waiting for a slot, oldest first, with their client's address.
        self.waiting: dict[Admitted, Optional[str]] = {}
        #: Whether the worker accepts connections (``False`` at ``max_connections``).
        self.accepting = True
        #: Called to stop and to resume accepting (no-ops without a listening server).
        self.pause_accepting: Optional[Callable[[], None]] = None
        self.resume_accepting: Optional[Callable[[], None]] = None

    def recycle(self) -> None:
        """``max_requests`` is reached: ask to be replaced (once)."""
        self.recycle_at = 0
        logger.info('served %d requests (max_requests): asking for a replacement',
                    self.requests)
        if self.on_recycle is not None:
            self.on_recycle()

    def count_rejected(self, status: int, kind: str) -> None:
        """A request the server answered itself (malformed, too big, too slow, refused)."""
        key = (status, kind)
        self.rejected[key] = self.rejected.get(key, 0) + 1

    def figures(self) -> Figures:
        """The server's figures in this worker (see `tremolo.Telemetry`)."""
        activities = [getattr(connection, 'activity', 0) for connection in self.connections]
        figures = Figures()
        figures.gauge('connections', len(activities))
        figures.gauge('requests_in_flight', activities.count(ANSWERING)
                      + activities.count(STREAMING_EVENTS))
        figures.gauge('upgraded_connections', activities.count(UPGRADED))
        figures.gauge('event_streams', activities.count(STREAMING_EVENTS))
        figures.count('requests', self.requests)
        for (status, kind), count in self.rejected.items():
            figures.count('rejected', count, (('status', str(status)), ('kind', kind)))
        return figures

    def run_in_background(self, coroutine: Any) -> None:
        """Run ``coroutine`` as a task that is kept referenced until it finishes."""
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def keep_detached(self, task: asyncio.Task[Any]) -> None:
        """Track a handler's task that carries on after its response (until it ends)."""
        self.detached.add(task)
        task.add_done_callback(self.detached.discard)

    def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(self.sweep_interval, self._sweep)

    def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    def _sweep(self) -> None:
        self.sweep()
        self._sweeper = self.loop.call_later(self.sweep_interval, self._sweep)

    def sweep(self) -> None:
        """Close the connections whose deadline has passed."""
        now = self.loop.time()
        for connection in list(self.connections):
            connection.check_deadline(now)

    def close_idle(self) -> None:
        """Stop taking requests: close idle connections, finish busy ones (graceful stop)."""
        self.closing = True
        waiting = list(self.waiting)
        self.waiting.clear()
        for unserved in waiting:
            unserved.close()
        for connection in list(self.connections):
            connection.shutdown()

    # -- limits ---------------------------------------------------------------------------------

    @property
    def full(self) -> bool:
        """Whether the worker serves ``max_connections`` connections."""
        return 0 < self.max_connections <= len(self.connections)

    def admit(self, connection: Admitted, host: Optional[str]) -> int:
        """Count a new connection from ``host`` (an IP address, or ``None``) in, or tell it to
        wait (`WAIT`) or to refuse (`REFUSED`)."""
        if self.max_connections and (
            self.waiting or len(self.connections) >= self.max_connections
        ):
            self.waiting[connection] = host
            self._pause()
            return WAIT
        return self._count_in(connection, host)

    def track(self, connection: Tracked) -> None:
        """Track a connection that is not admitted yet (its PROXY protocol header is read
        first): it gets the deadline checks and the shutdown of every connection."""
        self.connections.add(connection)

    def untrack(self, connection: Tracked) -> None:
        """Stop tracking a connection given to `track`."""
        self.connections.discard(connection)

    def _count_in(self, connection: Tracked, host: Optional[str]) -> int:
        self.connections.add(connection)
        if self.full:
            self._pause()
        if not self.max_per_ip:
            host = None
        if host is not None:
            count = self._per_ip.get(host, 0)
            if count >= self.max_per_ip:
                logger.debug('refusing a connection from %s: %d connections from there already',
                             host, count)
                return REFUSED
            self._per_ip[host] = count + 1
            connection.counted_host = host
        return ADMITTED

    def release(self, connection: Admitted) -> bool:
        """Count a closed connection out; ``False`` if it was still waiting for a slot."""
        if connection not in self.connections:
            self.waiting.pop(connection, None)
            return False
        self.connections.discard(connection)
        host = connection.counted_host
        if host is not None:
            count = self._per_ip.pop(host) - 1
            if count:
                self._per_ip[host] = count
        while self.waiting and not self.full and not self.closing:
            waiting = next(iter(self.waiting))
            waiting.admitted(self._count_in(waiting, self.waiting.pop(waiting)))
        if not self.accepting and not self.full and not self.closing:
            self.accepting = True
            if self.resume_accepting is not None:
                self.resume_accepting()
        return True

    def _pause(self) -> None:
        if self.accepting:
            self.accepting = False
            logger.debug('%d connections: not accepting until one closes',
                         self.max_connections)
            if self.pause_accepting is not None:
                self.pause_accepting()
