"""The OpenTelemetry extension, with the SDK's in-memory span exporter."""

from __future__ import annotations

import asyncio

import pytest

from tremolo import Tremolo
from tremolo.testing import TestClient

sdk_trace = pytest.importorskip('opentelemetry.sdk.trace')
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from tremolo.extensions.opentelemetry import OpenTelemetry  # noqa: E402


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def traced_app(exporter) -> Tremolo:
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = Tremolo()
    app.install(OpenTelemetry(provider, excluded_paths=('/health',)))
    tracer = provider.get_tracer('test')

    @app.route('/users/{id:int}')
    async def user(id, **server):
        with tracer.start_as_current_span('load user'):
            await asyncio.sleep(0)
        return f'user {id}'

    @app.route('/fail')
    async def fail(**server):
        raise RuntimeError('boom')

    @app.route('/health')
    async def health(**server):
        return 'ok'

    @app.route('/stream')
    async def stream(**server):
        yield b'a' * 100
        await asyncio.sleep(0.2)
        yield b'b'

    return app


async def test_a_server_span_per_request_with_the_http_conventions(traced_app, exporter):
    async with TestClient(traced_app) as client:
        response = await client.get('/users/7?full=1', headers={'User-Agent': 'test/1'})
        assert response.text == 'user 7'
    spans = {span.name: span for span in exporter.get_finished_spans()}
    server = spans['GET /users/{id:int}']
    assert server.kind == trace.SpanKind.SERVER
    attributes = dict(server.attributes)
    assert attributes == {
        'http.request.method': 'GET', 'url.path': '/users/7', 'url.scheme': 'http',
        'network.protocol.version': '1.1', 'url.query': 'full=1',
        'http.route': '/users/{id:int}', 'server.address': 'testserver',
        'client.address': '127.0.0.1', 'client.port': 40000,
        'user_agent.original': 'test/1', 'http.response.status_code': 200,
        'http.response.body.size': 6,
    }
    # The handler's own span is a child of the request's.
    child = spans['load user']
    assert child.parent is not None and child.parent.span_id == server.context.span_id
    assert child.context.trace_id == server.context.trace_id


async def test_the_trace_of_a_traceparent_header_continues(traced_app, exporter):
    trace_id = '4bf92f3577b34da6a3ce929d0e0e4736'
    parent = '00f067aa0ba902b7'
    async with TestClient(traced_app) as client:
        await client.get('/users/1', headers={'traceparent': f'00-{trace_id}-{parent}-01'})
    (span,) = [s for s in exporter.get_finished_spans() if s.name.startswith('GET')]
    assert format(span.context.trace_id, '032x') == trace_id
    assert format(span.parent.span_id, '016x') == parent


async def test_errors_and_exclusions(traced_app, exporter):
    async with TestClient(traced_app) as client:
        assert (await client.get('/fail')).status == 500
        assert (await client.get('/health')).status == 200
        assert (await client.get('/nowhere')).status == 404
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert set(spans) == {'GET /fail', 'GET'}  # no span for /health
    failed = spans['GET /fail']
    assert failed.status.status_code == trace.StatusCode.ERROR
    assert failed.attributes['error.type'] == '500'
    assert spans['GET'].attributes['http.response.status_code'] == 404
    assert 'http.route' not in spans['GET'].attributes


async def test_a_span_ends_when_the_client_leaves_mid_stream(traced_app, exporter):
    async with TestClient(traced_app) as client:
        connection = client.connect()
        connection.send(b'GET /stream HTTP/1.1\r\nHost: t\r\n\r\n')
        await connection.receive()
        await connection.close()
        await asyncio.sleep(0.4)
    (span,) = exporter.get_finished_spans()
    assert span.name == 'GET /stream'
    assert span.attributes['error.type'] == 'cut_short'
    assert span.attributes['http.response.body.size'] == 100
