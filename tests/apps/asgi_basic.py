"""A raw ASGI application for the running tests (``python -m tremolo tests.apps.asgi_basic``):
the same answers as tests.apps.basic, through the ASGI mode.

Its lifespan shutdown writes a file named after the worker's pid into
``TREMOLO_TEST_STOP_DIR`` when that is set, like tests.apps.basic's ``on_worker_stop``;
``TREMOLO_TEST_FAIL_STARTUP`` makes its lifespan startup fail with that message.
"""

from __future__ import annotations

import asyncio
import os
from urllib.parse import parse_qs


async def answer(send, body: bytes, status: int = 200) -> None:
    await send({'type': 'http.response.start', 'status': status,
                'headers': [(b'content-type', b'text/plain; charset=utf-8')]})
    await send({'type': 'http.response.body', 'body': body})


async def lifespan(receive, send) -> None:
    await receive()
    failure = os.environ.get('TREMOLO_TEST_FAIL_STARTUP')
    if failure:
        await send({'type': 'lifespan.startup.failed', 'message': failure})
        return
    await send({'type': 'lifespan.startup.complete'})
    await receive()
    where = os.environ.get('TREMOLO_TEST_STOP_DIR')
    if where:
        with open(os.path.join(where, f'stopped-{os.getpid()}'), 'w') as f:
            f.write('stopped')
    await send({'type': 'lifespan.shutdown.complete'})


async def app(scope, receive, send) -> None:
    if scope['type'] == 'lifespan':
        await lifespan(receive, send)
        return
    path = scope['path']
    if path == '/':
        await answer(send, b'Hello from tests.apps.basic')
    elif path == '/pid':
        await answer(send, str(os.getpid()).encode())
    elif path == '/loop':
        loop = asyncio.get_running_loop()
        await answer(send, f'{type(loop).__module__}.{type(loop).__name__}'.encode())
    elif path == '/slow':
        query = parse_qs(scope['query_string'].decode())
        seconds = float(query.get('seconds', ['1'])[0])
        await asyncio.sleep(seconds)
        await answer(send, f'slow done after {seconds:g} s'.encode())
    elif path == '/upload':
        size = 0
        while True:
            message = await receive()
            if message['type'] == 'http.disconnect':
                return
            size += len(message['body'])
            if not message['more_body']:
                break
        await answer(send, str(size).encode())
    else:
        await answer(send, b'Not Found', 404)
