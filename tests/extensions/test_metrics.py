"""The Metrics extension: what it counts, in process and summed over real worker processes,
parsed with prometheus_client's own text parser."""

from __future__ import annotations

import asyncio
import json
import signal
import time

import pytest
from tremolo.extensions.metrics import Metrics

from tests.apps.harness import fetch_text
from tests.server.test_running import run_basic, stops_cleanly
from tremolo import Tremolo
from tremolo.testing import TestClient

parser = pytest.importorskip('prometheus_client.parser')


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a text exposition, parsed by prometheus_client."""
    found = {}
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metrics_app() -> Tremolo:
    app = Tremolo()
    app.install(Metrics())

    @app.route('/users/{id:int}')
    async def user(id, **server):
        return f'user {id}'

    @app.post('/upload')
    async def upload(request, **server):
        return str(len(await request.body()))

    @app.route('/stream')
    async def stream(**server):
        yield b'x' * 1000
        yield b'y' * 1000

    @app.route('/slow')
    async def slow(**server):
        await asyncio.sleep(0.3)
        return 'slow'

    return app


async def test_requests_by_route_template_method_and_status(metrics_app):
    async with TestClient(metrics_app) as client:
        for user in (1, 2, 3):
            assert (await client.get(f'/users/{user}')).status == 200
        assert (await client.get('/users/x')).status == 404
        assert (await client.post('/upload', body=b'a' * 500)).text == '500'
        assert (await client.get('/stream')).body == b'x' * 1000 + b'y' * 1000
        response = await client.get('/metrics')
    assert response.status == 200
    assert response.header('content-type') == 'text/plain; version=0.0.4; charset=utf-8'
    found = samples(response.text)
    assert value(found, 'tremolo_http_requests_total', route='/users/{id:int}', method='GET',
                 status='200') == 3
    assert value(found, 'tremolo_http_requests_total', route='', method='GET',
                 status='404') == 1
    assert value(found, 'tremolo_http_request_body_bytes_total', route='/upload',
                 method='POST') == 500
    assert value(found, 'tremolo_http_response_body_bytes_total', route='/stream',
                 method='GET') == 2000
    assert value(found, 'tremolo_http_request_duration_seconds_count',
                 route='/users/{id:int}', method='GET') == 3
    assert value(found, 'tremolo_http_request_duration_seconds_bucket',
                 route='/users/{id:int}', method='GET', le='+Inf') == 3
    assert value(found, 'tremolo_http_request_duration_seconds_bucket',
                 route='/users/{id:int}', method='GET', le='10.0') == 3
    assert value(found, 'tremolo_http_requests_in_flight') == 1  # the scrape itself
    assert value(found, 'tremolo_connections_open') >= 1


async def test_latency_histogram_puts_slow_requests_in_the_right_buckets(metrics_app):
    async with TestClient(metrics_app) as client:
        await client.get('/slow')
        found = samples((await client.get('/metrics')).text)
    labels = {'route': '/slow', 'method': 'GET'}
    assert value(found, 'tremolo_http_request_duration_seconds_bucket', le='0.25',
                 **labels) == 0
    assert value(found, 'tremolo_http_request_duration_seconds_bucket', le='0.5',
                 **labels) == 1
    assert 0.3 <= value(found, 'tremolo_http_request_duration_seconds_sum', **labels) < 5


async def test_parse_errors_by_kind_and_cut_short_exchanges(metrics_app):
    async with TestClient(metrics_app) as client:
        bad = client.connect()
        bad.send(b'GET / HTTP/1.1\r\n\r\n')  # no Host
        assert (await bad.read_response()).status == 400
        long = client.connect()
        long.send(b'GET /' + b'a' * 9000 + b' HTTP/1.1\r\nHost: t\r\n\r\n')
        assert (await long.read_response()).status == 414
        weird = client.connect()
        weird.send(b'BREW /users/1 HTTP/1.1\r\nHost: t\r\n\r\n')
        assert (await weird.read_response()).status == 405
        gone = client.connect()
        gone.send(b'GET /slow HTTP/1.1\r\nHost: t\r\n\r\n')
        await asyncio.sleep(0.05)
        await gone.close()
        await asyncio.sleep(0.4)
        found = samples((await client.get('/metrics')).text)
    assert value(found, 'tremolo_http_parse_errors_total', status='400',
                 kind='bad_request') == 1
    assert value(found, 'tremolo_http_parse_errors_total', status='414',
                 kind='uri_too_long') == 1
    # A method no one knows is counted as OTHER: clients cannot make up label values.
    assert value(found, 'tremolo_http_requests_total', route='', method='OTHER',
                 status='405') == 1
    # The handler answered after its client had left: the answer never arrived.
    assert value(found, 'tremolo_http_requests_total', route='/slow', method='GET',
                 status='200') == 1
    assert value(found, 'tremolo_http_responses_cut_short_total', route='/slow',
                 method='GET') == 1


async def test_websocket_and_event_stream_sessions():
    app = Tremolo()
    app.install(Metrics())

    @app.route('/ws')
    async def echo(websocket, **server):
        await websocket.accept()
        await websocket.send(await websocket.receive())

    @app.route('/events')
    async def events(sse, **server):
        await sse.send('one')

    async with TestClient(app) as client:
        ws = await client.websocket('/ws')
        await ws.send('hi')
        assert await ws.receive() == 'hi'
        await ws.close()
        await asyncio.sleep(0.05)
        assert (await client.get('/events')).status == 200
        found = samples((await client.get('/metrics')).text)
    assert value(found, 'tremolo_websocket_sessions_total') == 1
    assert value(found, 'tremolo_sse_sessions_total') == 1
    assert value(found, 'tremolo_websocket_sessions_open') == 0


async def test_throttled_seconds_from_the_bandwidth_limiter():
    app = Tremolo()
    app.install(Metrics())

    @app.route('/limited', rate=100_000)
    async def limited(**server):
        return b'z' * 40_000

    async with TestClient(app) as client:
        before = value(samples((await client.get('/metrics')).text),
                       'tremolo_bandwidth_throttled_seconds_total', direction='download')
        assert len((await client.get('/limited')).body) == 40_000
        after = value(samples((await client.get('/metrics')).text),
                      'tremolo_bandwidth_throttled_seconds_total', direction='download')
    assert after - before > 0.1


def test_metrics_refuses_bad_arguments():
    with pytest.raises(ValueError, match='buckets'):
        Metrics(buckets=(1.0, 0.5))
    with pytest.raises(ValueError, match='path'):
        Metrics('metrics')
    with pytest.raises(ValueError, match='prefix'):
        Metrics(prefix='my-app')


async def test_a_prometheus_client_registry_is_served_too():
    prometheus_client = pytest.importorskip('prometheus_client')
    registry = prometheus_client.CollectorRegistry()
    orders = prometheus_client.Counter('shop_orders', 'Orders.', registry=registry)
    orders.inc(3)
    app = Tremolo()
    app.install(Metrics(registry=registry))
    async with TestClient(app) as client:
        found = samples((await client.get('/metrics')).text)
    assert value(found, 'shop_orders_total') == 3
    assert value(found, 'tremolo_workers') == 0  # no supervisor in process


@pytest.mark.slow
async def test_one_scrape_sums_every_worker_and_keeps_counts_across_reloads(procs):
    server = run_basic(procs, worker_num=2, metrics=True)
    await server.serving(count=2)
    url = await server.url('/')
    pids = set()
    for _ in range(40):
        pids.add(await fetch_text(url + 'pid'))
    assert len(pids) == 2  # both workers answered some

    async def scrape() -> dict:
        return samples(await fetch_text(url + 'metrics'))

    def pid_requests(found: dict) -> float:
        return value(found, 'tremolo_http_requests_total', route='/pid', method='GET',
                     status='200')

    deadline = time.monotonic() + 5  # the other worker publishes every second
    while pid_requests(found := await scrape()) != 40:
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.2)
    assert value(found, 'tremolo_workers') == 2

    server.send(signal.SIGHUP)
    await server.wait_for('reloaded: 2 new workers serve')
    deadline = time.monotonic() + 10
    while True:  # the old workers stop; their counts stay
        found = await scrape()
        if value(found, 'tremolo_worker_restarts_total', reason='reload') == 2:
            break
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.2)
    assert pid_requests(found) == 40
    await stops_cleanly(server)


async def test_metrics_json_figures_are_plain_numbers():
    # The gathered figures are plain data: what the workers publish for one another.
    app = Tremolo()
    app.install(Metrics())
    async with TestClient(app) as client:
        await client.get('/metrics')
        figures = client.runtime.telemetry.gather()
    json.dumps({str(key): value for key, value in figures.counters.items()})
    assert figures.value('requests') == 1
