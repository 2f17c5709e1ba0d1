"""What the server knows about one client connection, shared by its requests."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Optional, Union

if TYPE_CHECKING:  # the forwarding code (and ipaddress) loads only when a proxy is trusted
    from .http.forwarded import Forwarding, TrustedProxies
    from .http.proxy_protocol import ProxyHeader

Address = Union[tuple[str, int], str, None]

logger = logging.getLogger('tremolo')


class Connection:
    """One client connection.

    Attributes:
        client: The address of whoever sends the requests: ``(host, port)`` for TCP, ``None``
            on UNIX sockets, where the peer has no address. On a PROXY protocol listener, the
            client that the PROXY header names. (`Request.client` goes further, through the
            forwarding fields of trusted proxies.)
        peer: The address at the other end of the socket: the same as `client`, except on a
            PROXY protocol listener, where it is the proxy's.
        server: The local address the client connected to.
        scheme: ``'https'`` on TLS listeners (or when the PROXY header says the client used
            TLS), else ``'http'``.
        proxy_header: The PROXY protocol header the connection started with, or ``None``.
        trusted: Whether `client` is a trusted proxy, whose forwarding fields
            (``Forwarded``, ``X-Forwarded-For``...) `Request` reads.
        state: A namespace for your own per-connection data (set it in ``on_connect``).
        requests: How many requests this connection has started.
    """

    __slots__ = ('client', 'peer', 'server', 'scheme', 'proxy_header', 'trusted', 'state',
                 'requests', '_transport', '_proxies')

    def __init__(self, transport: Any, proxies: Optional[TrustedProxies] = None,
                 proxy_header: Optional[ProxyHeader] = None) -> None:
        self._transport = transport
        self.peer: Address = _address(transport.get_extra_info('peername'))
        self.client: Address = self.peer
        self.server: Address = _address(transport.get_extra_info('sockname'))
        self.scheme = 'https' if transport.get_extra_info('sslcontext') else 'http'
        self.proxy_header = proxy_header
        if proxy_header is not None and not proxy_header.local:
            self.client = proxy_header.source
            if proxy_header.destination is not None:
                self.server = proxy_header.destination
            if proxy_header.ssl:
                self.scheme = 'https'
        self._proxies = proxies if proxies is not None and proxies.trusts(
            self.client[0] if isinstance(self.client, tuple) else None) else None
        self.trusted = self._proxies is not None
        self.state = SimpleNamespace()
        self.requests = 0

    @property
    def client_host(self) -> Optional[str]:
        """The client's IP address, or ``None`` on UNIX sockets."""
        return self.client[0] if isinstance(self.client, tuple) else None

    def forwarding(self, headers: dict[bytes, bytes]) -> Forwarding:
        """Client, scheme and host of a request with ``headers`` on this connection, as the
        trusted proxies tell them (malformed fields are ignored, and logged at debug level)."""
        from .http.forwarded import Forwarding, MalformedForwarding, resolve

        proxies = self._proxies
        if proxies is None:
            return Forwarding(self.client, self.scheme, None)
        try:
            return resolve(self.client, self.scheme, headers, proxies)
        except (MalformedForwarding, UnicodeError) as exc:
            logger.debug('ignored the forwarding fields from %s: %s', self.client, exc)
            return Forwarding(self.client, self.scheme, None)

    def extra_info(self, name: str, default: Any = None) -> Any:
        """What the transport knows of the connection (``asyncio.BaseTransport.
        get_extra_info``): ``'ssl_object'`` on TLS connections, ``'socket'``, ..."""
        return self._transport.get_extra_info(name, default)

    def close(self) -> None:
        """Close the connection once the data written so far has been sent."""
        self._transport.close()

    def __repr__(self) -> str:
        return f'<Connection {self.client!r} -> {self.server!r}>'


def _address(value: Any) -> Address:
    if isinstance(value, (tuple, list)) and len(value) >= 2:
        return (str(value[0]), int(value[1]))
    if isinstance(value, (str, bytes)) and value:
        return value.decode() if isinstance(value, bytes) else value
    return None
