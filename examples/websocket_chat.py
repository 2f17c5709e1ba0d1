"""A chat room over WebSocket: each message is broadcast to everyone connected."""

import asyncio

from tremolo import Tremolo

app = Tremolo()


@app.on_worker_start
async def open_room(globals):
    globals.members = set()  # the WebSockets connected to this worker


# --8<-- [start:chat]
@app.route('/chat', websocket_subprotocols=['chat.v1'])
async def chat(websocket, globals, request):
    name = request.query.get('name', 'anonymous')
    await websocket.accept()  # optional: the first send or receive accepts too
    members = globals.members
    members.add(websocket)
    try:
        await broadcast(members, f'{name} joined')
        async for message in websocket:  # until the client closes
            if isinstance(message, str):
                await broadcast(members, f'{name}: {message}')
    finally:
        members.discard(websocket)
        await broadcast(members, f'{name} left')


async def broadcast(members, text):
    # Send to everyone at once: a slow member delays nobody but itself.
    await asyncio.gather(*(member.send(text) for member in list(members)),
                         return_exceptions=True)
# --8<-- [end:chat]


# --8<-- [start:page]
@app.route('/')
async def page(websocket=None):
    # The same route answers plain requests when `websocket` has a default (None here).
    return '<p>Connect a WebSocket to <code>/chat?name=you</code>.</p>'
# --8<-- [end:page]


if __name__ == '__main__':
    app.run('127.0.0.1', 8000)
