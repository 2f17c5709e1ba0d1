"""The application of the resilience measurements (``resilience.py``): a quick answer, a slow
one (a request still in flight when the server stops) and the pid of the worker answering.

Served by ``python -m tremolo resilience_app:app --no-access-log ...``.
"""

import asyncio
import os

from tremolo import Tremolo

app = Tremolo()


@app.route('/')
async def hello(content_type='text/plain; charset=utf-8', **server):
    return 'Hello, World!'


@app.route('/json')
async def message(**server):
    return {'message': 'Hello, World!'}


@app.route('/user/{id}')
async def user(id, content_type='text/plain; charset=utf-8', **server):
    return f'User {id}'


@app.route('/stream')
async def stream(content_type='application/octet-stream', **server):
    for _ in range(16):
        yield b'x' * 4096


@app.route('/upload', methods=['POST'])
async def upload(request, content_type='text/plain; charset=utf-8', **server):
    return str(len(await request.body()))


@app.route('/slow')
async def slow(request, **server):
    await asyncio.sleep(float(request.query.get('seconds', '0.5')))
    return 'slow'


@app.route('/pid')
async def pid(**server):
    return str(os.getpid())
