"""The benchmark application for aiohttp.web (with its C extensions, the default install).

Run as ``python aiohttp_app.py --port PORT``; the access log is off.
"""

import argparse

from aiohttp import web

CHUNK = b'0123456789abcdef' * 1024  # 16 KiB
CHUNKS = 64  # 1 MiB in all

routes = web.RouteTableDef()


@routes.get('/')
async def hello(request):
    return web.Response(text='Hello, World!')


@routes.get('/json')
async def message(request):
    return web.json_response({'message': 'Hello, World!'})


@routes.get('/user/{id}')
async def user(request):
    return web.Response(text=f'User {request.match_info["id"]}')


@routes.get('/stream')
async def stream(request):
    response = web.StreamResponse(headers={'Content-Type': 'application/octet-stream'})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(CHUNKS):
        await response.write(CHUNK)
    await response.write_eof()
    return response


@routes.get('/ws')
async def echo(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        if message.type == web.WSMsgType.TEXT:
            await ws.send_str(message.data)
        elif message.type == web.WSMsgType.BINARY:
            await ws.send_bytes(message.data)
    return ws


@routes.post('/upload')
async def upload(request):
    body = await request.read()
    return web.Response(text=str(len(body)))


def make_app():
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.add_routes(routes)
    return app


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=8000)
    parser.add_argument('--backlog', type=int, default=4096)
    parser.add_argument('--keepalive-timeout', type=float, default=300.0)
    args = parser.parse_args()
    web.run_app(
        make_app(), host=args.host, port=args.port, backlog=args.backlog,
        keepalive_timeout=args.keepalive_timeout, access_log=None, print=None,
    )


if __name__ == '__main__':
    main()
