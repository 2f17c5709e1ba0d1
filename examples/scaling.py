"""Several hosts, one set of promises: a bandwidth budget, rate changes and live messages
shared through Redis.

    REDIS_URL=redis://10.0.0.5:6379/0 python examples/scaling.py 8000   # on every host
"""

import os
import sys

from tremolo.extensions.broadcast import Broadcast
from tremolo.extensions.redis import Redis
from tremolo.middleware.bandwidth import BandwidthLimiter

from tremolo import Forbidden, Tremolo

MiB = 1024 * 1024

app = Tremolo()

# --8<-- [start:store]
# One pool per worker, opened (and checked with a PING) when the worker starts.
redis = app.install(Redis(os.environ.get('REDIS_URL', 'redis://127.0.0.1:6379/0'),
                          prefix='shop:'))
# --8<-- [end:store]

# --8<-- [start:budget]
# 100 MiB/s for every download of every host together, and 2 MiB/s per client address.
downloads = BandwidthLimiter(download_rate=100 * MiB, scope='global', store=redis,
                             name='downloads')
per_client = BandwidthLimiter(download_rate=2 * MiB, scope='client', store=redis,
                              name='per-client')
app.add_middleware(downloads, priority=0)
app.add_middleware(per_client, priority=0)
# --8<-- [end:budget]

# --8<-- [start:broadcast]
broadcast = app.install(Broadcast(store=redis))


@app.route('/announce', methods=['POST'])
async def announce(request):
    await broadcast.publish('announcements', await request.text())
    return 'sent\n'


@app.route('/announcements')
async def announcements(sse):
    async with broadcast.subscribe('announcements') as messages:
        await sse.start()  # subscribed: the client sees the head from now on
        async for message in messages:
            await sse.send(message)
# --8<-- [end:broadcast]


# --8<-- [start:runtime]
@app.route('/admin/download-rate', methods=['POST'])
async def set_download_rate(request):
    if request.headers.get('x-admin-token') != os.environ.get('ADMIN_TOKEN', 'secret'):
        raise Forbidden()
    rate = float(await request.text())
    await downloads.set_rate(download_rate=rate)  # every worker of every host, at once
    return {'download_rate': rate}
# --8<-- [end:runtime]


@app.route('/files/{name}')
async def files(name):
    for _ in range(64):
        yield b'f' * (16 * 1024)


if __name__ == '__main__':
    # --8<-- [start:run]
    app.run('0.0.0.0', int(sys.argv[1]) if len(sys.argv) > 1 else 8000, worker_num=4)
    # --8<-- [end:run]
