"""Middleware that costs nothing for the requests it has nothing to do with: a hook limited
to some methods, a hook limited to the routes that ask for it by an option, and work
registered per response, only when a request needs it."""

from tremolo import Forbidden, Tremolo, UnsupportedMediaType

app = Tremolo()


# --8<-- [start:methods]
@app.on_request(methods=['POST', 'PUT', 'PATCH', 'DELETE'])
def require_json(request):
    """Unsafe methods must send JSON; GET and HEAD requests never call this hook."""
    if request.content_type != 'application/json':
        raise UnsupportedMediaType('send JSON')
# --8<-- [end:methods]


# --8<-- [start:when]
@app.on_request(when=lambda options: options.get('staff_only', False))
def staff(request):
    """Only the routes declared with staff_only=True call this hook; the others never do."""
    if request.headers.get('x-role') != 'staff':
        raise Forbidden('staff only')


@app.route('/admin', staff_only=True)
async def admin():
    return 'the admin page'
# --8<-- [end:when]


# --8<-- [start:before-head]
def remember(response, visited):
    """Set the cookie just before the head is sent, after every on_response hook."""
    response.set_cookie('visited', '.'.join(visited), max_age=86400)


@app.route('/pages/{name}')
async def page(request, response, name):
    visited = request.cookies.get('visited', '').split('.')
    if name not in visited:
        # Only a request that changes something pays for saving it.
        response.before_head(lambda: remember(response, [*filter(None, visited), name]))
    return f'page {name}'
# --8<-- [end:before-head]


@app.route('/notes', methods=['GET', 'POST'])
async def notes(request):
    if request.method == 'POST':
        return await request.json()
    return {'notes': []}
