"""Request-rate limits and sessions that every host shares, through Redis: a client gets its
quota once, whichever host answers, and its session follows it from host to host.

    REDIS_URL=redis://10.0.0.5:6379/0 SECRET_KEY=... python examples/shared_stores.py 8000
"""

import os
import sys

from tremolo.extensions.redis import Redis
from tremolo.extensions.sessions import Sessions
from tremolo.middleware.ratelimit import RateLimiter

from tremolo import Forbidden, Tremolo

app = Tremolo()
redis = app.install(Redis(os.environ.get('REDIS_URL', 'redis://127.0.0.1:6379/0')))

# --8<-- [start:ratelimit]
# 100 requests a minute per client address, counted once for every worker of every host.
app.install(RateLimiter('100/minute', store=redis.rate_limit_store()))
# 1,000 an hour per API key, never more in any hour: the sliding window, in Redis too.
app.install(RateLimiter('1000/hour', key='header:X-API-Key', name='api', prefix='/api',
                        store=redis.rate_limit_store('sliding-window')))
# --8<-- [end:ratelimit]

# --8<-- [start:sessions]
# The same secret key on every host: a session saved by one is read by all the others.
app.install(Sessions(os.environ.get('SECRET_KEY', 'change me: secrets.token_urlsafe(32)'),
                     store=redis.session_store(), max_age=8 * 3600))


@app.post('/login', rate_limit='5/minute')  # 5 tries a minute per client, on all hosts
async def login(request, session):
    form = await request.form()
    if form.get('password') != 'secret':
        raise Forbidden('wrong password')
    session.regenerate()
    session['user'] = form['user']
    return 'logged in'


@app.route('/me')
async def me(session):
    return {'user': session.get('user')}
# --8<-- [end:sessions]


@app.route('/api/orders')
async def orders(**server):
    return {'orders': []}


if __name__ == '__main__':
    app.run('0.0.0.0', int(sys.argv[1]) if len(sys.argv) > 1 else 8000, worker_num=4)
