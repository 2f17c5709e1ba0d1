"""Testing tools: an in-process client and a real server on an ephemeral port.

- `TestClient` drives the real parser, protocol and application over an in-memory
  transport: no socket, deterministic, fast.
- `serve` starts the application on ``127.0.0.1`` on a free port in the running event
  loop, for tests that use a real HTTP client.

Example:
    ```python
    from tremolo.testing import TestClient

    async def test_hello():
        async with TestClient(app) as client:
            response = await client.get('/hello')
            assert response.status == 200
            assert response.text == 'Hello world!'
    ```
"""

from .client import TestClient, TestConnection, TestResponse
from .server import RunningServer, serve
from .transport import MemoryTransport
from .websocket import TestWebSocket, WebSocketRejected

__all__ = ['MemoryTransport', 'RunningServer', 'TestClient', 'TestConnection', 'TestResponse',
           'TestWebSocket', 'WebSocketRejected', 'serve']
