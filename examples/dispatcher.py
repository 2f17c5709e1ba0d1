"""A dispatcher of one's own: the server layer serves anything with these five methods.

The native framework (`Tremolo`) is one such dispatcher; the ASGI mode is another. This one
answers every request itself, with no routing at all.
"""

from tremolo import Options
from tremolo.server.serve import serve


class Hello:
    """Made once per worker, given its event loop."""

    def __init__(self, loop):
        self.loop = loop
        self.served = 0

    async def startup(self):
        """Before the worker accepts connections."""

    async def shutdown(self):
        """After the last connection of the worker."""

    def connection_made(self, connection):
        return None  # nothing to wait for before the first request

    def connection_lost(self, connection):
        return None

    async def handle(self, request, response):
        self.served += 1
        body = await request.body()
        response.content_type = 'text/plain; charset=utf-8'
        response.send_whole(b'%s %s: request %d, %d bytes of body\n' % (
            request.method.encode(), request.raw_path, self.served, len(body)))


if __name__ == '__main__':
    serve(Options(host='127.0.0.1', port=8000), Hello)
