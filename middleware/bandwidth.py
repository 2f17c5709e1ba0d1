"""Download and upload speed limits, applied as stream filters.

Two tools, one mechanism:

- `BandwidthLimiter`, a middleware, limits every transfer of a *scope*: each connection on
  its own (``'connection'``), all the connections of one client address together
  (``'client'``), or everything the worker sends or receives (``'worker'``).
- `throttle`, a function, limits one request, from a handler or a middleware, and can change
  that limit at any time. The route options ``rate=`` and ``upload_rate=`` use it.

Each limited request gets one `Pacer` per direction: a stream filter that holds every piece of
the body until all of its token buckets (the request's own, and one per scope that applies)
allow it. Downloads are paced as they are written, in pieces of at most ``buffer_size``;
uploads are paced as the handler reads them, and the request-body buffer is kept small, so a
limited upload stops the server reading the socket and the client's TCP window closes: no byte
is buffered ahead of the limit beyond that small buffer.

Limits combine: a piece waits for the slowest of the buckets that apply to it, so the
effective rate of a transfer is the lowest of its limits (and its fair share of any shared
one). The arithmetic lives in `tremolo.middleware.token_bucket`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Optional, Union

from tremolo.middleware.token_bucket import (
    TokenBucket,
    check_burst,
    check_rate,
    default_burst,
)

from tremolo import Context, Request, Response

__all__ = ['BandwidthLimiter', 'Pacer', 'SCOPES', 'throttle', 'throttled_seconds']

#: The scopes a `BandwidthLimiter` can share its limit over.
SCOPES = ('connection', 'client', 'worker')

#: Waits shorter than this are not slept: the debt stays in the bucket and the next piece
#: waits for it, so the rate holds while a fast transfer is spared thousands of tiny timers.
_MIN_SLEEP = 0.002
#: The request-body buffer of a limited upload, at most: what may be read ahead of the limit.
_UPLOAD_BUFFER = 64 * 1024

#: Seconds the transfers of this process have waited for their limits, by direction.
_THROTTLED = {'download': 0.0, 'upload': 0.0}


def throttled_seconds() -> dict[str, float]:
    """Seconds the transfers of this worker process have waited for their speed limits so
    far, by direction (``'download'``, ``'upload'``): what the metrics report."""
    return dict(_THROTTLED)


class Pacer:
    """A stream filter that paces one direction of one request.

    It passes each piece on unchanged (``preserves_length``), after waiting until every one of
    its buckets allows it. Its ``on_wire`` mark keeps it last among a response's filters and
    first among a request body's, so that it paces the bytes as they cross the network (after
    compression, before decompression).

    Attributes:
        own: The request's own bucket (set by `throttle`), or ``None``.
        shared: The scope buckets (set by `BandwidthLimiter`).
    """

    preserves_length = True
    on_wire = True

    __slots__ = ('loop', 'own', 'shared', 'buckets', 'direction')

    def __init__(self, loop: asyncio.AbstractEventLoop, direction: str = 'download') -> None:
        self.loop = loop
        #: ``'download'`` or ``'upload'``: where its waits are counted.
        self.direction = direction
        self.own: Optional[TokenBucket] = None
        self.shared: list[TokenBucket] = []
        self.buckets: tuple[TokenBucket, ...] = ()

    def _update(self) -> None:
        own = (self.own,) if self.own is not None else ()
        self.buckets = own + tuple(self.shared)

    def __call__(self, data: bytes, final: bool) -> Union[bytes, Awaitable[bytes]]:
        if not data or not self.buckets:
            return data
        now = self.loop.time()
        size = len(data)
        delay = 0.0
        for bucket in self.buckets:
            wait = bucket.reserve(size, now)
            if wait > delay:
                delay = wait
        if delay < _MIN_SLEEP:
            return data
        return self._later(delay, data)

    async def _later(self, delay: float, data: bytes) -> bytes:
        _THROTTLED[self.direction] += delay
        await asyncio.sleep(delay)
        return data

    def __repr__(self) -> str:
        return f'<Pacer {list(self.buckets)!r}>'


def _pacer(filters: list[Any], loop: asyncio.AbstractEventLoop,
           add: Any, direction: str = 'download') -> Pacer:
    """The pacer among ``filters``, added with ``add`` if there is none yet."""
    for stream_filter in filters:
        if isinstance(stream_filter, Pacer):
            return stream_filter
    pacer = Pacer(loop, direction)
    add(pacer)
    return pacer


def _share(pacer: Pacer, bucket: TokenBucket) -> None:
    if bucket not in pacer.shared:
        pacer.shared.append(bucket)
        pacer._update()


def throttle(
    response: Response, rate: Optional[float] = None, upload_rate: Optional[float] = None,
    *, burst: Optional[float] = None, context: Optional[Context] = None,
) -> None:
    """Limit the download (``rate``) and/or upload (``upload_rate``) speed of one request, in
    bytes per second; ``0`` lifts that request's own limit. ``None`` leaves a direction as it
    is. Callable again at any time: the new rate applies from the next piece of the body.

    Scope limits of a `BandwidthLimiter` still apply on top: the lowest limit wins.

    Args:
        response: The request's response (its ``request`` is reached through it).
        rate: Download limit in bytes per second.
        upload_rate: Upload limit in bytes per second; takes effect as the handler reads.
        burst: Bytes that may go at once before the rate applies; by default a twentieth of a
            second's worth (16 KiB to 1 MiB).
        context: The request's context, to keep the unread-body buffer small under an upload
            limit before the handler reads (pass it from an ``on_request`` hook).

    Raises:
        ValueError: A negative or non-numeric rate, or a burst below one byte.
    """
    if burst is not None:
        check_burst(burst)
    request = response.request
    loop = asyncio.get_running_loop()
    if rate is not None:
        _set_own(_pacer(response.filters, loop, response.add_filter), rate, burst, 'rate')
    if upload_rate is not None:
        if request.has_body:
            _set_own(_pacer(request.filters, loop, request.add_filter, 'upload'), upload_rate,
                     burst,
                     'upload_rate')
            if upload_rate and context is not None:
                _small_body_buffer(context, upload_rate, burst)


def _set_own(pacer: Pacer, rate: float, burst: Optional[float], name: str) -> None:
    if rate == 0:
        pacer.own = None
    else:
        check_rate(rate, name)
        now = pacer.loop.time()
        if pacer.own is None:
            pacer.own = TokenBucket(rate, burst or default_burst(rate), now)
        else:
            pacer.own.set_rate(rate, now, burst or default_burst(rate))
    pacer._update()


def _small_body_buffer(context: Context, rate: float, burst: Optional[float]) -> None:
    # A limited upload must not be read far ahead of its limit: above this much unread body
    # the server stops reading the socket (tremolo's body-buffer backpressure).
    size = int(min(_UPLOAD_BUFFER, max(burst or 0, rate / 8, 4096)))
    if size < context.option('body_buffer_size', size + 1):
        context.options['body_buffer_size'] = size


class _Scope:
    """The buckets of one scope key: a connection, a client address, or the worker."""

    __slots__ = ('down', 'up')

    def __init__(self, down: Optional[TokenBucket], up: Optional[TokenBucket]) -> None:
        self.down = down
        self.up = up

    def idle(self, now: float) -> bool:
        """Whether its buckets are full again and unused for a while: such buckets are the
        same as new ones, so they can be forgotten and made again when needed."""
        for bucket in (self.down, self.up):
            if bucket is not None and (
                now - bucket.updated < _IDLE_AFTER
                or bucket.tokens + (now - bucket.updated) * bucket.rate < bucket.burst
            ):
                return False
        return True


#: Scope tables are pruned of idle buckets when they grow past this size (and then past
#: twice what remained), so they hold about the keys active lately, at an amortized O(1) cost.
_PRUNE_AT = 1024
#: A bucket must also have been unused this long to be forgotten (a transfer stalled by a slow
#: client keeps its bucket meanwhile).
_IDLE_AFTER = 2.0


class BandwidthLimiter:
    """Middleware limiting download and upload speed over a scope.

    Install it with a low priority so that it is the outermost middleware (its filters pace
    the bytes on the wire whatever the order, but a low priority also limits the responses of
    short-circuiting middleware):

        app.add_middleware(BandwidthLimiter(download_rate=4 * 2**20, scope='worker'),
                           priority=0)

    Args:
        download_rate: Bytes per second sent, over the scope; 0 for no limit.
        upload_rate: Bytes per second received, over the scope; 0 for no limit.
        scope: ``'connection'`` (each connection has the whole rate), ``'client'`` (the
            connections of one client address share it) or ``'worker'`` (every connection of
            the worker process shares it). Transfers that share a rate get equal parts of it.
        burst: Bytes that may be sent at once after an idle period; default: a twentieth of
            a second's worth (16 KiB to 1 MiB).
        upload_burst: The same for uploads; defaults to ``burst``.

    Raises:
        ValueError: A negative rate, an unknown scope, a burst below one byte, or no rate at
            all.
    """

    def __init__(
        self, download_rate: float = 0, upload_rate: float = 0, *,
        scope: str = 'connection', burst: Optional[float] = None,
        upload_burst: Optional[float] = None,
    ) -> None:
        if scope not in SCOPES:
            raise ValueError(f'scope must be one of {", ".join(SCOPES)}, not {scope!r}')
        for name, value in (('download_rate', download_rate), ('upload_rate', upload_rate)):
            if value != 0:
                check_rate(value, name)
        if not download_rate and not upload_rate:
            raise ValueError('BandwidthLimiter needs a download_rate or an upload_rate')
        for value in (burst, upload_burst):
            if value is not None:
                check_burst(value)
        self.download_rate = download_rate
        self.upload_rate = upload_rate
        self.scope = scope
        self.burst = burst
        self.upload_burst = upload_burst if upload_burst is not None else burst
        # The buckets by scope key: a connection, a client address, or None for the worker.
        self._scopes: dict[Any, _Scope] = {}
        self._prune_at = _PRUNE_AT

    def _key(self, request: Request) -> Any:
        if self.scope == 'connection':
            return request.connection
        if self.scope == 'client':
            # The client's address as the request states it: behind a trusted proxy, the
            # forwarded one, so that every client of the proxy is limited on its own.
            client = request.client
            return client[0] if isinstance(client, tuple) else request.connection
        return None

    def _scope_for(self, request: Request, now: float) -> _Scope:
        key = self._key(request)
        scope = self._scopes.get(key)
        if scope is None:
            if len(self._scopes) >= self._prune_at:
                self._prune(now)
            down = up = None
            if self.download_rate:
                down = TokenBucket(self.download_rate,
                                   self.burst or default_burst(self.download_rate), now)
            if self.upload_rate:
                up = TokenBucket(self.upload_rate,
                                 self.upload_burst or default_burst(self.upload_rate), now)
            scope = self._scopes[key] = _Scope(down, up)
        return scope

    def _prune(self, now: float) -> None:
        """Forget the idle buckets (full again, unused for a while)."""
        self._scopes = {key: scope for key, scope in self._scopes.items()
                        if not scope.idle(now)}
        self._prune_at = max(_PRUNE_AT, 2 * len(self._scopes))

    def on_request(self, request: Request, response: Response, context: Context) -> None:
        """Attach this limiter's buckets to the request's pacers."""
        loop = asyncio.get_running_loop()
        scope = self._scope_for(request, loop.time())
        if scope.down is not None:
            _share(_pacer(response.filters, loop, response.add_filter), scope.down)
        if scope.up is not None and request.has_body:
            _share(_pacer(request.filters, loop, request.add_filter, 'upload'), scope.up)
            _small_body_buffer(context, self.upload_rate, self.upload_burst)

    def __repr__(self) -> str:
        return (f'<BandwidthLimiter download={self.download_rate} upload={self.upload_rate} '
                f'scope={self.scope}>')


def route_limits(rate: float, upload_rate: float) -> Callable[[Response, Context], None]:
    """The ``on_request`` hook applying a route's ``rate`` and ``upload_rate`` options
    (installed by the application on the routes that set them)."""
    download = rate or None
    upload = upload_rate or None

    def limit_route(response: Response, context: Context) -> None:
        throttle(response, download, upload, context=context)

    return limit_route
