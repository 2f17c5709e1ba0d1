"""Prometheus metrics of the whole server, one scrape away.

```python
from tremolo import Tremolo
from tremolo.extensions.metrics import Metrics

app = Tremolo()
app.install(Metrics())  # GET /metrics
```

Each worker counts its own exchanges (by route template, method and status) as they end,
through `tremolo.Telemetry`; a scrape answered by any worker sums the figures of every worker
of the server (see `tremolo.Telemetry.gather`): the workers running, as they published them
at most a second ago, and the counters of those that stopped (restarted, recycled, reloaded).
The text follows the Prometheus exposition format 0.0.4.

| metric | type | labels |
|---|---|---|
| ``tremolo_http_requests_total`` | counter | ``route``, ``method``, ``status`` |
| ``tremolo_http_request_duration_seconds`` | histogram | ``route``, ``method`` |
| ``tremolo_http_request_body_bytes_total`` | counter | ``route``, ``method`` |
| ``tremolo_http_response_body_bytes_total`` | counter | ``route``, ``method`` |
| ``tremolo_http_responses_cut_short_total`` | counter | ``route``, ``method`` |
| ``tremolo_http_requests_in_flight`` | gauge | |
| ``tremolo_http_parse_errors_total`` | counter | ``status``, ``kind`` |
| ``tremolo_connections_open`` | gauge | |
| ``tremolo_websocket_sessions_total`` | counter | |
| ``tremolo_websocket_sessions_open`` | gauge | |
| ``tremolo_sse_sessions_total`` | counter | |
| ``tremolo_sse_sessions_open`` | gauge | |
| ``tremolo_bandwidth_throttled_seconds_total`` | counter | ``direction`` |
| ``tremolo_workers`` | gauge | |
| ``tremolo_worker_restarts_total`` | counter | ``reason`` |

``route`` is the template of the route (``/users/{id:int}``), never the path: a path holds
values without bound. Requests that no route matched have ``route=""``.
"""

from __future__ import annotations

import bisect
import math
from typing import Any, Optional, Sequence

from tremolo.middleware import bandwidth

from tremolo import ExchangeRecord, Extension, Figures, Response, Telemetry, Tremolo

__all__ = ['DEFAULT_BUCKETS', 'Metrics', 'render']

#: Upper bounds of the latency histogram's buckets, in seconds (Prometheus' defaults).
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                   7.5, 10.0)

CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

#: The methods counted by name; any other is counted as ``OTHER``.
_METHODS = frozenset(('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE',
                      'PATCH'))

# The figures this extension counts in each worker (the server's are in Telemetry).
_REQUESTS = 'http_requests'
_DURATION = 'http_request_duration_seconds'
_IN = 'http_request_body_bytes'
_OUT = 'http_response_body_bytes'
_CUT = 'http_responses_cut_short'
_WEBSOCKETS = 'websocket_sessions'
_EVENT_STREAMS = 'sse_sessions'
_THROTTLED = 'bandwidth_throttled_seconds'

#: ``figure name: (metric name, type, help)``: what is exposed, in order.
_METRICS: tuple[tuple[str, str, str, str], ...] = (
    (_REQUESTS, 'http_requests_total', 'counter', 'Requests answered.'),
    (_DURATION, 'http_request_duration_seconds', 'histogram',
     'Seconds from the request head to the end of the response.'),
    (_IN, 'http_request_body_bytes_total', 'counter', 'Bytes of request bodies received.'),
    (_OUT, 'http_response_body_bytes_total', 'counter', 'Bytes of response bodies sent.'),
    (_CUT, 'http_responses_cut_short_total', 'counter',
     'Exchanges cut short: the client left, an event stream closed, a handler failed late.'),
    ('requests_in_flight', 'http_requests_in_flight', 'gauge', 'Requests being answered.'),
    ('rejected', 'http_parse_errors_total', 'counter',
     'Requests the server answered itself (malformed, too big, too slow, over a limit).'),
    ('connections', 'connections_open', 'gauge', 'Connections open.'),
    (_WEBSOCKETS, 'websocket_sessions_total', 'counter', 'WebSocket sessions opened.'),
    ('upgraded_connections', 'websocket_sessions_open', 'gauge', 'WebSocket sessions open.'),
    (_EVENT_STREAMS, 'sse_sessions_total', 'counter', 'Event streams ended.'),
    ('event_streams', 'sse_sessions_open', 'gauge', 'Event streams open.'),
    (_THROTTLED, 'bandwidth_throttled_seconds_total', 'counter',
     'Seconds transfers waited for the bandwidth limiters.'),
    ('workers', 'workers', 'gauge', 'Worker processes running.'),
    ('worker_restarts', 'worker_restarts_total', 'counter',
     'Workers replaced, by reason.'),
)


class _Counts:
    """The figures of one worker, in the shape that costs least per request."""

    __slots__ = ('buckets', 'by_key', 'websockets', 'event_streams')

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        #: (route, method, status) -> [count, seconds, bytes in, bytes out, cut short,
        #: bucket counts...]
        self.by_key: dict[tuple[str, str, int], list[float]] = {}
        self.websockets = 0
        self.event_streams = 0

    def __call__(self, record: ExchangeRecord) -> None:
        request = record.request
        response = record.response
        status = response.status if response.headers_sent else 499
        method = request.method
        if method not in _METHODS:
            method = 'OTHER'  # a client chooses the method: its values must stay few
        key = (request.route or '', method, status)
        entry = self.by_key.get(key)
        if entry is None:
            # One more slot than buckets: durations above the last bound (only in +Inf).
            entry = self.by_key[key] = [0.0] * (6 + len(self.buckets))
        duration = record.duration
        entry[0] += 1
        entry[1] += duration
        entry[2] += request.body_received
        entry[3] += response.body_size
        if not record.complete:
            entry[4] += 1
        entry[5 + bisect.bisect_left(self.buckets, duration)] += 1
        if status == 101:
            self.websockets += 1
        elif response.content_type.startswith('text/event-stream'):
            self.event_streams += 1

    def figures(self) -> Figures:
        figures = Figures()
        buckets = self.buckets
        for (route, method, status), entry in self.by_key.items():
            labels = (('route', route), ('method', method))
            figures.count(_REQUESTS, entry[0], labels + (('status', str(status)),))
            figures.count(_IN, entry[2], labels)
            figures.count(_OUT, entry[3], labels)
            if entry[4]:
                figures.count(_CUT, entry[4], labels)
            figures.count(_DURATION + '_count', entry[0], labels)
            figures.count(_DURATION + '_sum', entry[1], labels)
            cumulative = 0.0
            for index, bound in enumerate(buckets):
                cumulative += entry[5 + index]
                figures.count(_DURATION + '_bucket', cumulative,
                              labels + (('le', repr(bound)),))
            figures.count(_DURATION + '_bucket', entry[0], labels + (('le', '+Inf'),))
        figures.count(_WEBSOCKETS, self.websockets)
        figures.count(_EVENT_STREAMS, self.event_streams)
        for direction, seconds in bandwidth.throttled_seconds().items():
            figures.count(_THROTTLED, seconds, (('direction', direction),))
        return figures


class Metrics(Extension):
    """Serve the Prometheus metrics of the whole server at ``path``.

    Args:
        path: Where the metrics are served (``GET``).
        buckets: Upper bounds of the latency histogram's buckets, in seconds, increasing.
        prefix: The prefix of every metric's name.
        registry: A ``prometheus_client`` ``CollectorRegistry`` whose metrics are served
            after Tremolo's (your own counters; with several workers, use
            ``prometheus_client``'s multiprocess mode for them).

    Raises:
        ValueError: Buckets that are not positive and increasing, a path without ``/``.
    """

    name = 'metrics'

    def __init__(self, path: str = '/metrics', *, buckets: Sequence[float] = DEFAULT_BUCKETS,
                 prefix: str = 'tremolo', registry: Optional[Any] = None) -> None:
        if not path.startswith('/'):
            raise ValueError(f'path {path!r} must start with /')
        buckets = tuple(float(bound) for bound in buckets)
        if not buckets or buckets[0] <= 0 or math.isinf(buckets[-1]) or any(
                a >= b for a, b in zip(buckets, buckets[1:])):
            raise ValueError(f'buckets must be positive, finite and increasing: {buckets!r}')
        if not prefix.replace('_', '').isalnum():
            raise ValueError(f'prefix {prefix!r} must be letters, digits and underscores')
        self.path = path
        self.buckets = buckets
        self.prefix = prefix
        self.registry = registry

    def setup(self, app: Tremolo) -> None:
        buckets = self.buckets

        @app.on_worker_start(priority=-1000)
        def count_exchanges(telemetry: Telemetry, **server: Any) -> None:
            counts = _Counts(buckets)
            telemetry.add_listener(counts)
            telemetry.add_collector(counts.figures)

        @app.route(self.path, methods=['GET'], name='metrics')
        async def metrics(telemetry: Telemetry, response: Response, **server: Any) -> bytes:
            response.set_header('Cache-Control', 'no-store')
            response.set_content_type(CONTENT_TYPE)
            return self.render(telemetry)

    def render(self, telemetry: Telemetry) -> bytes:
        """The text exposition of the whole server's metrics."""
        text = render(telemetry.gather(), self.prefix)
        if self.registry is not None:
            from prometheus_client import generate_latest

            text += generate_latest(self.registry).decode()
        return text.encode()


def render(figures: Figures, prefix: str = 'tremolo') -> str:
    """``figures`` (a `tremolo.Figures` with this extension's and the server's names) in
    the Prometheus text exposition format."""
    lines: list[str] = []
    for figure, metric, kind, help_text in _METRICS:
        name = f'{prefix}_{metric}'
        lines.append(f'# HELP {name} {help_text}')
        lines.append(f'# TYPE {name} {kind}')
        if kind == 'histogram':
            for suffix in ('_bucket', '_count', '_sum'):
                samples = _samples(figures, figure + suffix)
                for labels, value in sorted(samples, key=_histogram_order):
                    lines.append(f'{prefix}_{figure}{suffix}{_labels(labels)} '
                                 f'{_number(value)}')
            continue
        samples = _samples(figures, figure)
        if not samples and figure in _UNLABELLED:
            samples = [((), 0.0)]  # a value from the first scrape on
        for labels, value in sorted(samples):
            lines.append(f'{name}{_labels(labels)} {_number(value)}')
    return '\n'.join(lines) + '\n'


#: The figures without labels: exposed as 0 before anything is counted.
_UNLABELLED = frozenset(('requests_in_flight', 'connections', _WEBSOCKETS,
                         'upgraded_connections', _EVENT_STREAMS, 'event_streams', 'workers'))


def _samples(figures: Figures, name: str) -> list[tuple[tuple[tuple[str, str], ...], float]]:
    found = [(key[1], value) for key, value in figures.counters.items() if key[0] == name]
    found += [(key[1], value) for key, value in figures.gauges.items() if key[0] == name]
    return found


def _histogram_order(sample: tuple[tuple[tuple[str, str], ...], float]) -> tuple[Any, ...]:
    labels = dict(sample[0])
    bound = labels.pop('le', None)
    return (sorted(labels.items()),
            math.inf if bound in (None, '+Inf') else float(bound))


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ''
    return '{' + ','.join(f'{name}="{_escape(value)}"' for name, value in labels) + '}'


def _escape(value: str) -> str:
    # Exposition format: a label value escapes backslash, double quote and line feed.
    return value.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def _number(value: float) -> str:
    if value == math.inf:
        return '+Inf'
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))
