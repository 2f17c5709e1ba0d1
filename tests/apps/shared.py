"""A server whose limits and broadcast span its workers (and, with ``REDIS_URL``, its hosts):
``python -m tremolo tests.apps.shared:app --port 0 --worker-num 2``.

Environment: ``RATE`` (the download budget, bytes per second), ``SCOPE`` (``global`` by
default), ``REDIS_URL`` (a shared store), ``FAIL_OPEN`` (``1``: the budget lifts during an
outage).
"""

import os

from tremolo.extensions.broadcast import Broadcast
from tremolo.extensions.redis import Redis
from tremolo.middleware.bandwidth import BandwidthLimiter

from tremolo import Tremolo

app = Tremolo()

store = None
if os.environ.get('REDIS_URL'):
    store = app.install(Redis(os.environ['REDIS_URL'], timeout=0.5, retry_interval=0.5,
                              fail_open=os.environ.get('REDIS_FAIL_OPEN') == '1'))
limiter = BandwidthLimiter(
    download_rate=float(os.environ.get('RATE', 2 * 1024 * 1024)),
    scope=os.environ.get('SCOPE', 'global'), store=store,
    fail_open=os.environ.get('FAIL_OPEN') == '1',
)
app.add_middleware(limiter, priority=0)
broadcast = app.install(Broadcast(store=store))

PIECE = b'x' * 16384


@app.route('/pid')
async def pid():
    return str(os.getpid())


@app.route('/download/{size:int}')
async def download(size):
    while size > 0:
        piece = PIECE[:size]
        size -= len(piece)
        yield piece


@app.route('/rate', methods=['POST'])
async def set_rate(request):
    await limiter.set_rate(download_rate=float(request.query['rate']))
    return 'ok'


@app.route('/publish/{channel}', methods=['POST'])
async def publish(channel, request):
    await broadcast.publish(channel, (await request.body()).decode())
    return 'ok'


@app.route('/subscribe/{channel}')
async def subscribe(channel, websocket):
    async with broadcast.subscribe(channel) as messages:
        await websocket.send('subscribed')
        async for message in messages:
            await websocket.send(message)
