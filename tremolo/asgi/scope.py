"""The connection scope of each request, as the ASGI spec (version 2.5) names its keys.

Everything that is the same for every request of a worker (the ``asgi`` versions, the
extensions offered, the root path) is built once; a request adds only what is its own. The
client, the scheme and the server come from the connection as the server established it
(through the PROXY protocol and the trusted proxies' forwarding fields). Header names are
lower-cased, as the spec requires; a field sent several times arrives as one, its values
combined with ``', '`` (``'; '`` for ``cookie``), as RFC 9110 §5.3 allows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    import ssl

    from ..connection import Connection
    from ..request import Request

#: ``scope['asgi']``: ASGI 3, spec version 2.5 (``websocket.close`` reasons, ``send`` raising
#: ``OSError`` once the client is gone, ``websocket.http.response``).
ASGI_VERSIONS = {'version': '3.0', 'spec_version': '2.5'}

#: The extensions every HTTP scope offers (``tls`` is added on TLS connections).
HTTP_EXTENSIONS = ('http.response.pathsend', 'http.response.trailers',
                   'http.response.early_hint')
#: The extensions every WebSocket scope offers.
WEBSOCKET_EXTENSIONS = ('websocket.http.response',)

# RFC 8446 §4.2.1 and RFC 5246 §6.2.1: the protocol versions as the tls extension gives them.
_TLS_VERSIONS = {'TLSv1': 0x0301, 'TLSv1.1': 0x0302, 'TLSv1.2': 0x0303, 'TLSv1.3': 0x0304}
# RFC 4514 §3: the attribute types with a short name in a distinguished name's string form.
_SHORT_NAMES = {
    'commonName': 'CN', 'localityName': 'L', 'stateOrProvinceName': 'ST',
    'organizationName': 'O', 'organizationalUnitName': 'OU', 'countryName': 'C',
    'streetAddress': 'STREET', 'domainComponent': 'DC', 'userId': 'UID',
}


class ScopeBuilder:
    """Makes the scopes of one worker's requests.

    Args:
        root_path: The ``root_path`` option: the prefix a proxy strips before the request
            reaches the server, given back to the application.
        mount: The prefix under which a Tremolo application mounts the ASGI application
            (its requests' paths keep it: ASGI paths are full paths).
        state: The lifespan state, copied into every scope; ``None`` without lifespan.
    """

    __slots__ = ('root_path', 'path_prefix', 'raw_prefix', 'state', 'http_extensions',
                 'websocket_extensions', 'tls')

    def __init__(self, root_path: str = '', mount: str = '',
                 state: Optional[dict[str, Any]] = None) -> None:
        self.root_path = root_path + mount
        self.path_prefix = root_path
        self.raw_prefix = root_path.encode('utf-8')
        self.state = state
        self.http_extensions: dict[str, Any] = {name: {} for name in HTTP_EXTENSIONS}
        self.websocket_extensions: dict[str, Any] = {name: {} for name in WEBSOCKET_EXTENSIONS}
        #: The ``tls`` extension of each open TLS connection (see `connection_made`).
        self.tls: dict[Connection, dict[str, Any]] = {}

    def http(self, request: Request, mounted_at: Optional[str] = None) -> dict[str, Any]:
        """The scope of an HTTP request (``mounted_at``: where the mount that routed it
        matched, when it is not the builder's own prefix)."""
        connection = request.connection
        server = connection.server
        query = request.query_string
        scope = {
            'type': 'http',
            'asgi': ASGI_VERSIONS,
            'http_version': request.version,
            'method': request.method,
            'scheme': connection.scheme if not connection.trusted else request.scheme,
            'path': self.path_prefix + request.path if self.path_prefix else request.path,
            'raw_path': self.raw_prefix + request.raw_path,
            'query_string': query.encode('ascii') if query else b'',
            'root_path': self.root_path if mounted_at is None else mounted_at,
            'headers': list(request.head.headers.items()),
            'client': connection.client if not connection.trusted else request.client,
            'server': server if type(server) is not str else (server, None),
            'extensions': self.http_extensions,
        }
        if connection.scheme == 'https' and self.tls:
            tls = self.tls.get(connection)
            if tls is not None:
                scope['extensions'] = {**self.http_extensions, 'tls': tls}
        if self.state is not None:
            scope['state'] = self.state.copy()
        return scope

    def websocket(self, request: Request, subprotocols: list[str],
                  mounted_at: Optional[str] = None) -> dict[str, Any]:
        """The scope of a WebSocket handshake."""
        scope = self.http(request, mounted_at)
        del scope['method']
        scope['type'] = 'websocket'
        scope['scheme'] = 'wss' if scope['scheme'] == 'https' else 'ws'
        scope['subprotocols'] = subprotocols
        tls = scope['extensions'].get('tls')
        scope['extensions'] = (self.websocket_extensions if tls is None
                               else {**self.websocket_extensions, 'tls': tls})
        return scope

    # -- TLS connections --------------------------------------------------------------------------

    def connection_made(self, connection: Connection) -> None:
        """Work out the ``tls`` extension of a TLS connection once, for all its requests."""
        ssl_object = connection.extra_info('ssl_object')
        if ssl_object is not None:
            self.tls[connection] = tls_extension(ssl_object)

    def connection_lost(self, connection: Connection) -> None:
        self.tls.pop(connection, None)


def tls_extension(ssl_object: ssl.SSLObject) -> dict[str, Any]:
    """The ``tls`` extension of a connection (ASGI TLS extension, version 0.2).

    The server's certificate and the cipher suite's number are not told by Python's ``ssl``
    module: they are ``None``, which the extension allows.
    """
    import ssl  # only TLS connections get here

    chain = []
    name = None
    der = ssl_object.getpeercert(binary_form=True)
    if der:
        chain.append(ssl.DER_cert_to_PEM_cert(der))
        name = distinguished_name(ssl_object.getpeercert() or {})
    return {
        'server_cert': None,
        'client_cert_chain': chain,
        'client_cert_name': name,
        'client_cert_error': None,  # a certificate that fails verification fails the handshake
        'tls_version': _TLS_VERSIONS.get(ssl_object.version() or ''),
        'cipher_suite': None,
    }


def distinguished_name(certificate: dict[str, Any]) -> Optional[str]:
    """The subject of a certificate (as ``SSLSocket.getpeercert()`` gives it) in the string
    form of RFC 4514: the last relative distinguished name first."""
    subject = certificate.get('subject')
    if not subject:
        return None
    parts = []
    for rdn in reversed(subject):
        parts.append('+'.join(f'{_SHORT_NAMES.get(key, key)}={_escape(value)}'
                              for key, value in rdn))
    return ','.join(parts)


def _escape(value: str) -> str:
    # RFC 4514 §2.4: these characters are escaped with a backslash, and so are a leading
    # space or '#' and a trailing space.
    escaped = ''.join('\\' + char if char in ',+"\\<>;=' else char for char in value)
    if escaped[:1] in (' ', '#'):
        escaped = '\\' + escaped
    if escaped.endswith(' ') and not escaped.endswith('\\ '):
        escaped = escaped[:-1] + '\\ '
    return escaped
