"""Bandwidth control: per-route rates, a shared limit per client address, run-time changes."""

from tremolo.middleware.bandwidth import BandwidthLimiter, throttle

from tremolo import Tremolo

KiB = 1024
MiB = 1024 * KiB

app = Tremolo()


# --8<-- [start:route]
@app.route('/downloads/video')
async def video(rate=512 * KiB, **server):        # each response: 512 KiB/s
    for _ in range(16):
        yield b'v' * (64 * KiB)


@app.route('/uploads', methods=['POST'], upload_rate=256 * KiB)   # each upload: 256 KiB/s
async def uploads(request, **server):
    size = 0
    async for piece in request.stream():          # read as fast as the limit allows
        size += len(piece)
    return {'received': size}
# --8<-- [end:route]


# --8<-- [start:scope]
# Everything under /mirror: 1 MiB/s per client address, all its connections together.
app.install(BandwidthLimiter(download_rate=MiB, scope='client', prefix='/mirror'))


@app.route('/mirror/{name}')
async def mirror(name, **server):
    return b'm' * (256 * KiB)
# --8<-- [end:scope]


# --8<-- [start:runtime]
@app.route('/reports/{name}')
async def report(name, request, response, **server):
    if request.query.get('plan') != 'premium':
        throttle(response, rate=128 * KiB)        # this request only
    return b'r' * (64 * KiB)
# --8<-- [end:runtime]


if __name__ == '__main__':
    # --8<-- [start:run]
    # 8 MiB/s for the whole server: its four workers share one budget.
    app.run('0.0.0.0', 8000, worker_num=4, download_rate=8 * MiB, rate_scope='global')
    # --8<-- [end:run]
