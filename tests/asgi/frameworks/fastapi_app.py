"""The behaviour suite's application, written with FastAPI."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import Optional

from fastapi import BackgroundTasks, FastAPI, File, Form, Request, UploadFile, WebSocket
from fastapi.responses import FileResponse, PlainTextResponse, StreamingResponse
from starlette.websockets import WebSocketDisconnect

from .common import FILE_PATH, HELLO, PIECES, Record, upload_summary

record = Record()


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {'ready': 'yes'}


app = FastAPI(lifespan=lifespan)


@app.get('/', response_class=PlainTextResponse)
async def hello():
    return HELLO


@app.get('/json')
async def json_answer():
    return {'message': HELLO}


@app.get('/items/{item_id}')
async def item(item_id: int, q: Optional[str] = None):
    return {'item_id': item_id, 'q': q}


@app.get('/stream')
async def stream():
    async def pieces():
        for piece in PIECES:
            yield piece
            await asyncio.sleep(0)
    return StreamingResponse(pieces(), media_type='text/plain')


@app.get('/file')
async def file():
    return FileResponse(FILE_PATH)


@app.post('/upload')
async def upload(request: Request):
    digest, size, pieces = hashlib.sha256(), 0, 0
    async for chunk in request.stream():
        if chunk:
            digest.update(chunk)
            size += len(chunk)
            pieces += 1
    return upload_summary(size, digest, pieces)


@app.post('/form')
async def form(name: str = Form(...), document: UploadFile = File(...)):
    content = await document.read()
    return {'name': name, 'filename': document.filename, 'size': len(content)}


@app.get('/state', response_class=PlainTextResponse)
async def state(request: Request):
    return request.state.ready


@app.get('/background', response_class=PlainTextResponse)
async def background_status():
    return record.get('background')


@app.post('/background', response_class=PlainTextResponse)
async def background(tasks: BackgroundTasks):
    async def task():
        await asyncio.sleep(0.05)
        record.set('background')
    tasks.add_task(task)
    return 'scheduled'


@app.get('/error')
async def error():
    raise RuntimeError('handler failed')


@app.get('/infinite')
async def infinite():
    async def forever():
        try:
            while True:
                yield b'x' * 1024
                await asyncio.sleep(0.005)
        finally:
            record.set('infinite', 'stopped')
    return StreamingResponse(forever())


@app.get('/record/{name}', response_class=PlainTextResponse)
async def recorded(name: str):
    return record.get(name)


@app.websocket('/ws')
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
