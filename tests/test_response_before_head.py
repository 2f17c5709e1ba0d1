"""Response.before_head: callbacks run just before the head, after the on_response hooks,
whatever sends the head (a result, a stream, a file, an error), awaited when they return an
awaitable; not for a 101, not once the head is out."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tremolo import Tremolo
from tremolo.testing import TestClient, serve


def make_app(order: list[str]) -> Tremolo:
    app = Tremolo()

    @app.on_response(priority=10)
    def outer(response):
        order.append('outer hook')

    @app.on_response(priority=90)
    def inner(request, response):
        order.append('inner hook')
        if request.path == '/from-hook':
            response.before_head(lambda: order.append('callback of a hook'))

    def mark(response, name):
        def callback():
            order.append(name)
            response.headers.add('X-Callback', name)
        return callback

    @app.route('/whole')
    async def whole(response, **server):
        response.before_head(mark(response, 'first'))
        response.before_head(mark(response, 'second'))
        return 'whole'

    @app.route('/stream')
    async def stream(response, **server):
        response.before_head(mark(response, 'stream'))
        yield 'a'
        yield 'b'

    @app.route('/from-hook')
    async def from_hook(**server):
        return 'x'

    @app.route('/waits')
    async def waits(response, **server):
        async def callback():
            await asyncio.sleep(0)
            order.append('awaited')
            response.headers['X-Awaited'] = 'yes'
            response.before_head(lambda: order.append('added while waiting'))

        response.before_head(callback)
        return 'waited'

    @app.route('/error')
    async def error(response, **server):
        response.before_head(mark(response, 'error'))
        raise RuntimeError('boom')

    @app.route('/late')
    async def late(response, **server):
        await response.write(b'started')
        with pytest.raises(RuntimeError, match='has been sent'):
            response.before_head(lambda: None)
        order.append('refused')

    return app


async def test_callbacks_run_after_the_hooks_in_order():
    order: list[str] = []
    async with TestClient(make_app(order)) as client:
        response = await client.get('/whole')
    assert order == ['inner hook', 'outer hook', 'first', 'second']
    assert response.text == 'whole'
    assert response.headers['x-callback'] == 'first, second'


async def test_a_streamed_response_runs_them_before_its_first_piece():
    order: list[str] = []
    async with TestClient(make_app(order)) as client:
        response = await client.get('/stream')
    assert order == ['inner hook', 'outer hook', 'stream']
    assert response.text == 'ab' and response.header('x-callback') == 'stream'


async def test_a_callback_registered_by_a_hook_runs_too():
    order: list[str] = []
    async with TestClient(make_app(order)) as client:
        await client.get('/from-hook')
    assert order == ['inner hook', 'outer hook', 'callback of a hook']


async def test_an_awaitable_is_awaited_and_what_it_adds_runs():
    order: list[str] = []
    async with TestClient(make_app(order)) as client:
        response = await client.get('/waits')
    assert order == ['inner hook', 'outer hook', 'awaited', 'added while waiting']
    assert response.header('x-awaited') == 'yes'


async def test_error_responses_run_them():
    order: list[str] = []
    async with TestClient(make_app(order)) as client:
        response = await client.get('/error')
    assert response.status == 500
    assert order == ['inner hook', 'outer hook', 'error']
    # The error response starts over (reset): what the callback adds is on it.
    assert response.header('x-callback') == 'error'


async def test_once_the_head_is_out_it_is_refused():
    order: list[str] = []
    async with TestClient(make_app(order)) as client:
        response = await client.get('/late')
    assert response.text == 'started' and order[-1] == 'refused'


async def test_over_real_sockets():
    order: list[str] = []
    async with serve(make_app(order)) as server:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + '/whole') as response:
                assert response.headers.getall('X-Callback') == ['first', 'second']
                assert await response.text() == 'whole'


async def test_not_for_the_101_of_an_upgrade():
    app = Tremolo()
    order: list[str] = []

    @app.route('/ws')
    async def ws(websocket, response, **server):
        response.before_head(lambda: order.append('callback'))
        await websocket.accept()
        await websocket.send('hi')

    async with TestClient(app) as client:
        socket = await client.websocket('/ws')
        assert socket.response.status == 101 and await socket.receive() == 'hi'
        await socket.close()
    assert order == []
