"""Redis: the store that several hosts share, for bandwidth budgets, request-rate limits,
sessions and broadcast.

```python
from tremolo import Tremolo
from tremolo.extensions.redis import Redis

app = Tremolo()
redis = app.install(Redis('redis://127.0.0.1:6379/0'))
```

The extension owns a connection pool per worker process, opened when the worker starts (after
a ``PING`` that stops the worker with a clear error if Redis cannot be reached) and closed
when it stops. It needs the ``redis`` package: ``pip install 'tremolo[redis]'``. Every key it
writes starts with ``prefix``.

The pieces that take ``store=`` ask it for an adapter of their own, each a few lines over the
same primitives (`Redis.run` and the atomic scripts):

- `Redis.bandwidth_store`: leases of bandwidth tokens (`tremolo.middleware.bandwidth`);
- `Redis.rate_limit_store`: an atomic check-and-count per request (GCRA or the sliding
  window), one round trip (`tremolo.middleware.ratelimit.RateLimiter`);
- `Redis.session_store`: session data with a time to live
  (`tremolo.extensions.sessions.Sessions`);
- `tremolo.extensions.broadcast.Broadcast` uses its pub/sub.

**Outages.** Every operation has a timeout (``timeout``, one second by default): a call that
gets no answer in time is not sent again (a connection found dead at once, as after a restart
of Redis, is replaced and the call sent again once), and the calls a request waits on (its
request-rate count, its session) get ``timeout`` in all, connecting included. The
first failure marks Redis as down and logs one warning; from then on operations fail at once,
without waiting for the network, and a background check pings Redis every ``retry_interval``
seconds until it answers, which is logged once too. What a piece does meanwhile is its own
policy, applied without more log lines: a bandwidth budget keeps each worker within the
budget, or lifts it with ``fail_open=True``; a request-rate limit counts in each worker, or
lets requests through with ``fail_open=True``; sessions answer ``503``; broadcast subscribers
resume when Redis is back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any, Awaitable, Callable, Optional, TypeVar
from urllib.parse import urlsplit, urlunsplit

from tremolo.middleware.ratelimit_store import ALGORITHMS, RateLimitResult

from tremolo import Extension, Tremolo

__all__ = [
    'Redis', 'RedisBandwidthStore', 'RedisRateLimitStore', 'RedisSessionStore',
    'StoreUnavailable',
]

logger = logging.getLogger('tremolo.redis')

T = TypeVar('T')

SCHEMES = ('redis', 'rediss', 'unix')

#: Before any other worker hook: the pool is open when the application's hooks run.
_START_PRIORITY = -(2 ** 30)

#: ``asyncio.timeout`` (Python 3.11+): a deadline without a task of its own.
_timeout: Any = getattr(asyncio, 'timeout', None)


class StoreUnavailable(ConnectionError):
    """Redis cannot be reached now (it is down, or did not answer in time)."""


def _redis_module() -> Any:
    try:
        import redis.asyncio
    except ImportError as exc:
        raise RuntimeError(
            "tremolo.extensions.redis needs the redis package: pip install 'tremolo[redis]'"
        ) from exc
    return redis


def redact(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ''
    host = parts.hostname or ''
    if parts.port is not None:
        host = f'{host}:{parts.port}'
    return urlunsplit((parts.scheme, f'{user}:***@{host}', parts.path, parts.query,
                       parts.fragment))


class Redis(Extension):
    """A Redis server (or a proxy to a cluster of them) as the store of an application.

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` (TLS) or
            ``unix://[[user]:password@]/path/to/socket[?db=N]``.
        prefix: Prepended to every key written (several applications can share a server).
        timeout: Seconds to connect, and to wait for each answer, before Redis is taken for
            down.
        retry_interval: Seconds between two checks while Redis is down.
        fail_open: Start serving even if Redis cannot be reached when a worker starts (a
            warning is logged and the pieces apply their outage policy until it answers);
            ``False`` stops the worker with an error naming the URL.
        **client_options: More options of ``redis.asyncio.Redis`` (``max_connections``,
            ``ssl_ca_certs``, ...).

    Raises:
        RuntimeError: The ``redis`` package is not installed.
        ValueError: A URL of another scheme, or a timeout or interval that is not positive.
    """

    name = 'redis'

    def __init__(
        self, url: str = 'redis://127.0.0.1:6379/0', *, prefix: str = 'tremolo:',
        timeout: float = 1.0, retry_interval: float = 1.0, fail_open: bool = False,
        **client_options: Any,
    ) -> None:
        self._module = _redis_module()
        if not isinstance(url, str) or urlsplit(url).scheme not in SCHEMES:
            raise ValueError(f'Redis url must start with redis://, rediss:// or unix://, '
                             f'not {url!r}')
        for option, value in (('timeout', timeout), ('retry_interval', retry_interval)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f'Redis {option} must be a number of seconds above zero, '
                                 f'not {value!r}')
        if not isinstance(prefix, str):
            raise ValueError(f'Redis prefix must be a string, not {prefix!r}')
        self.url = url
        self.prefix = prefix
        self.timeout = float(timeout)
        self.retry_interval = float(retry_interval)
        self.fail_open = fail_open
        self.client_options = client_options
        self._client: Any = None
        self._owner: Optional[tuple[int, asyncio.AbstractEventLoop]] = None
        self._scripts: dict[str, Any] = {}
        self._down_since: Optional[float] = None
        self._closed = False
        #: Calls under way, and what `close` waits on while some remain.
        self._in_flight = 0
        self._drained: Optional[asyncio.Event] = None
        self._probe: Optional[asyncio.Task[None]] = None
        self._recovered: list[Callable[[], None]] = []
        self._connection_errors: tuple[type[BaseException], ...] = (
            self._module.exceptions.ConnectionError, self._module.exceptions.TimeoutError,
            OSError, asyncio.TimeoutError,
        )

    # -- the extension --------------------------------------------------------------------------

    def setup(self, app: Tremolo) -> None:
        """Open the pool when each worker starts (before the application's own worker hooks)
        and provide the client as ``redis``."""
        app.on_worker_start(priority=_START_PRIORITY)(self.start)
        app.provide('redis')(self.provide_client)

    async def provide_client(self) -> Any:
        """The ``redis.asyncio.Redis`` client of this worker (injected as ``redis``)."""
        return self.client

    async def start(self) -> None:
        """Open this worker's pool and check that Redis answers.

        Raises:
            RuntimeError: Redis cannot be reached, naming the URL (unless ``fail_open``).
        """
        self._closed = False
        client = self.client
        try:
            await client.ping()
        except self._connection_errors as exc:
            if not self.fail_open:
                raise RuntimeError(f'Redis at {redact(self.url)} cannot be reached: {exc} '
                                   '(start it, fix the url, or pass fail_open=True to serve '
                                   'without it until it answers)') from exc
            self._mark_down(exc)

    async def close(self) -> None:
        """Close this worker's pool (and its background check)."""
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        self._closed = True  # what still runs (a lease given back) must not open a new pool
        if self._in_flight:
            # A call under way may be opening a connection: closing the pool now would leave
            # that connection open once it is made. Such calls end within `timeout`.
            drained = self._drained = asyncio.Event()
            try:
                await asyncio.wait_for(drained.wait(), self.timeout)
            except asyncio.TimeoutError:
                pass
            self._drained = None
        client, self._client = self._client, None
        self._owner = None
        self._scripts.clear()
        if client is not None:
            try:
                await client.aclose()
            except Exception:  # closing a pool whose server is gone
                pass

    # -- the primitives -------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The ``redis.asyncio.Redis`` client of this process and event loop (made on first
        use: a pool never crosses a fork)."""
        loop = asyncio.get_running_loop()
        owner = (os.getpid(), loop)
        if self._client is None or self._owner != owner:
            # One retry, for a pooled connection found dead (Redis restarted): a fresh one
            # answers at once. A call that timed out is not sent again, so that `timeout`
            # bounds every call.
            retry = self._module.asyncio.retry.Retry(
                self._module.backoff.NoBackoff(), 1,
                supported_errors=(self._module.exceptions.ConnectionError,))
            self._client = self._module.asyncio.from_url(
                self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
                retry=retry, **self.client_options,
            )
            self._owner = owner
            self._scripts.clear()
            self._down_since = None
            self._probe = None
        return self._client

    @property
    def available(self) -> bool:
        """Whether Redis answered the last time it was asked (in this worker)."""
        return self._down_since is None

    def key(self, *parts: str) -> str:
        """The key made of ``parts`` under this store's prefix."""
        return self.prefix + ':'.join(parts)

    def script(self, name: str, source: str) -> Any:
        """The Lua script ``source`` registered once per pool under ``name`` (run with
        ``EVALSHA``, loaded again after a Redis restart)."""
        client = self.client
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = client.register_script(source)
        return script

    async def run(self, operation: Callable[[Any], Awaitable[T]], *,
                  refusal_is_outage: bool = False, bounded: bool = False) -> T:
        """``await operation(client)``, watching for outages.

        Args:
            operation: Called with the client.
            refusal_is_outage: Also raise `StoreUnavailable` when Redis answers with an error
                (a replica that is read-only during a failover, a server out of memory), for
                the pieces that then apply their outage policy; Redis is not marked down for
                it.
            bounded: The whole operation, connecting included, gets ``timeout`` seconds, or
                Redis is taken for down (for the calls a request waits on; a blocking read of
                one's own, which waits longer by design, is not bounded).

        Raises:
            StoreUnavailable: Redis is down (known already: raised at once), or this operation
                found it so.
        """
        if self._closed:
            raise StoreUnavailable(f'Redis at {redact(self.url)}: the worker has closed its '
                                   'pool')
        if self._down_since is not None and self._owner == (os.getpid(),
                                                           asyncio.get_running_loop()):
            raise StoreUnavailable(f'Redis at {redact(self.url)} is unreachable')
        self._in_flight += 1
        try:
            if not bounded:
                return await operation(self.client)
            # The client's own timeouts bound each read and each connection, but not their
            # sum: a new connection whose handshake times out is retried by some versions.
            if _timeout is not None:
                async with _timeout(self.timeout):
                    return await operation(self.client)
            return await asyncio.wait_for(operation(self.client), self.timeout)
        except self._connection_errors as exc:
            self._mark_down(exc)
            raise StoreUnavailable(f'Redis at {redact(self.url)} is unreachable: '
                                   f'{self._reason(exc)}') from exc
        except self._module.exceptions.ResponseError as exc:
            if not refusal_is_outage:
                raise
            raise StoreUnavailable(f'Redis at {redact(self.url)} refused: {exc}') from exc
        finally:
            self._in_flight -= 1
            if not self._in_flight and self._drained is not None:
                self._drained.set()

    def on_recovered(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` each time Redis answers again after an outage (in this
        worker)."""
        self._recovered.append(callback)

    def _reason(self, exc: BaseException) -> str:
        if str(exc):
            return str(exc)
        if isinstance(exc, asyncio.TimeoutError):
            return f'no answer within {self.timeout:g} s'
        return type(exc).__name__

    def _mark_down(self, exc: BaseException) -> None:
        if self._down_since is not None:
            return
        loop = asyncio.get_running_loop()
        self._down_since = loop.time()
        logger.warning('Redis at %s is unreachable (%s): shared limits apply their outage '
                       'policy; checking again every %g s', redact(self.url),
                       self._reason(exc), self.retry_interval)
        self._probe = loop.create_task(self._check_until_back())

    async def _check_until_back(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.retry_interval)
            try:
                await self.client.ping()
            except self._connection_errors:
                continue
            break
        assert self._down_since is not None
        logger.warning('Redis at %s answers again, after %.1f s', redact(self.url),
                       loop.time() - self._down_since)
        self._down_since = None
        self._probe = None
        for callback in self._recovered:
            callback()

    # -- adapters -------------------------------------------------------------------------------

    def bandwidth_store(self) -> RedisBandwidthStore:
        """The store of shared bandwidth budgets
        (`tremolo.middleware.leases.BandwidthStore`)."""
        return RedisBandwidthStore(self)

    def rate_limit_store(self, algorithm: str = 'gcra') -> RedisRateLimitStore:
        """The store of request-rate limits (`tremolo.middleware.ratelimit.RateLimiter`),
        counting with ``algorithm``: ``'gcra'`` or ``'sliding-window'``.

        Raises:
            ValueError: An unknown algorithm.
        """
        return RedisRateLimitStore(self, algorithm)

    def session_store(self, ttl: float = 14 * 24 * 3600) -> RedisSessionStore:
        """The store of server-side sessions, kept ``ttl`` seconds after their last save."""
        return RedisSessionStore(self, ttl)

    def __repr__(self) -> str:
        return f'<Redis {redact(self.url)} prefix={self.prefix!r}>'


# -- bandwidth budgets ------------------------------------------------------------------------

#: A token bucket with debt (`tremolo.middleware.token_bucket.TokenBucket`), on the clock of
#: the Redis server, so that hosts with different clocks share one time line.
#: KEYS: the bucket, the budget's rate set at run time. ARGV: rate, burst, size.
LEASE_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local size = tonumber(ARGV[3])
local set = redis.call('HMGET', KEYS[2], 'rate', 'burst')
if set[1] then rate = tonumber(set[1]) end
if set[2] then burst = tonumber(set[2]) end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1]) or burst
local updated = tonumber(state[2]) or now
if now > updated then
  tokens = math.min(burst, tokens + (now - updated) * rate)
  updated = now
end
tokens = math.min(burst, tokens - size)
redis.call('HSET', KEYS[1], 'tokens', string.format('%.3f', tokens),
           'updated', string.format('%.6f', updated))
-- Full again, the bucket is the same as a new one: it expires a minute after that.
redis.call('PEXPIRE', KEYS[1], math.ceil(((burst - tokens) / rate + 60) * 1000))
local wait = 0
if tokens < 0 then wait = -tokens / rate end
return {string.format('%.6f', wait), string.format('%.3f', rate)}
"""


class RedisBandwidthStore:
    """Bandwidth budgets in Redis: one atomic script per lease (`LEASE_SCRIPT`).

    Keys: ``{prefix}bandwidth:{budget}:{member}`` (a bucket, expiring once full again) and
    ``{prefix}bandwidth:{budget}:rate`` (the rate set at run time). The budget is a hash tag,
    so that a budget's keys are on one node of a cluster.
    """

    __slots__ = ('redis',)

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def _keys(self, budget: str, member: str) -> list[str]:
        base = self.redis.key('bandwidth', '{' + budget + '}')
        return [f'{base}:{member}', f'{base}:rate']

    async def lease(self, budget: str, member: str, rate: float, burst: float,
                    size: int) -> Optional[tuple[float, float]]:
        """See `tremolo.middleware.leases.BandwidthStore.lease`."""
        keys = self._keys(budget, member)
        try:
            script = self.redis.script('lease', LEASE_SCRIPT)
            wait, new_rate = await self.redis.run(
                lambda client: script(keys=keys, args=[rate, burst, size], client=client))
        except StoreUnavailable:
            return None
        return float(wait), float(new_rate)

    async def set_rate(self, budget: str, rate: float, burst: float) -> bool:
        """See `tremolo.middleware.leases.BandwidthStore.set_rate`."""
        key = self._keys(budget, '')[1]
        try:
            await self.redis.run(
                lambda client: client.hset(key, mapping={'rate': rate, 'burst': burst}))
        except StoreUnavailable:
            return False
        return True

    def __repr__(self) -> str:
        return repr(self.redis)


# -- request-rate limits ----------------------------------------------------------------------

#: The generic cell rate algorithm (`tremolo.middleware.ratelimit_store.gcra`, the same
#: arithmetic in the same order): one key per client holds the theoretical arrival time of its
#: next request; a request is allowed when it comes no earlier than ``period`` before it. On the
#: clock of the Redis server, so that hosts with different clocks share one time line; times
#: are written with 17 significant digits, so that a state read back is the state written.
#: KEYS: the client's key. ARGV: limit (requests per period), period (seconds), cost.
GCRA_SCRIPT = """
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local interval = period / limit
local tat = tonumber(redis.call('GET', KEYS[1])) or 0
if tat < now then tat = now end
local new_tat = tat + cost * interval
local allow_at = new_tat - period
if now < allow_at - 1e-9 then
  return {0, 0, string.format('%.6f', allow_at - now), string.format('%.6f', tat - now)}
end
redis.call('SET', KEYS[1], string.format('%.17g', new_tat), 'PX',
           math.max(1, math.ceil((new_tat - now) * 1000)))
local remaining = math.max(0, math.floor((period - (new_tat - now)) / interval + 1e-9))
return {1, remaining, '0', string.format('%.6f', new_tat - now)}
"""

#: The sliding window (`tremolo.middleware.ratelimit_store.sliding_window`, the same
#: arithmetic in the same order): a hash per client holds the start of its current fixed
#: window and the counts of that window and the one before; the key expires when neither
#: counts any more.
#: KEYS: the client's key. ARGV: limit (requests per period), period (seconds), cost.
SLIDING_WINDOW_SCRIPT = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'start', 'previous', 'current')
local start = tonumber(state[1]) or 0
local previous = tonumber(state[2]) or 0
local current = tonumber(state[3]) or 0
local begin = math.floor(now / window) * window
if begin ~= start then
  if math.floor((begin - start) / window + 0.5) == 1 then previous = current else previous = 0 end
  current = 0
  start = begin
end
local elapsed = now - start
local weight = (window - elapsed) / window
local used = previous * weight + current
if used + cost > limit + 1e-9 then
  local retry
  if current + cost > limit then
    retry = window - elapsed + window * math.max(0, 1 - (limit - cost) / math.max(current, 1))
  else
    retry = window * (1 - (limit - cost - current) / previous) - elapsed
  end
  local reset = window - elapsed
  if current > 0 then reset = reset + window end
  return {0, 0, string.format('%.6f', math.max(retry, 0)), string.format('%.6f', reset)}
end
current = current + cost
redis.call('HSET', KEYS[1], 'start', string.format('%.17g', start),
           'previous', string.format('%.17g', previous),
           'current', string.format('%.17g', current))
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((start + 2 * window - now) * 1000)))
local remaining = math.max(0, math.floor(limit - (previous * weight + current) + 1e-9))
return {1, remaining, '0', string.format('%.6f', window - elapsed + window)}
"""

_SCRIPTS = {'gcra': GCRA_SCRIPT, 'sliding-window': SLIDING_WINDOW_SCRIPT}


class RedisRateLimitStore:
    """Request-rate limits in Redis (a `tremolo.middleware.ratelimit_store.RateLimitStore`):
    an atomic check-and-count per request, one round trip, with `GCRA_SCRIPT` or
    `SLIDING_WINDOW_SCRIPT`.

    Keys: ``{prefix}ratelimit:gcra:{key}`` or ``{prefix}ratelimit:window:{key}`` (one per
    algorithm, so that a limiter can change its algorithm while the other's keys expire),
    expiring when they no longer limit anything.

    Args:
        redis: The store.
        algorithm: ``'gcra'`` or ``'sliding-window'``.

    Raises:
        ValueError: An unknown algorithm.
    """

    __slots__ = ('redis', 'algorithm', '_script_name', '_source', '_namespace')

    def __init__(self, redis: Redis, algorithm: str = 'gcra') -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f'algorithm must be one of {", ".join(ALGORITHMS)}, not '
                             f'{algorithm!r}')
        self.redis = redis
        self.algorithm = algorithm
        self._script_name = f'ratelimit:{algorithm}'
        self._source = _SCRIPTS[algorithm]
        self._namespace = 'gcra' if algorithm == 'gcra' else 'window'

    async def hit(self, key: str, limit: int, period: float, cost: int = 1) -> RateLimitResult:
        """Count a request of ``cost`` under ``limit`` requests per ``period`` seconds for
        ``key``, unless it is over the limit (see
        `tremolo.middleware.ratelimit_store.RateLimitStore.hit`).

        Raises:
            StoreUnavailable: Redis cannot be reached, or refuses to write (the limiter
                applies its ``fail_open`` policy).
        """
        script = self.redis.script(self._script_name, self._source)
        full_key = self.redis.key('ratelimit', self._namespace, key)
        allowed, remaining, retry_after, reset_after = await self.redis.run(
            lambda client: script(keys=[full_key], args=[limit, period, cost],
                                  client=client),
            refusal_is_outage=True, bounded=True)
        return RateLimitResult(bool(allowed), int(remaining), float(retry_after),
                               float(reset_after))

    def __repr__(self) -> str:
        return f'<RedisRateLimitStore {self.algorithm} in {self.redis!r}>'


# -- sessions ---------------------------------------------------------------------------------

class RedisSessionStore:
    """Server-side sessions in Redis: the data of each session as JSON under
    ``{prefix}session:{id}``, expiring ``ttl`` seconds after its last save.

    Args:
        redis: The store.
        ttl: Seconds a session is kept after its last save.
    """

    __slots__ = ('redis', 'ttl')

    def __init__(self, redis: Redis, ttl: float) -> None:
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0:
            raise ValueError(f'session ttl must be a number of seconds above zero, not {ttl!r}')
        self.redis = redis
        self.ttl = ttl

    async def load(self, session_id: str) -> Optional[dict[str, Any]]:
        """The data of a session, or ``None`` if it does not exist (or expired).

        Raises:
            StoreUnavailable: Redis cannot be reached.
        """
        key = self.redis.key('session', session_id)
        raw = await self.redis.run(lambda client: client.get(key), refusal_is_outage=True,
                                   bounded=True)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None  # not written by this store: no session
        return data if isinstance(data, dict) else None

    async def save(self, session_id: str, data: dict[str, Any],
                   ttl: Optional[float] = None) -> None:
        """Store the data of a session (JSON), for ``ttl`` seconds (the store's by default).

        Raises:
            StoreUnavailable: Redis cannot be reached.
            TypeError: The data cannot be written as JSON.
        """
        key = self.redis.key('session', session_id)
        payload = json.dumps(data, separators=(',', ':'))
        milliseconds = max(1, int((ttl or self.ttl) * 1000))
        await self.redis.run(lambda client: client.set(key, payload, px=milliseconds),
                             refusal_is_outage=True, bounded=True)

    async def delete(self, session_id: str) -> None:
        """Forget a session.

        Raises:
            StoreUnavailable: Redis cannot be reached.
        """
        key = self.redis.key('session', session_id)
        await self.redis.run(lambda client: client.delete(key), refusal_is_outage=True,
                             bounded=True)

    def __repr__(self) -> str:
        return f'<RedisSessionStore ttl={self.ttl:g} in {self.redis!r}>'
