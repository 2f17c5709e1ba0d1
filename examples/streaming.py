"""Streaming with ``yield``: each piece reaches the client as soon as it is produced."""

from tremolo import Tremolo

app = Tremolo()


# --8<-- [start:hello]
@app.route('/hello')
async def hello_world(**server):
    yield b'Hello '
    yield b'world!'
# --8<-- [end:hello]


# --8<-- [start:big-data]
@app.route('/my/url/big.data')
async def my_big_data(content_type='application/octet-stream', **server):
    buffer_size = server['context'].options['buffer_size']

    with open('/my/folder/big.data', 'rb') as f:
        chunk = True

        while chunk:
            chunk = f.read(buffer_size)
            yield chunk
# --8<-- [end:big-data]
