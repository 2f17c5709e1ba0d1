"""Compression: responses in zstd, brotli or gzip, streams flushed piece by piece, and
compressed uploads decoded within max_body_size."""

import asyncio
import json

from tremolo.middleware.compression import Compression

from tremolo import Tremolo

app = Tremolo()
# --8<-- [start:install]
app.install(Compression(minimum_size=500, gzip_level=6))
# --8<-- [end:install]


# --8<-- [start:routes]
@app.route('/report')
async def report(**server):
    return {'rows': [{'id': n, 'status': 'ok'} for n in range(1000)]}  # compressed


@app.route('/ticks')
async def ticks(sse):  # each event is compressed and flushed: the client sees it at once
    for number in range(3):
        await sse.send({'tick': number})
        await asyncio.sleep(0.01)


@app.route('/export', content_type='application/x-ndjson')
async def export(**server):  # streamed: compressed and flushed at every yield
    for number in range(1000):
        yield json.dumps({'id': number}) + '\n'


@app.post('/import', max_body_size=16 * 1024 * 1024)  # the limit of the *decoded* body
async def import_rows(request):
    body = await request.body()  # Content-Encoding: gzip, br or zstd: decoded already
    return {'lines': body.count(b'\n')}
# --8<-- [end:routes]
