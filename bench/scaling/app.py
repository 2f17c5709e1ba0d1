"""The server of the scaling benchmark (``run.py``), configured by its environment:

- ``RATE``: a ``'global'`` download budget in bytes per second (0: none);
- ``REDIS_URL``: a Redis shared by every server started with it (budget, limits, broadcast);
- ``LIMITER``: ``none``, ``memory`` or ``redis``: where the request-rate limiter
  (`tremolo.middleware.ratelimit.RateLimiter`) counts ``GET /``;
- ``ALGORITHM``: its algorithm, ``gcra`` (default) or ``sliding-window``.
"""

import os
import time

from tremolo.extensions.broadcast import Broadcast
from tremolo.middleware.bandwidth import BandwidthLimiter
from tremolo.middleware.ratelimit import RateLimiter
from tremolo.middleware.ratelimit_store import Rate

from tremolo import Tremolo

app = Tremolo()
store = None
if os.environ.get('REDIS_URL'):
    from tremolo.extensions.redis import Redis

    store = app.install(Redis(os.environ['REDIS_URL']))
rate = float(os.environ.get('RATE', '0'))
if rate:
    app.add_middleware(BandwidthLimiter(download_rate=rate, scope='global', store=store),
                       priority=0)
broadcast = app.install(Broadcast(store=store))

# The request-rate limiter on `GET /`, with a quota never reached: the cost of counting (and
# of the RateLimit fields) is what is measured.
limiter = os.environ.get('LIMITER', 'none')
if limiter != 'none':
    algorithm = os.environ.get('ALGORITHM', 'gcra')
    counts = None
    if limiter == 'redis':
        if store is None:
            raise SystemExit('LIMITER=redis needs REDIS_URL')
        counts = store.rate_limit_store(algorithm)
    app.install(RateLimiter(Rate(10**9, 1.0), algorithm=algorithm, store=counts))


@app.route('/')
async def hello():
    return 'Hello world!'


PIECE = b'x' * 16384


@app.route('/download/{seconds:int}')
async def download(seconds):
    deadline = time.monotonic() + seconds  # a stream that lasts about this long
    while time.monotonic() < deadline:
        yield PIECE


@app.route('/publish', methods=['POST'])
async def publish(request):
    await broadcast.publish('fanout', await request.text())
    return 'ok'


@app.route('/subscribe')
async def subscribe(websocket):
    async with broadcast.subscribe('fanout', queue_size=100_000) as messages:
        await websocket.send('subscribed')
        async for message in messages:
            await websocket.send(message)
