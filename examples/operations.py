"""Running in production: metrics, health answers, JSON access log, worker recycling.

Served with ``python -m tremolo examples.operations:app`` (the flags below), or as a script.
"""

from tremolo.extensions.metrics import Metrics

from tremolo import Tremolo

# --8<-- [start:app]
app = Tremolo()
app.install(Metrics())  # GET /metrics: Prometheus text, summed over every worker


@app.route('/orders/{id:int}')
async def order(id, **server):
    return {'order': id}
# --8<-- [end:app]


if __name__ == '__main__':
    # --8<-- [start:run]
    app.run(
        '0.0.0.0', 8000,
        worker_num=4,
        access_log_format='json',  # one JSON object per line
        readiness_path='/ready',  # 503 as soon as a stop or a reload begins
        liveness_path='/live',
        max_requests=100_000,  # then a worker is replaced, one at a time
        max_requests_jitter=10_000,
        max_worker_memory=512 * 1024 * 1024,  # RSS, in bytes
    )
    # --8<-- [end:run]
