"""A WebSocket client for the in-process test client, built on the same sans-IO codec."""

from __future__ import annotations

import base64
import json as jsonlib
import os
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional, Union

from ..http.deflate import Deflater, Inflater, parse_extensions
from ..http.handshake import accept_key
from ..http.websocket import (
    BINARY,
    CLOSE,
    PONG,
    TEXT,
    Close,
    Data,
    Event,
    FrameReader,
    Ping,
    Pong,
    close_payload,
    encode_frame,
)
from ..websocket_io import WebSocketClosed
from .client import HeadersArg, TestResponse, build_request

if TYPE_CHECKING:
    from .client import TestClient, TestConnection


class WebSocketRejected(Exception):
    """The server did not answer the handshake with ``101 Switching Protocols``.

    Attributes:
        response: The response it sent instead.
    """

    def __init__(self, response: TestResponse) -> None:
        super().__init__(f'WebSocket handshake answered with {response.status}')
        self.response = response


class TestWebSocket:
    """The client's end of a WebSocket connection to the application (see
    `TestClient.websocket`). Frames it sends are masked, as a client's must be.

    Attributes:
        response: The ``101 Switching Protocols`` response.
        subprotocol: The subprotocol the server agreed, or `None`.
        compressed: Whether permessage-deflate was agreed.
        close_code: The code of the server's close frame, once received.
    """

    __test__ = False

    def __init__(self, connection: TestConnection, response: TestResponse, data: bytes) -> None:
        self.connection = connection
        self.response = response
        self.subprotocol = response.header('sec-websocket-protocol')
        agreed = dict(parse_extensions(response.header('sec-websocket-extensions') or ''))
        params = agreed.get('permessage-deflate')
        self.compressed = params is not None
        self._deflater: Optional[Deflater] = None
        inflater = None
        if params is not None:
            self._deflater = Deflater('client_no_context_takeover' in params)
            inflater = Inflater('server_no_context_takeover' in params)
        self._reader = FrameReader(1 << 30, require_mask=False, inflater=inflater)
        self._events: deque[Event] = deque()
        self._parts: list[Union[str, bytes]] = []
        self.close_code: Optional[int] = None
        if data:
            self._parse(data)

    # -- sending --------------------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        """Send raw bytes (e.g. a malformed frame)."""
        self.connection.send(data)

    def send_frame(self, opcode: int, payload: bytes = b'', *, fin: bool = True,
                   rsv1: bool = False, mask: bool = True) -> None:
        """Send one frame as given (no compression)."""
        self.connection.send(encode_frame(opcode, payload, fin=fin, rsv1=rsv1,
                                          mask=os.urandom(4) if mask else None))

    async def send(self, message: Union[str, bytes]) -> None:
        """Send a text (`str`) or binary message, compressed if that was agreed."""
        opcode = TEXT if isinstance(message, str) else BINARY
        payload = message.encode() if isinstance(message, str) else bytes(message)
        if self._deflater is not None:
            self.send_frame(opcode, self._deflater.deflate(payload), rsv1=True)
        else:
            self.send_frame(opcode, payload)

    async def send_json(self, value: Any) -> None:
        await self.send(jsonlib.dumps(value))

    # -- receiving ------------------------------------------------------------------------------

    def _parse(self, data: bytes) -> None:
        for event in self._reader.feed(data):
            if isinstance(event, Data):
                self._parts.append(event.data)
                if event.fin:
                    joined = ('' if event.text else b'').join(self._parts)  # type: ignore
                    self._parts = []
                    self._events.append(Data(event.text, joined, True))
            else:
                self._events.append(event)

    async def receive_event(self, timeout: Optional[float] = None) -> Event:
        """The next frame event: a whole message (`Data`), `Ping`, `Pong` or `Close`.

        Raises:
            ConnectionError: The server closed the connection without a close frame.
            TimeoutError: Nothing arrived in time.
        """
        while not self._events:
            data = await self.connection.receive(timeout)
            if data:
                self._parse(data)
            elif self.connection.closed:
                raise ConnectionError('the server closed the connection')
        return self._events.popleft()

    async def receive(self, timeout: Optional[float] = None) -> Union[str, bytes]:
        """The next message; pings are answered on the way.

        Raises:
            WebSocketClosed: The server sent a close frame (answered here).
        """
        while True:
            event = await self.receive_event(timeout)
            if isinstance(event, Data):
                return event.data
            if isinstance(event, Pong):
                continue
            if isinstance(event, Ping):
                self.send_frame(PONG, event.data)
                continue
            assert isinstance(event, Close)
            self.close_code = event.code
            self.send_frame(CLOSE, b'' if event.code == 1005 else close_payload(event.code))
            raise WebSocketClosed(event.code, event.reason)

    async def receive_json(self, timeout: Optional[float] = None) -> Any:
        return jsonlib.loads(await self.receive(timeout))

    async def close(self, code: int = 1000, reason: str = '') -> Close:
        """Send a close frame; return the server's answer (messages before it are dropped)."""
        self.send_frame(CLOSE, close_payload(code, reason))
        return await self.wait_close()

    async def wait_close(self, timeout: Optional[float] = None) -> Close:
        """Wait for the server's close frame (skipping anything before it) and return it."""
        while True:
            event = await self.receive_event(timeout)
            if isinstance(event, Close):
                self.close_code = event.code
                return event

    @property
    def closed(self) -> bool:
        """Whether the server closed the TCP connection."""
        return self.connection.closed


async def connect(
    client: TestClient, path: str, *, headers: HeadersArg = None,
    subprotocols: tuple[str, ...] = (), compress: bool = False,
) -> TestWebSocket:
    """Open a WebSocket to ``path`` on a new connection of ``client``.

    Raises:
        WebSocketRejected: The handshake was not answered with 101.
    """
    key = base64.b64encode(os.urandom(16)).decode()
    items: list[tuple[str, str]] = list(
        headers.items() if isinstance(headers, Mapping) else headers or [])
    items += [('Upgrade', 'websocket'), ('Connection', 'Upgrade'),
              ('Sec-WebSocket-Key', key), ('Sec-WebSocket-Version', '13')]
    if subprotocols:
        items.append(('Sec-WebSocket-Protocol', ', '.join(subprotocols)))
    if compress:
        items.append(('Sec-WebSocket-Extensions', 'permessage-deflate; client_max_window_bits'))
    connection = client.connect()
    connection.send(build_request('GET', path, headers=items))
    response = await connection.read_response()
    if response.status != 101:
        raise WebSocketRejected(response)
    assert response.header('sec-websocket-accept') == accept_key(key)
    data, connection._received = connection._received, b''
    return TestWebSocket(connection, response, data)
