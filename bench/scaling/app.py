"""The server of the scaling benchmark (``run.py``), configured by its environment:

- ``RATE``: a ``'global'`` download budget in bytes per second (0: none);
- ``REDIS_URL``: a Redis shared by every server started with it (budget, limits, broadcast);
- ``LIMITER``: ``none``, ``memory`` or ``redis``: a request-rate check on ``GET /``.
"""

import os
import time

from tremolo.extensions.broadcast import Broadcast
from tremolo.middleware.bandwidth import BandwidthLimiter

from tremolo import TooManyRequests, Tremolo

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

LIMIT, PERIOD = 10**9, 1.0  # never reached: the cost of the check is what is measured
limiter = os.environ.get('LIMITER', 'none')
if limiter == 'redis':
    counts = store.rate_limit_store()

    @app.on_request(priority=1)
    async def check(request):
        if not (await counts.hit(request.client[0], LIMIT, PERIOD)).allowed:
            raise TooManyRequests()
elif limiter == 'memory':
    arrivals = {}  # the same GCRA, in this worker's memory

    @app.on_request(priority=1)
    def check(request):
        key = request.client[0]
        now = time.monotonic()
        tat = max(arrivals.get(key, now), now) + PERIOD / LIMIT
        if tat - PERIOD > now:
            raise TooManyRequests()
        arrivals[key] = tat


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
