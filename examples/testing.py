"""Tests of the hello world application, as a project's own test file would hold them.

Run them with pytest and pytest-asyncio (``asyncio_mode = "auto"``).
"""

import aiohttp

from examples.hello import app
from tremolo.testing import TestClient, serve


# --8<-- [start:client]
async def test_hello():
    async with TestClient(app) as client:
        response = await client.get('/hello')
        assert response.status == 200
        assert response.text == 'Hello world!'
        assert response.headers['content-type'] == 'text/html; charset=latin-1'


async def test_keep_alive():
    async with TestClient(app) as client:
        connection = client.connect()  # one connection, several requests
        for _ in range(3):
            response = await connection.request('GET', '/hello')
            assert response.body == b'Hello world!'
        assert not connection.closed
# --8<-- [end:client]


# --8<-- [start:serve]
async def test_hello_over_a_real_socket():
    async with serve(app) as server:  # a free port on 127.0.0.1
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + '/hello') as response:
                assert response.status == 200
                assert await response.text() == 'Hello world!'
# --8<-- [end:serve]
