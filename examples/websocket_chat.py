"""A chat room over WebSocket: each message reaches everyone connected, whichever worker (or,
with Redis, whichever host) serves them.

    python examples/websocket_chat.py                       # one server, two workers
    REDIS_URL=redis://127.0.0.1:6379/0 python examples/websocket_chat.py 8001   # and again
                                                            # on 8002: two "hosts", one room
"""

import asyncio
import os
import sys

from tremolo.extensions.broadcast import Broadcast

from tremolo import Tremolo

app = Tremolo()

# --8<-- [start:room]
# Without a store, the room spans the workers of this server; with Redis, every server that
# shares it.
if os.environ.get('REDIS_URL'):
    from tremolo.extensions.redis import Redis

    store = app.install(Redis(os.environ['REDIS_URL']))
else:
    store = None
app.install(Broadcast(store=store))
# --8<-- [end:room]


# --8<-- [start:chat]
@app.route('/chat', websocket_subprotocols=['chat.v1'])
async def chat(websocket, request, broadcast):
    name = request.query.get('name', 'anonymous')
    await websocket.accept()  # optional: the first send or receive accepts too
    async with broadcast.subscribe('chat') as room:
        relay = asyncio.ensure_future(forward(room, websocket))
        try:
            await broadcast.publish('chat', f'{name} joined')
            async for message in websocket:  # until the client closes
                if isinstance(message, str):
                    await broadcast.publish('chat', f'{name}: {message}')
        finally:
            relay.cancel()
            await broadcast.publish('chat', f'{name} left')


async def forward(room, websocket):
    # What the room says, to this member; a member that cannot keep up misses the oldest
    # messages (the subscription holds 1,000 at most), and delays nobody else.
    async for message in room:
        await websocket.send(message)
# --8<-- [end:chat]


# --8<-- [start:page]
@app.route('/')
async def page(websocket=None):
    # The same route answers plain requests when `websocket` has a default (None here).
    return '<p>Connect a WebSocket to <code>/chat?name=you</code>.</p>'
# --8<-- [end:page]


if __name__ == '__main__':
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    app.run('127.0.0.1', port, worker_num=2)
