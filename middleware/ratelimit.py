"""Request-rate limits: so many requests per client (or per key) per period, ``429`` above.

```python
from tremolo import Tremolo
from tremolo.middleware.ratelimit import RateLimiter

app = Tremolo()
app.install(RateLimiter('100/minute'))

@app.post('/login', rate_limit='5/minute')     # a route of its own, with its own count
async def login(request): ...

@app.get('/health', rate_limit=False)           # not limited
async def health(): ...
```

Every request is counted against its *key*: the client's address by default (behind a trusted
proxy, the forwarded one: `tremolo.Request.client`), the value of a header (an API key), or
what a function of the request returns. A request over the quota is answered ``429 Too Many
Requests`` with ``Retry-After`` (RFC 9110 §10.2.3); responses carry the IETF
``RateLimit-Policy`` and ``RateLimit`` fields (draft-ietf-httpapi-ratelimit-headers), so that
well-behaved clients can slow down before they are refused: the policy (the route's quota) on
every response of a limited route, as a default header worked out once per route, and the
state of the client's quota on every response to a counted request.

These are limits on the number of requests; the speed of transfers is the bandwidth
limiter's (`tremolo.middleware.bandwidth`). The counts live in a `RateLimitStore`
(`tremolo.middleware.ratelimit_store`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from math import trunc
from typing import Any, Callable, Optional, Union

from tremolo.middleware.ratelimit_store import (
    ALGORITHMS,
    MemoryRateLimitStore,
    Rate,
    RateLimitResult,
    RateLimitStore,
)

from tremolo import (
    ClientDisconnected,
    Context,
    Extension,
    Options,
    RegistrationError,
    Request,
    Response,
    TooManyRequests,
    Tremolo,
)

__all__ = ['RateLimiter']

logger = logging.getLogger('tremolo.ratelimit')

#: A key: ``'client'``, ``'header:Name'`` or a function of the request (``None``: not
#: limited).
KeyLike = Union[str, Callable[[Request], Optional[str]]]


class RateLimiter(Extension):
    """Limit the rate of requests per key.

    Args:
        rate: The quota of every route that sets none of its own: ``'100/minute'``,
            ``'10/second'``, ``'5/10s'`` (see `Rate.parse`) or a `Rate`.
        key: What is counted: ``'client'`` (the client's address), ``'header:X-API-Key'``
            (that header's value; requests without it are counted by address), or a
            function of the request returning a string, or ``None`` to let it through
            unlimited.
        algorithm: ``'gcra'`` (the default: a smooth rate with a burst of the whole quota)
            or ``'sliding-window'`` (at most the quota in any period), for the default store.
            A store given as ``store`` counts with its own (``MemoryRateLimitStore(
            'sliding-window')``, ``redis.rate_limit_store('sliding-window')``): an
            ``algorithm`` given with it must be the same.
        store: Where the counts are kept (default: a `MemoryRateLimitStore` of each worker;
            ``redis.rate_limit_store()`` to share them between workers and hosts).
        fail_open: When the store cannot be reached: ``False`` (default) counts in each
            worker meanwhile (an in-process store with the same algorithm, dropped once the
            store answers again), ``True`` lets requests through unlimited. Either way a
            request waits no longer than the store's own timeout.
        option: The route option that sets a route's own quota (a rate: a count of its own
            per key) or exempts it (``False``).
        headers: Send the ``RateLimit-Policy`` and ``RateLimit`` fields.
        name: Names this limiter's counts in the store (two limiters sharing a store need
            two names) and its policy in the headers.
        priority: The priority of its hooks (see the table of the middleware library).
        prefix: Only paths under this prefix are limited.

    Raises:
        ValueError: An invalid rate, key, algorithm or name, naming the argument; an
            algorithm that is not the one of the store given.
        TypeError: A store without an async ``hit`` method.
    """

    def __init__(
        self, rate: Union[str, Rate] = '100/minute', *, key: KeyLike = 'client',
        algorithm: Optional[str] = None, store: Optional[RateLimitStore] = None,
        fail_open: bool = False, option: str = 'rate_limit', headers: bool = True,
        name: str = 'ratelimit',
        priority: int = 60, prefix: Optional[str] = None,
    ) -> None:
        try:
            self.rate = Rate.parse(rate)
        except ValueError as exc:
            raise ValueError(f'rate: {exc}') from None
        if algorithm is not None and algorithm not in ALGORITHMS:
            raise ValueError(f'algorithm must be one of {", ".join(ALGORITHMS)}, not '
                             f'{algorithm!r}')
        self._header_key: Optional[bytes] = None
        self._key_function: Optional[Callable[[Request], Optional[str]]] = None
        if callable(key):
            self._key_function = key
        elif key == 'client':
            pass
        elif isinstance(key, str) and key.startswith('header:') and key[7:].strip():
            self._header_key = key[7:].strip().lower().encode('latin-1')
        else:
            raise ValueError(f"key must be 'client', 'header:NAME' or a function of the "
                             f"request, not {key!r}")
        if store is None:
            store = MemoryRateLimitStore(algorithm or 'gcra')
        elif not callable(getattr(store, 'hit', None)):
            raise TypeError(f'store: {store!r} has no hit(key, limit, period) method')
        else:
            counts_with = getattr(store, 'algorithm', 'gcra')
            if algorithm is not None and algorithm != counts_with:
                raise ValueError(
                    f'algorithm: the store {store!r} counts with {counts_with!r}; ask the '
                    f'store for {algorithm!r} (MemoryRateLimitStore({algorithm!r}), '
                    f'redis.rate_limit_store({algorithm!r}))')
        if not isinstance(name, str) or not name or not (
                name.isascii() and name.isprintable()) or any(c in name for c in '",;\\ '):
            raise ValueError(f'name must be a word of ASCII without quotes, commas or spaces, '
                             f'not {name!r}')
        self.key = key
        self.algorithm: str = getattr(store, 'algorithm', algorithm or 'gcra')
        self.store = store
        self.fail_open = fail_open
        #: Counts in this worker while the store cannot be reached (``fail_open=False``).
        self._fallback: Optional[MemoryRateLimitStore] = None
        self.option = option
        self.headers = headers
        self.name = name
        self.priority = priority
        self.prefix = prefix
        # Route quotas by option value (checked when a worker starts, see check_routes).
        self._default = self._quota(self.rate)
        self._quotas: dict[Any, Optional[_Quota]] = {None: self._default, False: None}
        self._hit_now = getattr(store, 'hit_now', None)  # the memory store needs no await
        #: The memory store's GCRA, quicker still (see `MemoryRateLimitStore.hit_ahead`).
        self._hit_ahead = store.hit_ahead if isinstance(
            store, MemoryRateLimitStore) and store.algorithm == 'gcra' else None
        #: Where a request's count is kept on its context, for the response hook.
        self._attribute = f'rate_limit_{name}'
        #: The start of the keys of the default quota, shared by the routes without their own.
        self._default_scope = f'{name}:*:'
        self._state_prefix = f'"{name}";r='
        #: Counted by the client's address (not a header, not a function).
        self._by_client = self._key_function is None and self._header_key is None
        #: The store keys of the default quota, by client address (see `on_request_default`).
        self._client_keys: dict[str, str] = {}

    def setup(self, app: Tremolo) -> None:
        app.on_worker_start(self.on_worker_start)
        # The routes exempted (``rate_limit=False``) have no hook at all. A store that never
        # waits is asked without a coroutine per request, and the routes of the default
        # quota counted by address with the memory store's GCRA (the common case) have a
        # hook of their own, that asks for nothing it knows already.
        if self._hit_ahead is not None and self._by_client:
            app.on_request(priority=self.priority, prefix=self.prefix,
                           when=self._default_quota)(self.on_request_default)
            app.on_request(priority=self.priority, prefix=self.prefix,
                           when=self._own_quota)(self.on_request_now)
        else:
            hook = self.on_request if self._hit_now is None else self.on_request_now
            app.on_request(priority=self.priority, prefix=self.prefix,
                           when=self._limited)(hook)
        if self.headers:
            # Default headers, rather than a response hook: the policy is the route's,
            # worked out once per route, and the state of the quota is written per request.
            # Several limiters each state their own (list fields: one line each).
            app.add_default_header('RateLimit-Policy', self.policy_of, prefix=self.prefix,
                                   combine=True)
            # Its values are made of the name (checked here) and numbers: not checked again.
            app.add_default_header('RateLimit', per_request=self.state_of,
                                   prefix=self.prefix, combine=True, validated=True)

    def _limited(self, options: Mapping[str, Any]) -> bool:
        return options.get(self.option) is not False

    def _default_quota(self, options: Mapping[str, Any]) -> bool:
        return options.get(self.option) is None

    def _own_quota(self, options: Mapping[str, Any]) -> bool:
        return options.get(self.option) not in (None, False)

    def policy_of(self, options: Mapping[str, Any]) -> Optional[str]:
        """The ``RateLimit-Policy`` of a route with these effective options (``None``: not
        limited)."""
        value = options.get(self.option)
        try:
            quota = self._quotas[value] if value is None or value is False else (
                self._route_rate(value))
        except (TypeError, ValueError):
            return None  # not a rate: check_routes stops the server, naming the route
        return None if quota is None else quota.policy

    def on_worker_start(self, app: Tremolo, options: Options) -> None:
        """Check the quotas of every route (a bad one stops the server at startup, naming
        the route) and warn when several workers count apart."""
        self.check_routes(app)
        if options.worker_num > 1 and isinstance(self.store, MemoryRateLimitStore):
            logger.warning(
                '%s: each of the %d workers counts its own requests (an in-process store): '
                'a client may get up to %d times the quota; use a shared store to count '
                'them together', self.name, options.worker_num, options.worker_num)

    def check_routes(self, app: Tremolo, prefix: str = '') -> None:
        """Parse the ``option`` of every route of ``app`` (and of its mounted applications).

        Raises:
            RegistrationError: A route's value is not a rate or ``False``, naming the route.
        """
        for record in app.routes:
            for options in (record.plan.options, record.options):
                if self.option not in options:
                    continue
                value = options[self.option]
                try:
                    self._route_rate(value)
                except (ValueError, TypeError) as exc:
                    raise RegistrationError(
                        f'route {prefix + record.path!r}: option {self.option!r}: {exc}; '
                        f'give a rate such as "10/minute", or False') from None
        for sub_prefix, sub_app in app.mounts:
            self.check_routes(sub_app, prefix + sub_prefix)

    def _quota(self, rate: Rate) -> _Quota:
        return _Quota(rate, f'"{self.name}";q={rate.limit};w={rate.period:g}')

    def _route_rate(self, value: Any) -> Optional[_Quota]:
        try:
            return self._quotas[value]
        except KeyError:
            pass
        except TypeError:
            raise TypeError(f'{value!r} is not a rate') from None
        if value is True:
            raise ValueError('True is not a rate')
        quota = self._quotas[value] = self._quota(Rate.parse(value))
        return quota

    def key_of(self, request: Request) -> Optional[str]:
        """What ``request`` is counted by (``None``: not limited)."""
        if self._key_function is not None:
            return self._key_function(request)
        if self._header_key is not None:
            value = request.head.headers.get(self._header_key)
            if value is not None:
                return 'h:' + value.decode('latin-1')
        client = request.client
        return client[0] if isinstance(client, tuple) else 'unix'

    def _key(self, request: Request, context: Context) -> Optional[tuple[_Quota, str]]:
        """The request's quota and store key, or ``None`` when it is not limited."""
        value = context.option(self.option)
        if value is None:
            quota = self._default
            scope = self._default_scope
        else:
            route_quota = self._quotas[value] if value is False else self._route_rate(value)
            if route_quota is None:
                return None
            quota = route_quota
            # A route's own quota is counted for that route alone.
            scope = f'{self.name}:{context.route or "*"}:'
        if self._key_function is None and self._header_key is None:
            client = request.client
            return quota, scope + (client[0] if isinstance(client, tuple) else 'unix')
        key = self.key_of(request)
        if key is None:
            return None
        return quota, scope + key

    async def on_request(self, request: Request, response: Response, context: Context
                         ) -> None:
        """Count the request; refuse it with 429 over the quota."""
        found = self._key(request, context)
        if found is None:
            return
        quota, key = found
        rate = quota.rate
        try:
            result = await self.store.hit(key, rate.limit, rate.period)
        except ConnectionError as exc:
            # The store reports its outages itself: no log line per request here.
            if isinstance(exc, ClientDisconnected):
                raise
            if self.fail_open:
                return
            if self._fallback is None:
                self._fallback = MemoryRateLimitStore(self.algorithm if self.algorithm in
                                                      ALGORITHMS else 'gcra')
            result = self._fallback.hit_now(key, rate.limit, rate.period)
        else:
            if self._fallback is not None:
                self._fallback = None  # the store answers again: the counts are its own
        self._decided(response, context, quota, result)

    def on_request_default(self, request: Request, response: Response, context: Context
                           ) -> None:
        """`on_request_now` for the routes of the default quota, counted by the client's
        address with the memory store's GCRA."""
        if context.customized:  # a hook may have given this request a quota of its own
            self.on_request_now(request, response, context)
            return
        connection = request.connection
        client = connection.client if not connection.trusted else request.client
        host = client[0] if isinstance(client, tuple) else 'unix'
        # The store key of each address, made once: its hash is then worked out once too.
        key = self._client_keys.get(host)
        if key is None:
            if len(self._client_keys) >= 4096:
                self._client_keys.clear()
            key = self._client_keys[host] = self._default_scope + host
        quota = self._default
        # How far ahead the key's schedule runs once the request is counted (0 or less when
        # it is refused, and not counted).
        ahead = self._hit_ahead(key, quota.period, quota.interval)  # type: ignore[misc]
        if ahead > 0:
            if self.headers:
                # `_state`, spelled out: this runs for every request.
                setattr(context, self._attribute,
                        f'{self._state_prefix}'
                        f'{trunc((quota.period - ahead) / quota.interval + 1e-9)};'
                        f't={trunc(ahead + 0.999)}')
            return
        assert self._hit_now is not None
        self._decided(response, context, quota, self._hit_now(key, quota.limit, quota.period))

    def on_request_now(self, request: Request, response: Response, context: Context) -> None:
        """`on_request`, with a store that answers without waiting."""
        found = self._key(request, context)
        if found is None:
            return
        quota, key = found
        if self._hit_ahead is not None:
            # The memory store's GCRA, without a result object (see `on_request_default`).
            ahead = self._hit_ahead(key, quota.period, quota.interval)
            if ahead > 0:
                if self.headers:
                    setattr(context, self._attribute, self._state(quota, ahead))
                    if context.customized:
                        self._own_policy(response, quota)
                return
        assert self._hit_now is not None
        self._decided(response, context, quota, self._hit_now(key, quota.limit, quota.period))

    def _state(self, quota: _Quota, ahead: float) -> str:
        """The ``RateLimit`` field of a request counted ``ahead`` seconds ahead of now: the
        requests left, and the seconds until all are (rounded up), as `hit_now` would count
        them (``ahead`` is at most the period)."""
        # math.trunc rather than int: a quicker call, the same integer.
        return (f'{self._state_prefix}{trunc((quota.period - ahead) / quota.interval + 1e-9)};'
                f't={trunc(ahead + 0.999)}')

    def _decided(self, response: Response, context: Context, quota: _Quota,
                 decision: RateLimitResult) -> None:
        if not decision.allowed:
            retry = max(1, int(decision.retry_after + 0.999))
            headers = [('Retry-After', str(retry))]
            if self.headers:
                headers.extend(self._fields(quota, decision))
            raise TooManyRequests(f'Too many requests: retry in {retry} s',
                                  headers=headers)
        if self.headers:
            setattr(context, self._attribute, self._fields(quota, decision)[1][1])
            if context.customized:
                self._own_policy(response, quota)

    @staticmethod
    def _own_policy(response: Response, quota: _Quota) -> None:
        # A hook changed this request's options: its quota may not be the route's, whose
        # policy the default header states.
        response.headers['RateLimit-Policy'] = quota.policy

    def state_of(self, request: Request) -> Optional[str]:
        """The ``RateLimit`` field of the response to ``request``: where its client stands
        (``None`` when the request was not counted)."""
        state: Optional[str] = getattr(request.context, self._attribute, None)
        return state

    def _fields(self, quota: _Quota, decision: RateLimitResult
                ) -> tuple[tuple[str, str], ...]:
        return (('RateLimit-Policy', quota.policy),
                ('RateLimit', f'{self._state_prefix}{decision.remaining};'
                              f't={int(decision.reset_after + 0.999)}'))

    def __repr__(self) -> str:
        return f'<RateLimiter {self.name} {self.rate} {self.algorithm}>'


class _Quota:
    """A rate and its ``RateLimit-Policy`` value, worked out once."""

    __slots__ = ('rate', 'policy', 'limit', 'period', 'interval')

    def __init__(self, rate: Rate, policy: str) -> None:
        self.rate = rate
        self.policy = policy
        self.limit = rate.limit
        self.period = rate.period
        self.interval = rate.interval
