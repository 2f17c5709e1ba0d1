"""Handlers: what they can return or yield, and what each result becomes on the wire."""

import asyncio
import time

from tremolo import Tremolo

app = Tremolo()


# --8<-- [start:return]
@app.route('/bytes')
async def as_bytes(**server):
    return b'raw bytes'  # sent whole, with Content-Length


@app.route('/text')
async def as_text(**server):
    return 'Grüße'  # encoded as UTF-8


@app.route('/latin')
async def as_latin(**server):
    return 'Grüße', 'latin-1'  # encoded as latin-1, and the charset says so


@app.route('/json')
async def as_json(**server):
    return {'name': 'Tremolo', 'streaming': True}  # application/json


@app.route('/list')
async def as_list(**server):
    return [1, 2, 3]  # application/json too


@app.route('/nothing')
async def nothing(**server):
    return None  # an empty body
# --8<-- [end:return]


# --8<-- [start:yield]
@app.route('/countdown', content_type='text/plain; charset=utf-8')
async def countdown(response):
    response.set_header('Cache-Control', 'no-store')  # headers go out with the first piece
    for number in (3, 2, 1):
        yield f'{number}...\n'
        await asyncio.sleep(0.01)
    yield 'liftoff!\n'
# --8<-- [end:yield]


# --8<-- [start:sync]
@app.route('/blocking')
def blocking(request):
    time.sleep(0.01)  # runs in a thread: the event loop keeps serving other requests
    return f'{request.method} {request.path} done in a thread\n'


@app.route('/lines')
def lines(**server):
    for number in range(3):  # each item is produced in a thread, then sent
        yield f'line {number}\n'
# --8<-- [end:sync]


# --8<-- [start:write]
@app.route('/manual')
async def manual(response):
    response.set_status(202)
    response.set_content_type('text/plain; charset=utf-8')
    await response.write('first, ')  # sends the head, then this piece
    await response.write(b'second, ')
    await response.end('last\n')  # the last piece; the response is complete
# --8<-- [end:write]


# --8<-- [start:request-response]
@app.route('/visits')
async def visits(request, response):
    count = int(request.cookies.get('visits', '0')) + 1
    response.set_cookie('visits', str(count), max_age=3600)
    return {
        'visits': count,
        'method': request.method,
        'path': request.path,
        'tags': request.query.getlist('tag'),
        'user_agent': request.headers.get('user-agent', ''),
        'url': request.url,
        'client': request.connection.client_host,  # None on a UNIX socket
    }
# --8<-- [end:request-response]
