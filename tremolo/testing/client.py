"""The in-process test client."""

from __future__ import annotations

import asyncio
import json as jsonlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional, Union
from urllib.parse import urlencode

from ..http.cookies import parse_cookie_header
from ..launch import dispatcher_factory
from ..options import Options
from ..server.protocol import HTTPProtocol
from ..server.state import ServerState
from .parse import ResponseReader
from .transport import MemoryTransport

if TYPE_CHECKING:
    from ..types import Dispatcher
    from ..web.context import Globals
    from .websocket import TestWebSocket

HeadersArg = Union[Mapping[str, str], list[tuple[str, str]], None]


class TestResponse:
    """A response received by the test client.

    Attributes:
        status: The status code.
        reason: The reason phrase.
        version: ``'HTTP/1.1'``.
        header_list: Every header as ``(name, value)``, in order.
        body: The whole body (decoded from chunked if it was).
        chunks: The body as the pieces it arrived in (one per chunk for chunked bodies).
        interim: Status codes of interim responses received first (e.g. ``[100]``).
        trailers: Trailer fields of a chunked body.
    """

    __test__ = False  # not a test class, despite the name

    def __init__(self, reader: ResponseReader) -> None:
        head = reader.head
        assert head is not None
        self.status = head.status
        self.reason = head.reason
        self.version = head.version
        self.header_list = head.headers
        self.chunks = list(reader.chunks)
        self.body = b''.join(self.chunks)
        self.interim = [interim.status for interim in reader.interim]
        self.trailers = reader.trailers

    @property
    def headers(self) -> dict[str, str]:
        """Headers by lower-cased name (repeated ones joined with ``', '``)."""
        result: dict[str, str] = {}
        for name, value in self.header_list:
            key = name.lower()
            result[key] = f'{result[key]}, {value}' if key in result else value
        return result

    def header(self, name: str) -> Optional[str]:
        """One header's value (case-insensitive), or ``None``."""
        return self.headers.get(name.lower())

    @property
    def cookies(self) -> dict[str, str]:
        """The cookies set by ``Set-Cookie`` headers, by name."""
        cookies: dict[str, str] = {}
        for name, value in self.header_list:
            if name.lower() == 'set-cookie':
                cookies.update(parse_cookie_header(value.split(';', 1)[0]))
        return cookies

    @property
    def text(self) -> str:
        """The body decoded with the Content-Type charset (UTF-8 by default)."""
        charset = 'utf-8'
        for part in (self.header('content-type') or '').split(';')[1:]:
            key, _, value = part.strip().partition('=')
            if key.lower() == 'charset':
                charset = value.strip('"')
        return self.body.decode(charset)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return jsonlib.loads(self.body)

    def __repr__(self) -> str:
        return f'<TestResponse {self.status} {len(self.body)} bytes>'


def build_request(
    method: str, path: str, *, headers: HeadersArg = None, body: Union[bytes, str] = b'',
    json: Any = None, form: Optional[Mapping[str, str]] = None, host: str = 'testserver',
    chunked: bool = False,
) -> bytes:
    """The bytes of an HTTP/1.1 request (Host and Content-Length added when missing)."""
    items = list(headers.items() if isinstance(headers, Mapping) else headers or [])
    names = {name.lower() for name, _ in items}
    if json is not None:
        body = jsonlib.dumps(json).encode()
        if 'content-type' not in names:
            items.append(('Content-Type', 'application/json'))
    elif form is not None:
        body = urlencode(form).encode()
        if 'content-type' not in names:
            items.append(('Content-Type', 'application/x-www-form-urlencoded'))
    if isinstance(body, str):
        body = body.encode()
    if 'host' not in names:
        items.insert(0, ('Host', host))
    if chunked:
        items.append(('Transfer-Encoding', 'chunked'))
        body = (b'%X\r\n%s\r\n' % (len(body), body) if body else b'') + b'0\r\n\r\n'
    elif body or method in ('POST', 'PUT', 'PATCH'):
        if 'content-length' not in names and 'transfer-encoding' not in names:
            items.append(('Content-Length', str(len(body))))
    head = f'{method} {path} HTTP/1.1\r\n' + ''.join(f'{k}: {v}\r\n' for k, v in items)
    return head.encode('latin-1') + b'\r\n' + body


class TestConnection:
    """One client connection to the application, kept open across requests.

    Args:
        client: The `TestClient` it belongs to.
        peer: The client address the server sees.
        write_buffer_limit: Simulate a slow client: unread output above this pauses the
            server's writing until the test reads.
    """

    __test__ = False

    def __init__(self, client: TestClient, peer: Any = ('127.0.0.1', 40000),
                 write_buffer_limit: Optional[int] = None) -> None:
        assert client.state is not None, 'use the client inside "async with"'
        self.client = client
        self.protocol = HTTPProtocol(client.state)
        self.transport = MemoryTransport(
            self.protocol, peer=peer, write_buffer_limit=write_buffer_limit
        ).open()
        self._received = b''

    @property
    def closed(self) -> bool:
        """Whether the server closed the connection."""
        return self.transport.closed

    def send(self, data: bytes) -> None:
        """Send raw bytes to the server."""
        self.transport.send(data)

    def send_eof(self) -> None:
        """Shut down the client's sending side."""
        self.transport.send_eof()

    async def receive(self, timeout: Optional[float] = None) -> bytes:
        """The next bytes the server writes (``b''`` once it closed)."""
        await self.transport.wait(timeout or self.client.timeout)
        return self.transport.take_output()

    async def read_all(self, timeout: Optional[float] = None) -> bytes:
        """Everything the server writes until it closes the connection."""
        data = bytearray()
        while not self.transport.closed or self.transport.output:
            data += await self.receive(timeout)
        return bytes(data)

    async def read_response(self, method: str = 'GET', timeout: Optional[float] = None
                            ) -> TestResponse:
        """Read one complete response (after any interim ones).

        Raises:
            TimeoutError: The response did not complete in time.
            ConnectionError: The server closed before the response was complete.
        """
        reader = ResponseReader(head_request=method == 'HEAD')
        reader.feed(self._received)
        while not reader.complete:
            data = await self.receive(timeout)
            if data:
                reader.feed(data)
            elif self.transport.closed:
                reader.feed_eof()
                if not reader.complete:
                    raise ConnectionError(
                        'the server closed the connection before the response was complete'
                    )
        self._received = reader.buffer
        return TestResponse(reader)

    async def request(self, method: str, path: str, **kwargs: Any) -> TestResponse:
        """Send a request (see `TestClient.request`) and read its response."""
        self.send(build_request(method, path, **kwargs))
        return await self.read_response(method)

    async def close(self) -> None:
        """Close from the client side and let the server see it."""
        if not self.transport.closed:
            self.transport.close()
            await asyncio.sleep(0)


class TestClient:
    """Runs an application in process and sends it requests over in-memory connections.

    Use it as ``async with TestClient(app, **options) as client``: entering runs the
    ``on_worker_start`` hooks (an ASGI application's lifespan startup), leaving closes the
    connections and runs ``on_worker_stop`` (the lifespan shutdown).

    Args:
        app: The application: a Tremolo application or an ASGI 3 application.
        timeout: Seconds to wait for a response before failing.
        **options: Server options (`Options` fields).
    """

    __test__ = False

    def __init__(self, app: Any, *, timeout: float = 10.0, **options: Any) -> None:
        self.app = app
        self.timeout = timeout
        options.setdefault('access_log', False)
        self.settings = Options.from_kwargs(**options)
        #: The application running in the client (its `tremolo.types.Dispatcher`).
        self.runtime: Optional[Dispatcher] = None
        self.state: Optional[ServerState] = None
        self._connections: list[TestConnection] = []

    @property
    def globals(self) -> Globals:
        """The worker's `tremolo.Globals`, as the ``on_worker_start`` hooks left them."""
        assert self.runtime is not None, 'use the client inside "async with"'
        found: Optional[Globals] = getattr(self.runtime, 'globals', None)
        if found is None:
            raise TypeError('an ASGI application has no globals (see its lifespan state)')
        return found

    async def __aenter__(self) -> TestClient:
        loop = asyncio.get_running_loop()
        self.runtime = dispatcher_factory(self.app, self.settings)(loop)
        await self.runtime.startup()
        self.state = ServerState(loop, self.settings, self.runtime)
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        for connection in self._connections:
            await connection.close()
        await asyncio.sleep(0)
        if self.runtime is not None:
            await self.runtime.shutdown()

    def connect(self, peer: Any = ('127.0.0.1', 40000),
                write_buffer_limit: Optional[int] = None) -> TestConnection:
        """Open a connection (for keep-alive, pipelining or raw bytes)."""
        connection = TestConnection(self, peer, write_buffer_limit)
        self._connections.append(connection)
        return connection

    async def request(
        self, method: str, path: str, *, headers: HeadersArg = None,
        body: Union[bytes, str] = b'', json: Any = None,
        form: Optional[Mapping[str, str]] = None, chunked: bool = False,
    ) -> TestResponse:
        """Send one request on a new connection and return the response.

        Args:
            method: The HTTP method.
            path: The request target (path and query).
            headers: Extra headers.
            body: The body.
            json: A value to send as a JSON body.
            form: Fields to send as an urlencoded form.
            chunked: Send the body with the chunked transfer coding.
        """
        connection = self.connect()
        try:
            return await connection.request(
                method, path, headers=headers, body=body, json=json, form=form,
                chunked=chunked,
            )
        finally:
            await connection.close()
            self._connections.remove(connection)

    async def get(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request('GET', path, **kwargs)

    async def head(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request('HEAD', path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request('POST', path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request('PUT', path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request('PATCH', path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request('DELETE', path, **kwargs)

    async def options(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request('OPTIONS', path, **kwargs)

    async def websocket(
        self, path: str, *, headers: HeadersArg = None, subprotocols: tuple[str, ...] = (),
        compress: bool = False,
    ) -> TestWebSocket:
        """Open a WebSocket to ``path`` on a new connection.

        Args:
            path: The request target.
            headers: Extra handshake headers (e.g. ``Origin``).
            subprotocols: Subprotocols to offer.
            compress: Offer permessage-deflate.

        Raises:
            WebSocketRejected: The server did not answer with 101 (its response is attached).
        """
        from .websocket import connect

        return await connect(self, path, headers=headers, subprotocols=subprotocols,
                             compress=compress)

    async def raw(self, data: bytes, *, eof: bool = False, timeout: Optional[float] = None
                  ) -> bytes:
        """Send raw bytes on a new connection; return what the server writes until it closes
        (or until it stays silent for ``timeout`` seconds).

        Args:
            data: The bytes to send.
            eof: Shut down the client's sending side after them.
            timeout: Seconds of silence after which to stop waiting.
        """
        connection = self.connect()
        connection.send(data)
        if eof:
            connection.send_eof()
        output = bytearray()
        try:
            while not connection.transport.closed or connection.transport.output:
                output += await connection.receive(timeout or 1.0)
        except TimeoutError:
            pass
        await connection.close()
        self._connections.remove(connection)
        return bytes(output)
