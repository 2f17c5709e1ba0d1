"""The benchmark endpoints written with Starlette, as its users write them.

Served by Tremolo (``python -m tremolo starlette_app:app``) and by uvicorn
(``python -m uvicorn starlette_app:app``), side by side.
"""

from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute

CHUNK = b'0123456789abcdef' * 1024  # 16 KiB
CHUNKS = 64  # 1 MiB in all


async def hello(request):
    return PlainTextResponse('Hello, World!')


async def json_answer(request):
    return JSONResponse({'message': 'Hello, World!'})


async def user(request):
    return PlainTextResponse(f'User {request.path_params["user_id"]}')


async def stream(request):
    async def chunks():
        for _ in range(CHUNKS):
            yield CHUNK
    return StreamingResponse(chunks(), media_type='application/octet-stream')


async def upload(request):
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return Response(str(size), media_type='text/plain; charset=utf-8')


async def echo(websocket):
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message['type'] == 'websocket.disconnect':
            return
        if message.get('text') is not None:
            await websocket.send_text(message['text'])
        else:
            await websocket.send_bytes(message['bytes'])


app = Starlette(routes=[
    Route('/', hello),
    Route('/json', json_answer),
    Route('/user/{user_id}', user),
    Route('/stream', stream),
    Route('/upload', upload, methods=['POST']),
    WebSocketRoute('/ws', echo),
])
