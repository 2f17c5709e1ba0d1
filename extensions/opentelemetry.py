"""OpenTelemetry tracing: a span per request, with the HTTP semantic conventions.

```python
from tremolo import Tremolo
from tremolo.extensions.opentelemetry import OpenTelemetry

app = Tremolo()
app.install(OpenTelemetry())  # the global tracer provider, or tracer_provider=...
```

Needs ``opentelemetry-api`` (``pip install opentelemetry-api``; an SDK and an exporter to send
the spans anywhere). Each request gets a ``SERVER`` span named ``GET /users/{id:int}`` (the
method and the route template), started before every other middleware and current while they
and the handler run, so that their own spans are its children. It continues the trace of the
request's ``traceparent`` header (or whatever propagator is configured) and ends when the
exchange ends, cut short or not, with these attributes (stable HTTP semantic conventions):
``http.request.method``, ``url.path``, ``url.query``, ``url.scheme``, ``http.route``,
``server.address``, ``server.port``, ``client.address``, ``client.port``,
``network.protocol.version``, ``user_agent.original``, ``http.request.body.size``,
``http.response.status_code``, ``http.response.body.size``; a 5xx answer sets the span's
status to error and ``error.type`` to the status code, and a cut-short exchange sets
``error.type`` to ``cut_short``.
"""

from __future__ import annotations

import contextvars
from typing import Any, Optional

from tremolo import ExchangeRecord, Extension, Request, Telemetry, Tremolo, __version__

__all__ = ['OpenTelemetry']

#: The span of the request being answered (set in the request's own context).
_span: contextvars.ContextVar[Any] = contextvars.ContextVar('tremolo_span', default=None)

_METHODS = frozenset(('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE',
                      'PATCH'))


class OpenTelemetry(Extension):
    """A span per request, through ``opentelemetry-api``.

    Args:
        tracer_provider: The tracer provider to use (default: the global one).
        excluded_paths: Paths that get no span (health checks, ``/metrics``).

    Raises:
        RuntimeError: ``opentelemetry-api`` is not installed.
    """

    name = 'opentelemetry'

    def __init__(self, tracer_provider: Optional[Any] = None, *,
                 excluded_paths: tuple[str, ...] = ()) -> None:
        try:
            from opentelemetry import trace
        except ImportError as exc:
            raise RuntimeError('the OpenTelemetry extension needs opentelemetry-api: '
                               'pip install opentelemetry-api') from exc
        self.tracer = trace.get_tracer('tremolo', __version__, tracer_provider)
        self.excluded_paths = frozenset(excluded_paths)

    def setup(self, app: Tremolo) -> None:
        from opentelemetry import context, propagate, trace

        tracer = self.tracer
        excluded = self.excluded_paths

        # Async, so that it runs in the request's own context (a sync hook runs in a thread).
        @app.on_request(priority=-(2 ** 30))
        async def start_span(request: Request, **server: Any) -> None:
            if request.path in excluded:
                return
            method = request.method
            span = tracer.start_span(
                f'{method if method in _METHODS else "HTTP"} {request.route}'
                if request.route else (method if method in _METHODS else 'HTTP'),
                context=propagate.extract(request.headers), kind=trace.SpanKind.SERVER,
                attributes=_request_attributes(request),
            )
            context.attach(trace.set_span_in_context(span))
            _span.set(span)

        @app.on_worker_start(priority=-1000)
        def end_spans(telemetry: Telemetry, **server: Any) -> None:
            telemetry.add_listener(_end_span)

    def __repr__(self) -> str:
        return '<Extension opentelemetry>'


def _request_attributes(request: Request) -> dict[str, Any]:
    method = request.method
    attributes: dict[str, Any] = {
        'http.request.method': method if method in _METHODS else '_OTHER',
        'url.path': request.path,
        'url.scheme': request.scheme,
        'network.protocol.version': request.version,
    }
    if method not in _METHODS:
        attributes['http.request.method_original'] = method
    if request.query_string:
        attributes['url.query'] = request.query_string
    if request.route:
        attributes['http.route'] = request.route
    host, _, port = request.host.rpartition(':')
    if host and port.isdigit():
        attributes['server.address'] = host.strip('[]')
        attributes['server.port'] = int(port)
    else:
        attributes['server.address'] = request.host
    client = request.client
    if isinstance(client, tuple):
        attributes['client.address'] = client[0]
        attributes['client.port'] = client[1]
    user_agent = request.headers.get('user-agent')
    if user_agent:
        attributes['user_agent.original'] = user_agent
    return attributes


def _end_span(record: ExchangeRecord) -> None:
    span = _span.get()
    if span is None:
        return
    _span.set(None)
    from opentelemetry.trace import Status, StatusCode

    status = record.status
    span.set_attribute('http.response.status_code', status)
    span.set_attribute('http.response.body.size', record.response_bytes)
    if record.request_bytes:
        span.set_attribute('http.request.body.size', record.request_bytes)
    if status >= 500:
        span.set_attribute('error.type', str(status))
        span.set_status(Status(StatusCode.ERROR))
    elif not record.complete:
        span.set_attribute('error.type', 'cut_short')
    span.end()
