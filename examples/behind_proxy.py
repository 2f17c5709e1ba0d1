"""Behind a reverse proxy: trust it, and see the real client, scheme and host."""

from tremolo import Tremolo

app = Tremolo()


@app.route('/')
async def index(request):
    return {
        'client': request.client,  # from X-Forwarded-For / Forwarded, via a trusted proxy
        'scheme': request.scheme,  # from X-Forwarded-Proto / Forwarded: proto=
        'url': request.url,
        'proxy': request.connection.client,  # who connected: the proxy
    }


if __name__ == '__main__':
    # --8<-- [start:run]
    app.listen('/run/tremolo/app.sock')
    app.run('127.0.0.1', 8000, worker_num=4, trusted_proxies=['unix', '127.0.0.1'])
    # --8<-- [end:run]
