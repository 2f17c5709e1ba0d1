"""Connection limits and timeouts for a server that faces the internet."""

import asyncio

from tremolo import Tremolo

app = Tremolo()


@app.route('/')
async def index(**server):
    return 'Hello!'


@app.route('/report')
async def report(**server):
    await asyncio.sleep(600)  # longer than handler_timeout: cancelled, answered 503
    return 'never sent'


if __name__ == '__main__':
    # --8<-- [start:run]
    app.run(
        '0.0.0.0', 8000,
        max_connections=10_000,  # per worker: at the limit, stop accepting until one closes
        max_connections_per_ip=100,  # per worker and client address: 503 above it
        header_timeout=10,  # a request head must arrive within 10 s (408 after)
        min_data_rate=240, min_data_rate_grace=5,  # heads and bodies: 408 below 240 bytes/s
        handler_timeout=60,  # a request may take 60 s: 503 after (or a cut stream)
        graceful_shutdown_timeout=30,  # on SIGTERM, requests in flight get 30 s
    )
    # --8<-- [end:run]
