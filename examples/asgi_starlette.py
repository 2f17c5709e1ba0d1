"""A Starlette application with a lifespan and a file response, served by Tremolo."""

# --8<-- [start:app]
import contextlib
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import FileResponse, PlainTextResponse
from starlette.routing import Route

HERE = Path(__file__).parent


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {'visits': 0}  # the lifespan state: copied into each request


async def home(request):
    return PlainTextResponse(f'{request.state.visits} visits before this one')


async def readme(request):
    # Served with http.response.pathsend: zero-copy, like Response.sendfile.
    return FileResponse(HERE / 'nginx.conf')


app = Starlette(lifespan=lifespan, routes=[Route('/', home), Route('/conf', readme)])
# --8<-- [end:app]
