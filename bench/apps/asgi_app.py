"""A raw ASGI application (no framework), served alike by uvicorn (h11 or httptools),
hypercorn, granian and Tremolo's ASGI mode.

Served by ``python -m uvicorn asgi_app:app --http h11|httptools --loop asyncio|uvloop
--no-access-log ...``, ``python -m tremolo asgi_app:app ...`` and the others.
"""

import json

CHUNK = b'0123456789abcdef' * 1024  # 16 KiB
CHUNKS = 64  # 1 MiB in all

TEXT = [(b'content-type', b'text/plain; charset=utf-8')]
JSON = [(b'content-type', b'application/json')]
STREAM = [(b'content-type', b'application/octet-stream')]
NOT_FOUND = b'Not Found'


async def send_whole(send, status, headers, body):
    headers = headers + [(b'content-length', str(len(body)).encode())]
    await send({'type': 'http.response.start', 'status': status, 'headers': headers})
    await send({'type': 'http.response.body', 'body': body})


async def read_body(receive):
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get('body', b''))
        more = message.get('more_body', False)
    return b''.join(chunks)


async def stream(send):
    # No content-length: the server frames the body with chunked transfer-encoding.
    await send({'type': 'http.response.start', 'status': 200, 'headers': STREAM})
    for _ in range(CHUNKS):
        await send({'type': 'http.response.body', 'body': CHUNK, 'more_body': True})
    await send({'type': 'http.response.body', 'body': b''})


async def http(scope, receive, send):
    method, path = scope['method'], scope['path']
    if method in ('GET', 'HEAD'):
        if path == '/':
            return await send_whole(send, 200, TEXT, b'Hello, World!')
        if path == '/json':
            body = json.dumps({'message': 'Hello, World!'}).encode()
            return await send_whole(send, 200, JSON, body)
        if path.startswith('/user/') and path.count('/') == 2:
            return await send_whole(send, 200, TEXT, f'User {path[6:]}'.encode())
        if path == '/stream':
            return await stream(send)
    elif method == 'POST' and path == '/upload':
        body = await read_body(receive)
        return await send_whole(send, 200, TEXT, str(len(body)).encode())
    await send_whole(send, 404, TEXT, NOT_FOUND)


async def lifespan(receive, send):
    while True:
        message = await receive()
        if message['type'] == 'lifespan.startup':
            await send({'type': 'lifespan.startup.complete'})
        elif message['type'] == 'lifespan.shutdown':
            await send({'type': 'lifespan.shutdown.complete'})
            return


async def websocket(scope, receive, send):
    if scope['path'] != '/ws':
        await send({'type': 'websocket.close'})
        return
    await receive()  # websocket.connect
    await send({'type': 'websocket.accept'})
    while True:
        message = await receive()
        if message['type'] != 'websocket.receive':
            return
        if message.get('text') is not None:
            await send({'type': 'websocket.send', 'text': message['text']})
        else:
            await send({'type': 'websocket.send', 'bytes': message['bytes']})


async def app(scope, receive, send):
    if scope['type'] == 'http':
        await http(scope, receive, send)
    elif scope['type'] == 'websocket':
        await websocket(scope, receive, send)
    elif scope['type'] == 'lifespan':
        await lifespan(receive, send)
