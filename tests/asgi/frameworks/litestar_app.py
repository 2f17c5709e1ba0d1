"""The behaviour suite's application, written with Litestar."""

from __future__ import annotations

import asyncio
import hashlib

from litestar import Litestar, Request, Response, WebSocket, get, post, websocket
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State, UploadFile
from litestar.response import File, Stream

from .common import FILE_PATH, HELLO, PIECES, Record, upload_summary

record = Record()


def startup(app: Litestar) -> None:
    app.state.ready = 'yes'


@get('/', media_type='text/plain')
async def hello() -> str:
    return HELLO


@get('/json')
async def json_answer() -> dict:
    return {'message': HELLO}


@get('/items/{item_id:int}')
async def item(request: Request) -> dict:
    return {'item_id': request.path_params['item_id'], 'q': request.query_params.get('q')}


@get('/stream')
async def stream() -> Stream:
    async def pieces():
        for piece in PIECES:
            yield piece
            await asyncio.sleep(0)
    return Stream(pieces(), media_type='text/plain')


@get('/file')
async def file() -> File:
    return File(path=FILE_PATH)


@post('/upload', status_code=200)
async def upload(request: Request) -> dict:
    digest, size, pieces = hashlib.sha256(), 0, 0
    async for chunk in request.stream():
        if chunk:
            digest.update(chunk)
            size += len(chunk)
            pieces += 1
    return upload_summary(size, digest, pieces)


@post('/form', status_code=200)
async def form(request: Request) -> dict:
    data = await request.form()
    document: UploadFile = data['document']
    content = await document.read()
    return {'name': data['name'], 'filename': document.filename, 'size': len(content)}


@get('/state', media_type='text/plain')
async def ready(state: State) -> str:
    return state.ready


@get('/background', media_type='text/plain')
async def background_status() -> str:
    return record.get('background')


@post('/background', status_code=200, media_type='text/plain')
async def background() -> Response[str]:
    async def task() -> None:
        await asyncio.sleep(0.05)
        record.set('background')
    return Response('scheduled', background=BackgroundTask(task))


@get('/error')
async def error() -> str:
    raise RuntimeError('handler failed')


@get('/infinite')
async def infinite() -> Stream:
    async def forever():
        try:
            while True:
                yield b'x' * 1024
                await asyncio.sleep(0.005)
        finally:
            record.set('infinite', 'stopped')
    return Stream(forever())


@get('/record/{name:str}', media_type='text/plain')
async def recorded(request: Request) -> str:
    return record.get(request.path_params['name'])


@websocket('/ws')
async def echo(socket: WebSocket) -> None:
    await socket.accept()
    while True:
        message = await socket.receive()
        if message['type'] == 'websocket.disconnect':
            return
        if message.get('text') == 'close':
            await socket.close(code=4001, reason='bye')
            return
        if message.get('text') is not None:
            await socket.send_text(message['text'])
        else:
            await socket.send_bytes(message['bytes'])


app = Litestar(
    route_handlers=[hello, json_answer, item, stream, file, upload, form, ready,
                    background_status, background, error, infinite, recorded, echo],
    on_startup=[startup], request_max_body_size=None,
)
