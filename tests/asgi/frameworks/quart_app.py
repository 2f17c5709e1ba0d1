"""The behaviour suite's application, written with Quart."""

from __future__ import annotations

import asyncio
import hashlib

from quart import Quart, request, send_file, websocket

from .common import FILE_PATH, HELLO, PIECES, Record, upload_summary

record = Record()
app = Quart(__name__)
app.config['MAX_CONTENT_LENGTH'] = 64 * 1024 * 1024
state: dict[str, str] = {}


@app.before_serving
async def startup():
    state['ready'] = 'yes'


@app.route('/')
async def hello():
    return HELLO, 200, {'Content-Type': 'text/plain; charset=utf-8'}


@app.route('/json')
async def json_answer():
    return {'message': HELLO}


@app.route('/items/<int:item_id>')
async def item(item_id):
    return {'item_id': item_id, 'q': request.args.get('q')}


@app.route('/stream')
async def stream():
    async def pieces():
        for piece in PIECES:
            yield piece
            await asyncio.sleep(0)
    return pieces(), 200, {'Content-Type': 'text/plain'}


@app.route('/file')
async def file():
    return await send_file(FILE_PATH)


@app.route('/upload', methods=['POST'])
async def upload():
    digest, size, pieces = hashlib.sha256(), 0, 0
    async for chunk in request.body:
        if chunk:
            digest.update(chunk)
            size += len(chunk)
            pieces += 1
    return upload_summary(size, digest, pieces)


@app.route('/form', methods=['POST'])
async def form():
    fields = await request.form
    files = await request.files
    document = files['document']
    return {'name': fields['name'], 'filename': document.filename,
            'size': len(document.read())}


@app.route('/state')
async def ready():
    return state.get('ready', 'no lifespan')


@app.route('/background', methods=['GET', 'POST'])
async def background():
    if request.method == 'GET':
        return record.get('background')

    async def task():
        await asyncio.sleep(0.05)
        record.set('background')
    app.add_background_task(task)
    return 'scheduled'


@app.route('/error')
async def error():
    raise RuntimeError('handler failed')


@app.route('/infinite')
async def infinite():
    async def forever():
        try:
            while True:
                yield b'x' * 1024
                await asyncio.sleep(0.005)
        finally:
            record.set('infinite', 'stopped')
    return forever(), 200


@app.route('/record/<name>')
async def recorded(name):
    return record.get(name)


@app.websocket('/ws')
async def echo():
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message == 'close':
            await websocket.close(4001, 'bye')
            return
        await websocket.send(message)
