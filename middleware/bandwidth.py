"""Download and upload speed limits, applied as stream filters.

Two tools, one mechanism:

- `BandwidthLimiter`, a middleware, limits every transfer of a *scope*: each connection on
  its own (``'connection'``), all the connections of one client address together
  (``'client'``), everything one worker process sends or receives (``'worker'``), or
  everything the server sends or receives, all its workers together (``'global'``). With a
  ``store`` (`tremolo.extensions.redis.Redis`), the ``'client'`` and ``'global'`` budgets are
  shared by every worker of every host that uses the same store.
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
one). The arithmetic lives in `tremolo.middleware.token_bucket`; the buckets that the
workers of one server share, in `tremolo.middleware.shared_bucket`; the budgets kept in a
store, in `tremolo.middleware.leases`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Optional, Union

from tremolo.middleware.leases import (
    BandwidthStore,
    LeaseAccount,
    StoreBudget,
    default_lease_size,
)
from tremolo.middleware.shared_bucket import SharedRates, SharedTokenBucket
from tremolo.middleware.token_bucket import (
    TokenBucket,
    check_burst,
    check_rate,
    default_burst,
)

from tremolo import Context, Request, Response, Tremolo

__all__ = ['BandwidthLimiter', 'Pacer', 'SCOPES', 'throttle', 'throttled_seconds']

#: The scopes a `BandwidthLimiter` can share its limit over.
SCOPES = ('connection', 'client', 'worker', 'global')
#: The scopes that a store can share between hosts.
STORE_SCOPES = ('client', 'global')

#: A bucket as the pacer uses it: a `TokenBucket`, or a `SharedTokenBucket`.
Bucket = Union[TokenBucket, SharedTokenBucket]

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
        leases: The transfer's accounts with budgets kept in a store (set by
            `BandwidthLimiter` with a ``store``).
    """

    preserves_length = True
    on_wire = True

    __slots__ = ('loop', 'own', 'shared', 'buckets', 'leases', 'direction')

    def __init__(self, loop: asyncio.AbstractEventLoop, direction: str = 'download') -> None:
        self.loop = loop
        #: ``'download'`` or ``'upload'``: where its waits are counted.
        self.direction = direction
        self.own: Optional[TokenBucket] = None
        self.shared: list[Bucket] = []
        self.buckets: tuple[Bucket, ...] = ()
        self.leases: tuple[LeaseAccount, ...] = ()

    def _update(self) -> None:
        own = (self.own,) if self.own is not None else ()
        self.buckets = own + tuple(self.shared)

    def __call__(self, data: bytes, final: bool) -> Union[bytes, Awaitable[bytes]]:
        if not data:
            if final and self.leases:
                self._finish()
            return data
        if not self.buckets and not self.leases:
            return data
        now = self.loop.time()
        size = len(data)
        delay = 0.0
        for bucket in self.buckets:
            wait = bucket.reserve(size, now)
            if wait > delay:
                delay = wait
        if self.leases:
            for index, account in enumerate(self.leases):
                spent = account.take(size, now)
                if spent is None:  # this transfer waits for a lease from the store
                    return self._leased(data, now + delay, index, final)
                if spent > delay:
                    delay = spent
            if final:
                self._finish()
        if delay < _MIN_SLEEP:
            return data
        return self._later(delay, data)

    async def _later(self, delay: float, data: bytes) -> bytes:
        _THROTTLED[self.direction] += delay
        await asyncio.sleep(delay)
        return data

    async def _leased(self, data: bytes, deadline: float, index: int, final: bool) -> bytes:
        size = len(data)
        loop = self.loop
        started = loop.time()
        for account in self.leases[index:]:
            spent = account.take(size, loop.time())
            if spent is None:
                spent = await account.take_later(size)
            deadline = max(deadline, loop.time() + spent)
        if final:
            self._finish()
        delay = deadline - loop.time()
        if delay >= _MIN_SLEEP:
            await asyncio.sleep(delay)
        _THROTTLED[self.direction] += loop.time() - started  # the lease's wait included
        return data

    def _finish(self) -> None:
        for account in self.leases:
            account.finish()

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


def _share(pacer: Pacer, bucket: Bucket) -> None:
    if bucket not in pacer.shared:
        pacer.shared.append(bucket)
        pacer._update()


def _lease_from(pacer: Pacer, budget: StoreBudget, member: str) -> None:
    if not any(account.budget is budget for account in pacer.leases):
        pacer.leases += (LeaseAccount(budget, member, pacer.loop),)


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
    """The buckets of one scope key: a connection, a client address, the worker or the
    server."""

    __slots__ = ('down', 'up')

    def __init__(self, down: Optional[Bucket], up: Optional[Bucket]) -> None:
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

    Install it with ``app.install(limiter)``: its hooks run at ``priority`` 0 by default, so
    that it is the outermost middleware (its filters pace the bytes on the wire whatever the
    order, but a low priority also limits the responses of short-circuiting middleware):

        app.install(BandwidthLimiter(download_rate=4 * 2**20, scope='global'))

    Make it before the server starts (at import, or in the function that builds the
    application): a ``'global'`` limiter sets up memory that the worker processes share when
    they are forked.

    Args:
        download_rate: Bytes per second sent, over the scope; 0 for no limit.
        upload_rate: Bytes per second received, over the scope; 0 for no limit.
        scope: ``'connection'`` (each connection has the whole rate), ``'client'`` (the
            connections of one client address share it), ``'worker'`` (every connection of
            one worker process shares it) or ``'global'`` (every connection of every worker of
            the server shares it). Transfers that share a rate get equal parts of it.
        burst: Bytes that may be sent at once after an idle period; default: a twentieth of
            a second's worth (16 KiB to 1 MiB).
        upload_burst: The same for uploads; defaults to ``burst``.
        store: A store shared by several hosts (`tremolo.extensions.redis.Redis`, or any
            `tremolo.middleware.leases.BandwidthStore`): the ``'client'`` and ``'global'``
            budgets are then shared by every worker of every host that uses it.
        name: The budget's name in the store: limiters with the same name share their
            budget, on every host (give different limiters different names).
        lease_size: With a store, the bytes a transfer leases at a time; default: a fiftieth
            of a second of the rate (16 KiB to 1 MiB).
        fail_open: With a store, while it cannot be reached: ``False`` (the default) keeps
            each worker within the budget on its own; ``True`` lifts the budget until the
            store answers again.
        priority: The priority of its hook when installed (``app.install``).
        prefix: Only paths under this prefix are limited (when installed).

    Raises:
        ValueError: A negative rate, an unknown scope, a burst below one byte, no rate at
            all, a store with a scope that it cannot share, or a bad ``lease_size``.
        TypeError: A ``store`` that is not a bandwidth store.
    """

    def __init__(
        self, download_rate: float = 0, upload_rate: float = 0, *,
        scope: str = 'connection', burst: Optional[float] = None,
        upload_burst: Optional[float] = None, store: Any = None, name: str = 'bandwidth',
        lease_size: Optional[int] = None, fail_open: bool = False, priority: int = 0,
        prefix: Optional[str] = None,
    ) -> None:
        if scope not in SCOPES:
            raise ValueError(f'scope must be one of {", ".join(SCOPES)}, not {scope!r}')
        for rate_name, value in (('download_rate', download_rate), ('upload_rate', upload_rate)):
            if value != 0:
                check_rate(value, rate_name)
        if not download_rate and not upload_rate:
            raise ValueError('BandwidthLimiter needs a download_rate or an upload_rate')
        for size in (burst, upload_burst):
            if size is not None:
                check_burst(size)
        if lease_size is not None and (isinstance(lease_size, bool)
                                       or not isinstance(lease_size, int) or lease_size < 1):
            raise ValueError(f'lease_size must be a number of bytes of at least 1, '
                             f'not {lease_size!r}')
        if not isinstance(name, str) or not name:
            raise ValueError(f'name must be a non-empty string, not {name!r}')
        self.download_rate = download_rate
        self.upload_rate = upload_rate
        self.scope = scope
        self.burst = burst
        self.upload_burst = upload_burst if upload_burst is not None else burst
        self.name = name
        self.fail_open = fail_open
        self.lease_size = lease_size
        self.store: Optional[BandwidthStore] = None
        # The budgets kept in the store, by direction.
        self._budgets: dict[str, StoreBudget] = {}
        if store is not None:
            if scope not in STORE_SCOPES:
                raise ValueError(
                    f"a store shares the 'client' and 'global' scopes between hosts, not "
                    f'{scope!r}: a {scope} limit is kept in each worker')
            self.store = _bandwidth_store(store)
            self._make_budgets()
        # The buckets by scope key: a connection, a client address, or None for the worker.
        self._scopes: dict[Any, _Scope] = {}
        self._prune_at = _PRUNE_AT
        # The shared memory that carries rate changes to every worker of the server, made
        # now, before the workers are forked.
        self._rates = SharedRates(download_rate, upload_rate)
        self._version = 0
        self._global: Optional[_Scope] = None
        if scope == 'global' and store is None:
            self._global = _Scope(*self._buckets(SharedTokenBucket))

        self.priority = priority
        self.prefix = prefix

    def setup(self, app: Tremolo) -> None:
        """Install the limiter's hook on ``app`` (``app.install(limiter)``)."""
        app.on_request(priority=self.priority, prefix=self.prefix)(self.on_request)

    def _make_budgets(self) -> None:
        assert self.store is not None
        for direction, rate, burst in (('download', self.download_rate, self.burst),
                                       ('upload', self.upload_rate, self.upload_burst)):
            if rate:
                self._budgets[direction] = StoreBudget(
                    self.store, f'{self.name}:{direction}', rate, burst or default_burst(rate),
                    self.lease_size or default_lease_size(rate), self.fail_open)

    def _buckets(self, make: Callable[..., Bucket], *now: float,
                 ) -> tuple[Optional[Bucket], Optional[Bucket]]:
        down = up = None
        if self.download_rate:
            down = make(self.download_rate, self.burst or default_burst(self.download_rate),
                        *now)
        if self.upload_rate:
            up = make(self.upload_rate,
                      self.upload_burst or default_burst(self.upload_rate), *now)
        return down, up

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
        if self._global is not None:
            return self._global
        key = self._key(request)
        scope = self._scopes.get(key)
        if scope is None:
            if len(self._scopes) >= self._prune_at:
                self._prune(now)
            scope = self._scopes[key] = _Scope(*self._buckets(TokenBucket, now))
        return scope

    def _prune(self, now: float) -> None:
        """Forget the idle buckets (full again, unused for a while)."""
        self._scopes = {key: scope for key, scope in self._scopes.items()
                        if not scope.idle(now)}
        self._prune_at = max(_PRUNE_AT, 2 * len(self._scopes))

    def on_request(self, request: Request, response: Response, context: Context) -> None:
        """Attach this limiter's buckets (or budgets) to the request's pacers."""
        loop = asyncio.get_running_loop()
        if self._rates.version != self._version:
            self._follow_rates(loop.time())
        if self._budgets:
            self._lease(request, response, context, loop)
            return
        scope = self._scope_for(request, loop.time())
        if scope.down is not None:
            _share(_pacer(response.filters, loop, response.add_filter), scope.down)
        if scope.up is not None and request.has_body:
            _share(_pacer(request.filters, loop, request.add_filter, 'upload'), scope.up)
            _small_body_buffer(context, self.upload_rate, self.upload_burst)

    def _lease(self, request: Request, response: Response, context: Context,
               loop: asyncio.AbstractEventLoop) -> None:
        member = ''
        if self.scope == 'client':
            client = request.client
            member = client[0] if isinstance(client, tuple) else str(client or '')
        down = self._budgets.get('download')
        if down is not None:
            _lease_from(_pacer(response.filters, loop, response.add_filter), down, member)
        up = self._budgets.get('upload')
        if up is not None and request.has_body:
            _lease_from(_pacer(request.filters, loop, request.add_filter, 'upload'), up, member)
            _small_body_buffer(context, self.upload_rate, self.upload_burst)

    async def set_rate(self, download_rate: Optional[float] = None,
                       upload_rate: Optional[float] = None) -> None:
        """Change the limits at run time, for every transfer under this limiter, in every
        worker of the server; with a store, on every host that shares it.

        A direction the limiter was made without cannot be added (``None`` leaves a direction
        as it is). The bursts stay as they were.

        Raises:
            ValueError: A rate that is not above zero, or a direction the limiter has no
                limit for.
            ConnectionError: The store cannot be reached: nothing was changed.
        """
        rates = {'download': download_rate, 'upload': upload_rate}
        for direction, rate in rates.items():
            if rate is None:
                continue
            check_rate(rate, f'{direction}_rate')
            if not getattr(self, f'{direction}_rate'):
                raise ValueError(f'this limiter has no {direction} limit to change')
        for direction, budget in self._budgets.items():
            rate = rates[direction]
            if rate is not None and not await budget.store.set_rate(budget.name, rate,
                                                                    budget.burst):
                raise ConnectionError(f'the store of bandwidth limiter {self.name!r} cannot '
                                      'be reached: the rate was not changed')
        self._rates.write(download_rate or self.download_rate, upload_rate or self.upload_rate)
        self._follow_rates(asyncio.get_running_loop().time())

    def _follow_rates(self, now: float) -> None:
        """Take the rates written in the shared memory (by this worker or another)."""
        self._version, download_rate, upload_rate = self._rates.read()
        self.download_rate = download_rate
        self.upload_rate = upload_rate
        for direction, rate in (('download', download_rate), ('upload', upload_rate)):
            budget = self._budgets.get(direction)
            if budget is not None:
                budget.rate = rate
        scopes = list(self._scopes.values())
        if self._global is not None:
            scopes.append(self._global)
        for scope in scopes:
            for bucket, rate in ((scope.down, download_rate), (scope.up, upload_rate)):
                if bucket is not None and bucket.rate != rate:
                    bucket.set_rate(rate, now)

    def __repr__(self) -> str:
        store = f' store={self.store!r}' if self.store is not None else ''
        return (f'<BandwidthLimiter download={self.download_rate} upload={self.upload_rate} '
                f'scope={self.scope}{store}>')


def _bandwidth_store(store: Any) -> BandwidthStore:
    """The `BandwidthStore` of ``store``: a `tremolo.extensions.redis.Redis` hands out its
    own; any other object must be one."""
    maker = getattr(store, 'bandwidth_store', None)
    if callable(maker):
        store = maker()
    if not (callable(getattr(store, 'lease', None)) and callable(getattr(store, 'set_rate',
                                                                         None))):
        raise TypeError(f'store must be a bandwidth store (a tremolo.extensions.redis.Redis, '
                        f'or an object with lease() and set_rate()), not {store!r}')
    checked: BandwidthStore = store
    return checked


def route_limits(rate: float, upload_rate: float) -> Callable[[Response, Context], None]:
    """The ``on_request`` hook applying a route's ``rate`` and ``upload_rate`` options
    (installed by the application on the routes that set them)."""
    download = rate or None
    upload = upload_rate or None

    def limit_route(response: Response, context: Context) -> None:
        throttle(response, download, upload, context=context)

    return limit_route
