"""The benchmark application for Tremolo (this repository), written the way users write it.

Every feature stays on: the middleware pipeline (a worker hook, a request hook and a response
hook, all injected by name; they change no byte of the answers, so peers without middleware still
send the same responses), signature injection, path parameters and Tremolo's protocol checks.
Only the access log is off (``--no-access-log``), as for every peer.

Served by ``python -m tremolo tremolo_app:app --no-access-log --loop asyncio|uvloop ...``.
"""

from tremolo import Tremolo

CHUNK = b'0123456789abcdef' * 1024  # 16 KiB
CHUNKS = 64  # 1 MiB in all

app = Tremolo()


@app.on_worker_start
async def init_counters(globals, **server):
    globals.started = globals.answered = 0


@app.on_request
async def count_started(globals, **server):
    globals.started += 1


@app.on_response
async def count_answered(globals, response, **server):
    globals.answered += 1


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
    for _ in range(CHUNKS):
        yield CHUNK


@app.route('/ws')
async def echo(websocket, **server):
    async for message in websocket:
        await websocket.send(message)


@app.route('/upload', methods=['POST'])
async def upload(request, content_type='text/plain; charset=utf-8', **server):
    body = await request.body()
    return str(len(body))
