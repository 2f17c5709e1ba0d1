"""A server whose request-rate limit and sessions live in Redis, so that several of them ("hosts")
share them: ``python -m tremolo tests.apps.stores:app --port 0``.

Environment: ``REDIS_URL`` (required), ``RATE`` (the quota, ``'10/minute'`` by default),
``ALGORITHM`` (``gcra`` or ``sliding-window``), ``FAIL_OPEN`` (``1``: requests go through
unlimited while Redis is down), ``MAX_AGE`` (seconds a session is kept, 3600 by default).
"""

import os

from tremolo.extensions.redis import Redis
from tremolo.extensions.sessions import Sessions
from tremolo.middleware.ratelimit import RateLimiter

from tremolo import Tremolo

app = Tremolo()
redis = app.install(Redis(os.environ['REDIS_URL'], timeout=0.5, retry_interval=0.3))
limiter = app.install(RateLimiter(
    os.environ.get('RATE', '10/minute'),
    store=redis.rate_limit_store(os.environ.get('ALGORITHM', 'gcra')),
    fail_open=os.environ.get('FAIL_OPEN') == '1',
))
app.install(Sessions('stores-test-secret-0123456789', store=redis.session_store(),
                     max_age=float(os.environ.get('MAX_AGE', '3600'))))


@app.route('/')
async def index():
    return 'ok'


@app.route('/pid', rate_limit=False)
async def pid():
    return str(os.getpid())


@app.route('/session', rate_limit=False)
async def read(session):
    return {'data': session.to_dict(), 'new': session.new}


@app.post('/session/{name}', rate_limit=False)
async def write(name, request, session):
    session[name] = await request.text()
    return {'data': session.to_dict()}


@app.post('/logout', rate_limit=False)
async def logout(session):
    session.clear()
    return 'bye'
