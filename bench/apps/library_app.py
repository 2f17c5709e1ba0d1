"""The middleware library's benchmark applications for Tremolo (this repository).

- ``bare`` and ``stacked`` answer ``GET /`` alike; ``stacked`` has the middleware a typical
  application installs: request ids, CORS, security headers, a request-rate limiter (with a
  quota no benchmark reaches: every request is still counted) and sessions, its handler reading
  the (empty) session.
- ``gzip`` streams ``GET /json``, 1 MiB of JSON in 64 pieces, through the compression
  middleware at gzip level 6, like ``starlette_gzip_app.py`` on uvicorn.

Served by ``python -m tremolo library_app:bare|stacked|gzip --no-access-log ...``;
``hello_app(pieces)`` makes ``GET /`` with some of the pieces only (``library_inprocess.py``
measures each alone).
"""

from library_data import JSON_PIECES
from tremolo.extensions.sessions import Sessions
from tremolo.middleware.compression import Compression
from tremolo.middleware.cors import CORS
from tremolo.middleware.ratelimit import RateLimiter
from tremolo.middleware.request_id import RequestID
from tremolo.middleware.security import SecurityHeaders

from tremolo import Tremolo

SECRET_KEY = 'benchmark-secret-key-0123456789abcdef'


#: The pieces of the stack, in the order ``stacked`` installs them: name -> what installs it.
PIECES = {
    'request_id': lambda app: app.install(RequestID()),
    'security': lambda app: app.install(SecurityHeaders()),
    'ratelimit': lambda app: app.install(RateLimiter('1000000000/second')),
    'cors': lambda app: app.install(CORS(['https://app.example.com'], allow_credentials=True)),
    'sessions': lambda app: app.install(Sessions(SECRET_KEY)),
}


def hello_app(pieces=()) -> Tremolo:
    """``GET /`` answering ``Hello, World!``, with the named ``PIECES`` installed (a handler
    reading the empty session when ``sessions`` is one of them)."""
    app = Tremolo()
    for piece in pieces:
        PIECES[piece](app)
    if 'sessions' in pieces:
        @app.route('/')
        async def hello(session, content_type='text/plain; charset=utf-8'):
            session.get('user')  # an empty session, read
            return 'Hello, World!'
    else:
        @app.route('/')
        async def hello(content_type='text/plain; charset=utf-8', **server):
            return 'Hello, World!'
    return app


bare = hello_app()
stacked = hello_app(PIECES)

gzip = Tremolo()
gzip.install(Compression(encodings=['gzip'], gzip_level=6))


@gzip.route('/json', content_type='application/json')
async def json_stream(**server):
    for piece in JSON_PIECES:
        yield piece
