"""The behaviour suite's application, written with Starlette."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from .common import FILE_PATH, HELLO, PIECES, Record, upload_summary

record = Record()


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {'ready': 'yes'}


async def hello(request: Request):
    return PlainTextResponse(HELLO)


async def json_answer(request: Request):
    return JSONResponse({'message': HELLO})


async def item(request: Request):
    return JSONResponse({'item_id': request.path_params['item_id'],
                         'q': request.query_params.get('q')})


async def stream(request: Request):
    async def pieces():
        for piece in PIECES:
            yield piece
            await asyncio.sleep(0)
    return StreamingResponse(pieces(), media_type='text/plain')


async def file(request: Request):
    return FileResponse(FILE_PATH)


async def upload(request: Request):
    digest, size, pieces = hashlib.sha256(), 0, 0
    async for chunk in request.stream():
        if chunk:
            digest.update(chunk)
            size += len(chunk)
            pieces += 1
    return JSONResponse(upload_summary(size, digest, pieces))


async def form(request: Request):
    async with request.form() as data:
        document = data['document']
        content = await document.read()
        return JSONResponse({'name': data['name'], 'filename': document.filename,
                             'size': len(content)})


async def state(request: Request):
    return PlainTextResponse(request.state.ready)


async def background(request: Request):
    if request.method == 'GET':
        return PlainTextResponse(record.get('background'))

    async def task():
        await asyncio.sleep(0.05)
        record.set('background')
    return PlainTextResponse('scheduled', background=BackgroundTask(task))


async def error(request: Request):
    raise RuntimeError('handler failed')


async def infinite(request: Request):
    async def forever():
        try:
            while True:
                yield b'x' * 1024
                await asyncio.sleep(0.005)
        finally:
            record.set('infinite', 'stopped')
    return StreamingResponse(forever())


async def recorded(request: Request):
    return PlainTextResponse(record.get(request.path_params['name']))


async def echo(websocket: WebSocket):
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message['type'] == 'websocket.disconnect':
                return
            if message.get('text') == 'close':
                await websocket.close(4001, 'bye')
                return
            if message.get('text') is not None:
                await websocket.send_text(message['text'])
            else:
                await websocket.send_bytes(message['bytes'])
    except WebSocketDisconnect:
        return


app = Starlette(lifespan=lifespan, routes=[
    Route('/', hello),
    Route('/json', json_answer),
    Route('/items/{item_id:int}', item),
    Route('/stream', stream),
    Route('/file', file),
    Route('/upload', upload, methods=['POST']),
    Route('/form', form, methods=['POST']),
    Route('/state', state),
    Route('/background', background, methods=['GET', 'POST']),
    Route('/error', error),
    Route('/infinite', infinite),
    Route('/record/{name}', recorded),
    WebSocketRoute('/ws', echo),
])
