"""The ASGI extensions Tremolo offers, used by a raw ASGI application."""

# --8<-- [start:app]
import hashlib
from pathlib import Path

PAGE = Path(__file__).parent / 'nginx.conf'


async def app(scope, receive, send):
    if scope['type'] != 'http':
        return
    extensions = scope['extensions']
    if scope['path'] == '/page' and 'http.response.early_hint' in extensions:
        # 103 Early Hints: the browser starts fetching the stylesheet right away.
        await send({'type': 'http.response.early_hint',
                    'links': [b'</style.css>; rel=preload; as=style']})
    if scope['path'] == '/file':
        # The body is a file: sent zero-copy with sendfile where the connection allows.
        await send({'type': 'http.response.start', 'status': 200,
                    'headers': [(b'content-type', b'text/plain')]})
        await send({'type': 'http.response.pathsend', 'path': str(PAGE)})
        return
    if scope['path'] == '/checked':
        # Trailers: a checksum computed while streaming, sent after the body.
        await send({'type': 'http.response.start', 'status': 200, 'trailers': True,
                    'headers': [(b'trailer', b'x-sha256')]})
        digest = hashlib.sha256()
        for piece in (b'first piece, ', b'second piece'):
            digest.update(piece)
            await send({'type': 'http.response.body', 'body': piece, 'more_body': True})
        await send({'type': 'http.response.body', 'body': b''})
        await send({'type': 'http.response.trailers',
                    'headers': [(b'x-sha256', digest.hexdigest().encode())]})
        return
    await send({'type': 'http.response.start', 'status': 200,
                'headers': [(b'content-type', b'text/html')]})
    await send({'type': 'http.response.body', 'body': b'<link rel=stylesheet href=/style.css>'})
# --8<-- [end:app]
