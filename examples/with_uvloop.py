# ruff: noqa: I001 (the uvloop lines are shown in the documentation exactly as written)
"""Running on uvloop: install it first with ``python3 -m pip install uvloop``."""

from tremolo import Tremolo

# --8<-- [start:policy]
import asyncio
import uvloop
asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
# --8<-- [end:policy]

app = Tremolo()


@app.route('/')
async def index(loop):
    return f'Running on {type(loop).__module__}.{type(loop).__name__}\n'


if __name__ == '__main__':
    app.run('127.0.0.1', 8000)
