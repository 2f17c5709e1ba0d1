"""Request-rate limits: a default quota per client, tighter for logins, none for health."""

from tremolo.middleware.ratelimit import RateLimiter

from tremolo import Tremolo

app = Tremolo()
# --8<-- [start:install]
app.install(RateLimiter('60/minute'))  # per client address (the forwarded one behind proxies)
app.install(RateLimiter('1000/hour', key='header:X-API-Key', name='api', prefix='/api'))


@app.route('/')
async def index(**server):
    return 'counted against the client'


@app.post('/login', rate_limit='5/minute')  # a quota of its own, counted apart
async def login(**server):
    return 'welcome'


@app.route('/health', rate_limit=False)  # never limited
async def health(**server):
    return 'ok'


@app.route('/api/data')
async def data(**server):
    return {'data': []}  # both limits: 60/minute per address, 1000/hour per key
# --8<-- [end:install]
