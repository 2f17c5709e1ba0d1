"""The benchmark application for the published ``tremolo==0.5.3`` (its own virtual environment:
its import name collides with this repository's).

Its rate limits are lifted: 0.5.3 throttles every response and upload to 1 MiB/s by default
(``download_rate``/``upload_rate``), keeps at most 512 keep-alive connections per worker
(``keepalive_connections``), caps bodies at 2 MiB (``client_max_body_size``) and queued body
buffers at 128 (``max_queue_size``). All of these are raised far above what the benchmark uses.

Run as ``python tremolo053_app.py --port PORT``; 0.5.3 has no access log.
"""

import argparse

from tremolo import Tremolo

CHUNK = b'0123456789abcdef' * 1024  # 16 KiB
CHUNKS = 64  # 1 MiB in all
UNLIMITED = 1 << 40

app = Tremolo()


@app.route('/')
async def hello(content_type='text/plain; charset=utf-8', **server):
    return 'Hello, World!'


@app.route('/json')
async def message(content_type='application/json', **server):
    return '{"message": "Hello, World!"}'


@app.route(r'^/user/(?P<id>[^/?]+)(?:\?.*)?$')
async def user(request, content_type='text/plain; charset=utf-8', **server):
    return f'User {request.params["path"]["id"].decode()}'  # 0.5.3 matches bytes


@app.route('/stream')
async def stream(content_type='application/octet-stream', **server):
    for _ in range(CHUNKS):
        yield CHUNK


@app.route('/upload')
async def upload(request, content_type='text/plain; charset=utf-8', **server):
    body = await request.body()
    return str(len(body))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=8000)
    parser.add_argument('--backlog', type=int, default=4096)
    parser.add_argument('--keepalive-timeout', type=int, default=300)
    parser.add_argument('--loop', default='asyncio')
    args = parser.parse_args()
    app.run(
        args.host, args.port, worker_num=1, backlog=args.backlog, loop=args.loop,
        log_level='ERROR', keepalive_timeout=args.keepalive_timeout,
        keepalive_connections=UNLIMITED, download_rate=UNLIMITED, upload_rate=UNLIMITED,
        client_max_body_size=UNLIMITED, max_queue_size=UNLIMITED,
        request_timeout=300, app_handler_timeout=300,
    )


if __name__ == '__main__':
    main()
