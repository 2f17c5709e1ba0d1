"""A worker that stops accepting (a graceful stop, a reload, ``max_connections``) still serves
the connections of its last accept: over real sockets, each is answered, none left open and
unserved until the process exits (where its client would get a reset)."""

from __future__ import annotations

import asyncio
import socket

from tremolo import Tremolo
from tremolo.launch import dispatcher_factory
from tremolo.options import Options
from tremolo.server.sockets import bind
from tremolo.server.worker import Worker


def make_app() -> Tremolo:
    app = Tremolo()

    @app.route('/')
    async def index(**server):
        return 'ok'

    return app


def read_until_closed(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    data = b''
    try:
        while True:
            piece = sock.recv(65536)
            if not piece:
                return data
            data += piece
    except OSError as exc:  # a reset, or nothing within the timeout
        return data + f'<{type(exc).__name__}>'.encode()


async def test_the_connections_of_the_last_accept_are_served_when_accepting_stops():
    sock = bind(('127.0.0.1', 0), 128, reuse_port=False)
    port = sock.getsockname()[1]
    options = Options.from_kwargs(host='127.0.0.1', port=port, access_log=False,
                                  graceful_shutdown_timeout=5.0)
    worker = Worker(dispatcher_factory(make_app(), options), options, [sock])
    await worker.start()
    clients = []
    try:
        # Connected by the kernel (the listen backlog) and each with a request sent, before
        # the worker's event loop sees any of them.
        for _ in range(20):
            client = socket.create_connection(('127.0.0.1', port))
            client.sendall(b'GET / HTTP/1.1\r\nHost: t\r\n\r\n')
            clients.append(client)
        # The turn after next, the worker accepts them all and schedules their set-up for
        # the turn after: stopping to accept right then is the moment that lost them.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        worker._pause_accepting()
        stopping = asyncio.ensure_future(worker.stop())
        answers = await asyncio.gather(*[
            asyncio.to_thread(read_until_closed, client) for client in clients])
        await stopping
    finally:
        for client in clients:
            client.close()
        sock.close()
    for answer in answers:
        assert answer.startswith(b'HTTP/1.1 200 OK\r\n'), answer[:80]
        assert b'Connection: close\r\n' in answer and answer.endswith(b'\r\n\r\nok'), answer
