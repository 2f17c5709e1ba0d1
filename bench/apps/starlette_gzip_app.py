"""Starlette's GZipMiddleware (level 6) streaming the same 1 MiB of JSON as
``library_app.py``'s ``gzip``, for uvicorn.

Served by ``python -m uvicorn starlette_gzip_app:app --no-access-log ...``.
"""

from library_data import JSON_PIECES
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import StreamingResponse
from starlette.routing import Route


async def stream():
    for piece in JSON_PIECES:
        yield piece


async def json_stream(request):
    return StreamingResponse(stream(), media_type='application/json')


app = Starlette(routes=[Route('/json', json_stream)],
                middleware=[Middleware(GZipMiddleware, minimum_size=500, compresslevel=6)])
