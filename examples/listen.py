"""One server, several ports: handy behind an external load balancer."""

from tremolo import Tremolo

app = Tremolo()


@app.route('/')
async def index(request):
    host, port = request.connection.server
    return f'You reached port {port}\n'


if __name__ == '__main__':
    # --8<-- [start:run]
    app.listen(8001)
    app.listen(8002)

    app.run('0.0.0.0', 8000)
    # --8<-- [end:run]
