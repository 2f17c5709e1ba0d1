"""Several worker processes on one port: the kernel spreads connections with SO_REUSEPORT."""

import os

from tremolo import Tremolo

app = Tremolo()


@app.route('/')
async def index(**server):
    return f'Served by the worker with pid {os.getpid()}\n'


if __name__ == '__main__':
    # --8<-- [start:run]
    app.run('0.0.0.0', 8000, worker_num=2)
    # --8<-- [end:run]
