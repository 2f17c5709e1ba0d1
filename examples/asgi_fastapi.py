"""A FastAPI application served by Tremolo: ``python -m tremolo examples.asgi_fastapi:app``."""

# --8<-- [start:app]
from fastapi import FastAPI, WebSocket

app = FastAPI()


@app.get('/items/{item_id}')
async def read_item(item_id: int, q: str = ''):
    return {'item_id': item_id, 'q': q}


@app.websocket('/echo')
async def echo(websocket: WebSocket):
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(text)


if __name__ == '__main__':
    import tremolo

    tremolo.run(app, host='0.0.0.0', port=8000, worker_num=4)
# --8<-- [end:app]
