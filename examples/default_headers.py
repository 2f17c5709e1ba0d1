"""Default headers: constant, HTTPS only, per route and per request, worked out once."""

import itertools

from tremolo import Tremolo

app = Tremolo()

# --8<-- [start:constant]
# The same on every response: bytes worked out once per route, appended to each head.
app.add_default_header('X-Content-Type-Options', 'nosniff')
app.add_default_header('Strict-Transport-Security', 'max-age=31536000', https_only=True)
app.add_default_header('Vary', 'Accept-Language')  # merged with the response's own Vary
# --8<-- [end:constant]


# --8<-- [start:per-route]
def cache_control(options):
    """The Cache-Control of a route, from its ``cache`` option (seconds), if it has one."""
    seconds = options.get('cache')
    return None if seconds is None else f'public, max-age={seconds}'


app.add_default_header('Cache-Control', cache_control)


@app.route('/catalog', cache=300)
async def catalog(**server):
    return {'items': ['tea', 'coffee']}


@app.route('/basket')
async def basket(**server):
    return {'items': []}
# --8<-- [end:per-route]


# --8<-- [start:per-request]
served = itertools.count(1)


@app.on_request
def number(request):
    request.id = f'req-{next(served)}'


# request.id, read when the head of each response is written: errors included.
app.add_default_header('X-Served', per_request=lambda request: request.id)
# --8<-- [end:per-request]


# --8<-- [start:override]
@app.route('/embed')
async def embed(response, **server):
    response.headers['X-Frame-Options'] = 'ALLOWALL'  # not a default: simply added
    response.headers['Cache-Control'] = 'no-store'  # replaces the default of its name
    response.add_vary('Cookie')  # Vary: Accept-Language, Cookie
    return '<iframe-able>'
# --8<-- [end:override]
