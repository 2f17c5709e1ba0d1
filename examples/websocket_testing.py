"""Testing a WebSocket handler in process with the test client."""

from examples.websocket_chat import app
from tremolo.testing import TestClient


async def test_chat():
    async with TestClient(app) as client:
        ws = await client.websocket('/chat?name=ann')
        assert await ws.receive() == 'ann joined'
        await ws.send('hello')
        assert await ws.receive() == 'ann: hello'
        await ws.close()
