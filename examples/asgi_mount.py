"""A Tremolo application that mounts an ASGI application under a prefix."""

# --8<-- [start:app]
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from tremolo import Tremolo


async def legacy_users(request):
    return JSONResponse({'path': request.url.path, 'root_path': request.scope['root_path']})

legacy = Starlette(routes=[Route('/users', legacy_users)])

app = Tremolo()


@app.route('/')
async def home(**server):
    return 'the new application'


@app.on_request(prefix='/legacy')
async def require_token(request, response, **server):
    if request.headers.get('authorization') != 'Bearer secret':
        response.set_status(401)
        return 'a token is needed'  # the ASGI application is not called


# Every method, /legacy and everything under it; the hook above and the speed limit apply.
app.mount('/legacy', legacy, rate=1024 * 1024)
# --8<-- [end:app]
