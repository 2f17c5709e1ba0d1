"""Big WebSocket messages in constant memory: received and sent piece by piece."""

import hashlib

from tremolo import Tremolo

app = Tremolo()


# --8<-- [start:stream]
@app.route('/digest', websocket_max_message_size=1 << 30)  # streamed: no memory cost
async def digest(websocket):
    size = 0
    sha256 = hashlib.sha256()
    async for piece in websocket.receive_stream():  # bytes pieces of one binary message
        size += len(piece)  # (str pieces for a text message)
        sha256.update(piece)

    async def report():  # str pieces: one text message, sent as they are produced
        yield f'{size} bytes\n'
        yield f'sha256 {sha256.hexdigest()}\n'

    await websocket.send_stream(report())
# --8<-- [end:stream]
