"""What the server tells about itself: every exchange as it ends, and figures (counters and
gauges) summed over every worker of the server.

One `Telemetry` per worker. The server gives it the end of every exchange as an
`ExchangeRecord` (the access log is one such listener) and its own figures (connections,
requests in flight, requests rejected before they reached the application); extensions add
listeners and figures of their own (`tremolo.extensions.metrics` counts requests by route).
`Telemetry.gather` sums the figures of all the workers of the server: those that run, as they
last published them (every second), and the counters of those that have stopped, kept by the
supervisor across worker restarts and reloads.

Nothing here costs anything per request until a listener is added.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:
    from .request import Request
    from .response import Response

logger = logging.getLogger('tremolo')

#: The labels of one figure: ``(name, value)`` pairs, always in the same order.
Labels = tuple[tuple[str, str], ...]
#: A figure's key: its name and its labels.
FigureKey = tuple[str, Labels]

#: The status logged for a request whose client left before any answer went out (nginx's
#: "client closed request").
CLIENT_CLOSED = 499


class ExchangeRecord:
    """One request and its response, once the exchange has ended: finished, or cut short.

    Attributes:
        request: The request.
        response: Its response.
        duration: Seconds from the complete request head to the end of the response.
        complete: Whether the whole response was sent. ``False`` when the exchange was cut
            short: the client went away mid-stream (or before any answer), an event stream
            was closed, the handler failed after the head was sent, or the server stopped.
    """

    __slots__ = ('request', 'response', 'duration', 'complete', '_ended')

    def __init__(self, request: Request, response: Response, duration: float,
                 complete: bool) -> None:
        self.request = request
        self.response = response
        self.duration = duration
        self.complete = complete
        self._ended: Optional[float] = None

    @property
    def started(self) -> float:
        """When the request head was complete, as a `time.time` timestamp (read while the
        listeners are called: the clock is read once, when first asked)."""
        if self._ended is None:
            self._ended = time.time()
        return self._ended - self.duration

    @property
    def status(self) -> int:
        """The status sent, or 499 when the client left before the head went out."""
        response = self.response
        return response.status if response.headers_sent else CLIENT_CLOSED

    @property
    def response_bytes(self) -> int:
        """Bytes of the response body sent (after filters such as compression)."""
        return self.response.body_size

    @property
    def request_bytes(self) -> int:
        """Bytes of the request body received."""
        return self.request.body_received

    def __repr__(self) -> str:
        return (f'<ExchangeRecord {self.request.method} {self.request.path} {self.status} '
                f'{self.duration * 1000:.3f} ms{"" if self.complete else " cut short"}>')


#: Called with every `ExchangeRecord`, in the worker's event loop. It must not block: it runs
#: in the middle of the connection's work.
ExchangeListener = Callable[[ExchangeRecord], None]


class Figures:
    """Counters and gauges, by name and labels.

    Counters only grow (requests served, bytes sent); gauges go up and down (connections
    open). Figures from several workers add up: `merge`. When a worker stops, its counters
    are kept and its gauges dropped.

    Attributes:
        counters: Counter values by `FigureKey`.
        gauges: Gauge values by `FigureKey`.
    """

    __slots__ = ('counters', 'gauges')

    def __init__(self) -> None:
        self.counters: dict[FigureKey, float] = {}
        self.gauges: dict[FigureKey, float] = {}

    def count(self, name: str, value: float, labels: Labels = ()) -> None:
        """Add ``value`` to the counter ``name`` with ``labels``."""
        key = (name, labels)
        self.counters[key] = self.counters.get(key, 0) + value

    def gauge(self, name: str, value: float, labels: Labels = ()) -> None:
        """Add ``value`` to the gauge ``name`` with ``labels``."""
        key = (name, labels)
        self.gauges[key] = self.gauges.get(key, 0) + value

    def merge(self, other: Figures, gauges: bool = True) -> None:
        """Add ``other``'s counters (and its gauges, unless ``gauges`` is false) to these."""
        counters = self.counters
        for key, value in other.counters.items():
            counters[key] = counters.get(key, 0) + value
        if gauges:
            mine = self.gauges
            for key, value in other.gauges.items():
                mine[key] = mine.get(key, 0) + value

    def value(self, name: str, labels: Labels = ()) -> float:
        """One counter's or gauge's value (0 if absent)."""
        key = (name, labels)
        return self.counters.get(key, self.gauges.get(key, 0))

    def to_data(self) -> tuple[dict[FigureKey, float], dict[FigureKey, float]]:
        """The figures as plain data (for `from_data`, in another process)."""
        return self.counters, self.gauges

    @classmethod
    def from_data(cls, data: tuple[dict[FigureKey, float], dict[FigureKey, float]]
                  ) -> Figures:
        figures = cls()
        figures.counters, figures.gauges = dict(data[0]), dict(data[1])
        return figures

    def __repr__(self) -> str:
        return f'<Figures {len(self.counters)} counters, {len(self.gauges)} gauges>'


#: Returns figures of one worker, computed when asked.
Collector = Callable[[], Figures]


class Telemetry:
    """What one worker tells about itself: every exchange as it ends, and figures that add up
    over every worker of the server.

    Handlers, hooks and extensions receive it by asking for ``telemetry``. Listeners and
    collectors are added at startup (in an extension's ``setup`` through an
    ``on_worker_start`` hook), once per worker.

    The server's own figures (see `collect`):

    - gauges: ``connections`` (open), ``requests_in_flight``, ``upgraded_connections``
      (handed over to another protocol: WebSocket), ``event_streams`` (responses streaming
      server-sent events), ``workers`` (worker processes running, with a supervisor);
    - counters: ``requests`` (started); ``rejected``, labelled ``status`` and ``kind``:
      requests the server answered itself for being malformed, too big, too slow or over a
      connection limit (``bad_request``, ``uri_too_long``, ``header_fields_too_large``,
      ``payload_too_large``, ``expectation_failed``, ``not_implemented``,
      ``version_not_supported``, ``head_timeout``, ``head_too_slow``,
      ``too_many_connections``); ``worker_restarts``, labelled ``reason``: ``exited`` (a
      worker died), ``max_requests``, ``max_worker_memory``, ``reload``.

    Attributes:
        pid: The worker's process id.
        listeners: The `ExchangeListener` functions (add them with `add_listener`).
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.listeners: list[ExchangeListener] = []
        self._collectors: list[Collector] = []
        self._server: Optional[Collector] = None
        self._peers: Optional[Collector] = None

    def add_listener(self, listener: ExchangeListener) -> None:
        """Call ``listener(record)`` with the `ExchangeRecord` of every exchange of this
        worker as it ends (including those cut short)."""
        if not callable(listener):
            raise TypeError(f'a listener is a function of one ExchangeRecord, not {listener!r}')
        self.listeners.append(listener)

    def remove_listener(self, listener: ExchangeListener) -> None:
        """Stop calling ``listener``."""
        self.listeners.remove(listener)

    def add_collector(self, collector: Collector) -> None:
        """Add the `Figures` that ``collector()`` returns to this worker's: it is called each
        time the figures are published (every second) or gathered."""
        if not callable(collector):
            raise TypeError(f'a collector is a function returning Figures, not {collector!r}')
        self._collectors.append(collector)

    @property
    def publishing(self) -> bool:
        """Whether a collector was added: then the worker publishes its figures for the
        other workers, every second (else it publishes none, and costs nothing)."""
        return bool(self._collectors)

    def collect(self) -> Figures:
        """This worker's figures, now: the server's and those of every collector."""
        figures = Figures()
        collectors = self._collectors if self._server is None else [
            self._server, *self._collectors]
        for collector in collectors:
            try:
                figures.merge(collector())
            except Exception:
                logger.exception('collecting figures with %r failed', collector)
        return figures

    def gather(self) -> Figures:
        """The figures of the whole server: this worker's now, the other workers' as they last
        published them, and the counters of the workers that have stopped."""
        figures = self.collect()
        if self._peers is not None:
            figures.merge(self._peers())
        return figures

    def connect(self, server: Collector, peers: Optional[Collector] = None) -> None:
        """Set by the server: its own figures in this worker, and where `gather` finds the
        other workers' (``None`` when this worker is the whole server)."""
        self._server = server
        self._peers = peers

    def __repr__(self) -> str:
        return (f'<Telemetry pid {self.pid}: {len(self.listeners)} listeners, '
                f'{len(self._collectors)} collectors>')
