"""The demo application served by ``make run``.

Try:
    curl http://127.0.0.1:8000/
    curl http://127.0.0.1:8000/hello
    curl http://127.0.0.1:8000/user/42?greeting=Hi
    curl -N http://127.0.0.1:8000/countdown
    curl -d 'some data' http://127.0.0.1:8000/echo
"""

import asyncio

from tremolo import Tremolo

app = Tremolo()


@app.on_request
async def timing(context, loop):
    context.started = loop.time()


@app.on_response
async def add_timing(response, context, loop):
    # Response hooks run just before the head goes out, so this is the time to the first
    # byte: for /countdown, which streams for 2.5 s, only until its first piece.
    elapsed_ms = (loop.time() - context.started) * 1000
    response.set_header('Server-Timing', f'app;desc="to the first byte";dur={elapsed_ms:.2f}')


@app.route('/')
async def index(**server):
    return (
        'Tremolo demo: try /hello, /user/42?greeting=Hi, /countdown, '
        'and POST /echo\n'
    )


@app.route('/hello')
async def hello_world(**server):
    yield b'Hello '
    yield b'world!\n'


@app.route('/user/{user_id:int}')
async def user(user_id, request):
    return {'id': user_id, 'greeting': request.query.get('greeting', 'Hello')}


@app.route('/countdown', content_type='text/plain; charset=utf-8')
async def countdown(**server):
    for number in range(5, 0, -1):
        yield f'{number}...\n'
        await asyncio.sleep(0.5)
    yield 'liftoff!\n'


@app.route('/echo', methods=['POST'])
async def echo(request, content_type='application/octet-stream'):
    async for chunk in request.stream():
        yield chunk


if __name__ == '__main__':
    app.run('127.0.0.1', 8000, debug=True)
