"""What the server knows about one client connection, shared by its requests."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Optional, Union

Address = Union[tuple[str, int], str, None]


class Connection:
    """One client connection.

    Attributes:
        client: The peer address: ``(host, port)`` for TCP; ``None`` on UNIX sockets, where
            the peer has no address.
        server: The local address the client connected to.
        scheme: ``'https'`` on TLS listeners, else ``'http'``.
        state: A namespace for your own per-connection data (set it in ``on_connect``).
        requests: How many requests this connection has started.
    """

    __slots__ = ('client', 'server', 'scheme', 'state', 'requests', '_transport')

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self.client: Address = _address(transport.get_extra_info('peername'))
        self.server: Address = _address(transport.get_extra_info('sockname'))
        self.scheme = 'https' if transport.get_extra_info('sslcontext') else 'http'
        self.state = SimpleNamespace()
        self.requests = 0

    @property
    def client_host(self) -> Optional[str]:
        """The client's IP address, or ``None`` on UNIX sockets."""
        return self.client[0] if isinstance(self.client, tuple) else None

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
