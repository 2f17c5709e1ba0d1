"""The server measured by ``bench/bandwidth/run.py``: one route per scenario.

Run as ``python app.py PORT``; scopes are mounted under prefixes so that one worker serves
every scenario.
"""

from __future__ import annotations

import os
import sys
import tempfile

from tremolo.middleware.bandwidth import BandwidthLimiter

from tremolo import Tremolo

MiB = 1024 * 1024

app = Tremolo()
app.add_middleware(BandwidthLimiter(download_rate=4 * MiB, scope='worker'), priority=0,
                   prefix='/worker')
app.add_middleware(BandwidthLimiter(download_rate=2 * MiB, scope='client'), priority=0,
                   prefix='/client')


async def produce(size: int):
    piece = b'x' * 65536
    for _ in range(size // len(piece)):
        yield piece


@app.route('/limited')
async def limited(request, rate=MiB, **server):
    return produce(int(request.query['size']))


@app.route('/upload', methods=['POST'], upload_rate=MiB, max_body_size=1 << 40)
async def upload(request, **server):
    total = 0
    async for piece in request.stream():
        total += len(piece)
    return str(total)


@app.route('/worker/data')
async def worker_data(request, **server):
    return produce(int(request.query['size']))


@app.route('/client/data')
async def client_data(request, **server):
    return produce(int(request.query['size']))


@app.route('/free')
async def free(**server):
    return b'Hello, World!'


@app.route('/generate')
async def generate(request, **server):
    return produce(int(request.query['size']))


@app.route('/to-disk', methods=['POST'], max_body_size=1 << 40)
async def to_disk(request, **server):
    total = 0
    with tempfile.TemporaryFile(dir=os.environ.get('BENCH_TMP')) as file:
        async for piece in request.stream():
            file.write(piece)
            total += len(piece)
    return str(total)


if __name__ == '__main__':
    app.run('127.0.0.1', int(sys.argv[1]), access_log=False)
