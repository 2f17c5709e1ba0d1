"""Behind a reverse proxy: listen on a UNIX socket as well as on a TCP port."""

from tremolo import Tremolo

app = Tremolo()


@app.route('/')
async def index(request):
    forwarded_for = request.headers.get('x-forwarded-for', 'nobody')  # set by the proxy
    return f'Hello {forwarded_for} (via {request.connection.server})\n'


if __name__ == '__main__':
    # --8<-- [start:run]
    app.listen('/run/tremolo/app.sock')
    app.run('127.0.0.1', 8000, worker_num=4)
    # --8<-- [end:run]
