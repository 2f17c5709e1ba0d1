"""What the connections of one worker share: options, the dispatcher, the timeout sweep."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from .http.forwarded import TrustedProxies
    from .options import Options
    from .protocol import HTTPProtocol
    from .types import Dispatcher

access_logger = logging.getLogger('tremolo.access')


class ServerState:
    """What the connections of one worker share: options, dispatcher and the timeout sweep.

    Timeouts are checked by one sweep per second over all connections rather than a timer per
    request: a deadline is a float stored on the connection, which costs nothing to set.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, options: Options, dispatcher: Dispatcher
    ) -> None:
        self.loop = loop
        self.options = options
        self.dispatcher = dispatcher
        self.connections: set[HTTPProtocol] = set()
        name = options.server_name
        self.server_header = b'Server: %s\r\n' % name.encode('latin-1') if name else b''
        self.access_log = options.access_log and access_logger.isEnabledFor(logging.INFO)
        #: The trusted proxies, compiled once; ``None`` when no peer is trusted (the common
        #: case costs one ``is None`` test per connection).
        self.trusted_proxies: Optional[TrustedProxies] = None
        if options.trusted_proxies:
            from .http.forwarded import TrustedProxies

            self.trusted_proxies = TrustedProxies(
                options.trusted_proxies, options.forwarded_headers
            )
        self.closing = False
        self._sweeper: Optional[asyncio.TimerHandle] = None
        self._background: set[asyncio.Future[Any]] = set()
        self.sweep_interval = 1.0

    def run_in_background(self, coroutine: Any) -> None:
        """Run ``coroutine`` as a task that is kept referenced until it finishes."""
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

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
        for connection in list(self.connections):
            connection.shutdown()
