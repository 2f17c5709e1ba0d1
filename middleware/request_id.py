"""Request ids: one identifier per request, in its response, its access log line and its logs.

```python
import logging

from tremolo import Tremolo
from tremolo.middleware.request_id import RequestID

app = Tremolo()
app.install(RequestID())
logging.basicConfig(format='%(asctime)s %(request_id)s %(levelname)s %(message)s')
```

The id is the client's ``X-Request-ID`` when it sends a valid one (a proxy or a calling
service that started the trace), else a new random one (32 hex digits, 128 bits). It is:

- injected into handlers, hooks and providers that take ``request_id``, and set as
  `tremolo.Request.id`;
- echoed in the response's ``X-Request-ID`` (a default header per request: every response,
  errors included, unless the application sets that header itself);
- written at the end of the request's access log line (``id=...``);
- the ``request_id`` attribute of every log record made while the request runs, in the
  handler, in a thread of a sync handler and in tasks started from it (a context variable):
  ``%(request_id)s`` in a log format shows it (``-`` outside requests).
"""

from __future__ import annotations

import contextvars
import logging
import operator
import os
import re
from typing import Any, Callable, Optional

from tremolo import Extension, Request, Tremolo

__all__ = ['RequestID', 'current_request_id']

#: ``request.id``: the value of the response's header.
_request_id = operator.attrgetter('id')

_current: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar(
    'tremolo_request_id', default=None)
#: ``_current.set``, looked up once: it is called for every request.
_set_current = _current.set

#: What an incoming id may be made of: visible ASCII that needs no quoting in a log line or a
#: header (no spaces, quotes, commas or semicolons).
_VALID = re.compile(rb'[A-Za-z0-9._:+/=@~-]+')


def current_request_id() -> Optional[str]:
    """The id of the request being answered in this context, or ``None`` outside one."""
    return _current.get()


class _RandomIds:
    """Random ids from the system's CSPRNG, drawn 4 KiB at a time: one system call per 256
    ids rather than one per request, and the ids of a draw made in one go."""

    __slots__ = ('ready',)

    def __init__(self) -> None:
        #: The ids drawn and not used yet (taken from the end).
        self.ready: list[str] = []

    def __call__(self) -> str:
        ready = self.ready
        return ready.pop() if ready else self.draw()

    def draw(self) -> str:
        """Draw the next 256 ids; return one of them."""
        digits = os.urandom(4096).hex()
        self.ready = [digits[at:at + 32] for at in range(32, 8192, 32)]
        return digits[:32]


def install_log_record_factory() -> None:
    """Give every log record of this process a ``request_id`` attribute: the id of the
    request being answered where the record is made, or ``'-'``. Done once (installing a
    `RequestID` does it when a worker starts); the factory in place before is kept and
    called first."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, 'adds_request_id', False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = _current.get() or '-'
        return record

    factory.adds_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class RequestID(Extension):
    """Give every request an id (see the module's description).

    Args:
        header: The request and response header that carries the id.
        trust_incoming: Use the client's id when it is valid; ``False`` always makes a new
            one (at an edge where clients are not trusted to choose it).
        max_length: The longest incoming id accepted (longer ones are replaced).
        generator: Makes a new id (default: 32 random hex digits).
        log_records: Add ``request_id`` to every log record (`install_log_record_factory`).
        priority: The priority of its hooks: low, so that every other hook and the handler
            already log with the id.

    Raises:
        ValueError: An invalid header name or a ``max_length`` below 1.
    """

    name = 'request-id'

    def __init__(
        self, header: str = 'X-Request-ID', *, trust_incoming: bool = True,
        max_length: int = 200, generator: Optional[Callable[[], str]] = None,
        log_records: bool = True, priority: int = 10,
    ) -> None:
        if not isinstance(header, str) or re.fullmatch(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+",
                                                       header) is None:
            raise ValueError(f'header: {header!r} is not a header name')
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f'max_length must be an integer of at least 1, not {max_length!r}')
        self.header = header
        self._key = header.lower().encode('latin-1')
        self.trust_incoming = trust_incoming
        self.max_length = max_length
        self.generator = generator or _RandomIds()
        self._ids = self.generator if isinstance(self.generator, _RandomIds) else None
        self.log_records = log_records
        self.priority = priority

    def setup(self, app: Tremolo) -> None:
        if self.log_records:
            app.on_worker_start(self.on_worker_start)
        app.on_request(priority=self.priority)(self.on_request)
        # Echoed by a default header per request: no response hook, errors included; its
        # value is the request's `id`, read without a call of ours.
        app.add_default_header(self.header, per_request=_request_id)
        app.provide('request_id')(self.provide)

    def on_worker_start(self) -> None:
        install_log_record_factory()

    def on_request(self, request: Request) -> None:
        """Set the request's id, from the client or new (unless it has one already)."""
        if request.id is not None:
            return
        raw = request.head.headers.get(self._key) if self.trust_incoming else None
        if raw is not None and len(raw) <= self.max_length and _VALID.fullmatch(raw):
            value = raw.decode('ascii')
        elif self._ids is not None:
            # The default generator, without a call: this runs for every request.
            ready = self._ids.ready
            value = ready.pop() if ready else self._ids.draw()
        else:
            value = self.generator()
        request.id = value
        _set_current(value)

    def assign(self, request: Request) -> str:
        """The request's id, set now if it has none yet."""
        if request.id is None:
            self.on_request(request)
        assert request.id is not None
        return request.id

    def echo(self, request: Request) -> Optional[str]:
        """The value of the response's header: the request's id (unless the response sets
        the header itself)."""
        return request.id

    def provide(self, request: Request) -> str:
        """The ``request_id`` injected into handlers, hooks and providers."""
        return request.id if request.id is not None else self.assign(request)

    def __repr__(self) -> str:
        return f'<RequestID {self.header}>'
