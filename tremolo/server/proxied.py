"""Listeners behind a PROXY protocol load balancer: read the header, then serve HTTP.

A `ProxyHeaderProtocol` is the first protocol of each connection on such a listener. It feeds
the sans-IO `tremolo.http.proxy_protocol.ProxyHeaderReader` until the header is complete, then
hands the transport to a new `HTTPProtocol` (``transport.set_protocol``, so that nothing stands
between the socket and HTTP afterwards) together with the header and the bytes that followed
it. A connection without a valid header within ``header_timeout`` is closed without an answer:
the specification forbids answering one (proxy-protocol.txt §2), and such a peer is not the
proxy this listener expects.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Optional

from ..http.proxy_protocol import ProxyHeaderReader, ProxyProtocolError
from .protocol import HTTPProtocol

if TYPE_CHECKING:
    from .state import ServerState

logger = logging.getLogger('tremolo')


class ProxyHeaderProtocol(asyncio.Protocol):
    """Reads the PROXY protocol header of one connection, then hands it to HTTP.

    While it waits, it is tracked like every connection (a `tremolo.types.Tracked`): its
    deadline is checked, and a server that stops closes it.
    """

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.transport: Any = None
        self.closed = False
        #: Never counted against ``max_connections_per_ip``: its `HTTPProtocol` is.
        self.counted_host: Optional[str] = None
        self._reader = ProxyHeaderReader()
        self._deadline = 0.0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.state.track(self)
        self._deadline = self.state.loop.time() + self.state.options.header_timeout
        if self.state.closing:
            self.abort()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            header = self._reader.feed(data)
        except ProxyProtocolError as exc:
            logger.debug('closed a connection from %s: %s',
                         self.transport.get_extra_info('peername'), exc)
            self.abort()
            return
        if header is None:
            return
        self.closed = True
        self.state.untrack(self)
        protocol = HTTPProtocol(self.state)
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport, header)
        rest = self._reader.rest
        if rest and not protocol.closing:
            protocol.data_received(rest)

    def eof_received(self) -> Optional[bool]:
        return False  # closed before the header was complete: nothing to answer

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.closed = True
        self.state.untrack(self)

    # -- what the registry asks of every connection ---------------------------------------------

    def check_deadline(self, now: float) -> None:
        if not self.closed and now >= self._deadline:
            logger.debug('closed a connection from %s: no PROXY protocol header in time',
                         self.transport.get_extra_info('peername'))
            self.abort()

    def shutdown(self) -> None:
        self.abort()

    def cancel(self) -> None:
        self.abort()

    def close(self) -> None:
        self.abort()  # nothing was written: nothing to wait for

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            self.state.untrack(self)
            self.transport.abort()
