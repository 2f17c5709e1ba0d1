"""A raw ASGI 3 application (no framework), served by Tremolo."""

# --8<-- [start:app]
import tremolo


async def app(scope, receive, send):
    if scope['type'] == 'lifespan':
        while True:
            message = await receive()
            if message['type'] == 'lifespan.startup':
                scope['state']['greeting'] = 'Hello'  # copied into every request's scope
                await send({'type': 'lifespan.startup.complete'})
            elif message['type'] == 'lifespan.shutdown':
                await send({'type': 'lifespan.shutdown.complete'})
                return
    elif scope['type'] == 'http':
        body = f"{scope['state']['greeting']}, {scope['path'][1:] or 'world'}!".encode()
        await send({'type': 'http.response.start', 'status': 200,
                    'headers': [(b'content-type', b'text/plain; charset=utf-8')]})
        await send({'type': 'http.response.body', 'body': body})


if __name__ == '__main__':
    tremolo.run(app, host='127.0.0.1', port=8000)
# --8<-- [end:app]
