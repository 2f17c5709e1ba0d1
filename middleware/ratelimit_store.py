"""What a request-rate limit counts with: rates, results, the store interface and the
in-process store.

A `RateLimitStore` keeps one small state per key (a client, an API key, ...) and answers one
question, atomically: *may one more request of this key go now, and if so count it*
(`RateLimitStore.hit`). Check and count are one call, so that two workers, or two hosts,
sharing a store can never both take the last request of a quota. The algorithms are defined
here as pure functions of a state and a time, so that every store computes the same answers:

- **GCRA** (the generic cell rate algorithm, ITU-T I.371), the default of every store: the
  state is one time, the *theoretical arrival time* of the next request. A quota of ``limit``
  requests per ``period`` lets ``limit`` requests through at once, then one every
  ``period / limit`` seconds: a smooth rate with a burst, and no edge where two windows'
  worth pass within a moment.
- **Sliding window** (approximated from two fixed windows), offered by the in-process store
  and the Redis store: the count of the current window plus the previous window's weighted
  by how much of it still overlaps the last ``period`` seconds. At most ``limit`` requests
  in any window of ``period`` seconds, give or take the approximation's error, which is
  small when requests are spread out.

`MemoryRateLimitStore` holds the states in a dict of this process. With several worker
processes, each has its own: a client is limited by each worker it reaches (see the rate
limiting page); a store shared by every worker and host (Redis:
``tremolo.extensions.redis.Redis.rate_limit_store``) plugs in with the same interface, and
computes the same answers (its scripts are these functions, on the Redis server's clock).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional, Protocol, Union

__all__ = ['ALGORITHMS', 'MemoryRateLimitStore', 'Rate', 'RateLimitResult', 'RateLimitStore',
           'gcra', 'sliding_window']

#: The algorithms a store implements, by name.
ALGORITHMS = ('gcra', 'sliding-window')

_UNITS = {
    's': 1, 'sec': 1, 'second': 1, 'seconds': 1,
    'm': 60, 'min': 60, 'minute': 60, 'minutes': 60,
    'h': 3600, 'hour': 3600, 'hours': 3600,
    'd': 86400, 'day': 86400, 'days': 86400,
}
_RATE = re.compile(r'\s*(\d+)\s*(?:/|per)\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*')


@dataclass(frozen=True)
class Rate:
    """A quota: ``limit`` requests per ``period`` seconds.

    Attributes:
        limit: Requests allowed per period, at least 1.
        period: The period, in seconds, above 0.
    """

    limit: int
    period: float

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise ValueError(f'a rate limit is a number of requests of at least 1, not '
                             f'{self.limit!r}')
        if isinstance(self.period, bool) or not isinstance(self.period, (int, float)) or not (
                self.period > 0 and math.isfinite(self.period)):
            raise ValueError(f'a rate period is a number of seconds above 0, not '
                             f'{self.period!r}')

    @classmethod
    def parse(cls, value: Union[str, Rate]) -> Rate:
        """A rate from text: ``'100/minute'``, ``'10/second'``, ``'5 per 10 seconds'``,
        ``'1000/h'``, ``'20/5m'`` (units: s, m, h, d, in full or plural too).

        Raises:
            ValueError: Text that is not a rate.
        """
        if isinstance(value, Rate):
            return value
        if not isinstance(value, str):
            raise ValueError(f'{value!r} is not a rate such as "100/minute"')
        match = _RATE.fullmatch(value.lower())
        unit = _UNITS.get(match.group(3)) if match else None
        if match is None or unit is None:
            raise ValueError(f'{value!r} is not a rate such as "100/minute" or "5/10s"')
        count = float(match.group(2)) if match.group(2) else 1.0
        return cls(int(match.group(1)), count * unit)

    @property
    def interval(self) -> float:
        """Seconds between two requests at the steady rate."""
        return self.period / self.limit

    def __str__(self) -> str:
        return f'{self.limit}/{self.period:g}s'


class RateLimitResult(NamedTuple):
    """A store's answer for one request.

    Attributes:
        allowed: Whether the request may go (it was counted).
        remaining: Requests still allowed at once after this one.
        retry_after: Seconds until a refused request would be allowed (0 when allowed).
        reset_after: Seconds until the quota is whole again (nothing counted any more).
    """

    allowed: bool
    remaining: int
    retry_after: float
    reset_after: float


#: ``_new_result(RateLimitResult, fields)``: a result from a tuple of its fields, without the
#: argument handling of its constructor.
_new_result: Callable[[type[RateLimitResult], tuple[bool, int, float, float]],
                      RateLimitResult] = tuple.__new__


class RateLimitStore(Protocol):
    """Where request-rate limits keep their counts.

    One method, atomic: implementations (in this process, or shared through Redis) count a
    request and decide on it in one step, on their own clock (a shared store reads one clock
    for every host). They count with GCRA unless their ``algorithm`` attribute names another
    of `ALGORITHMS`. A store that cannot be reached raises `ConnectionError` at once, or
    after a bounded wait (the limiter then applies its ``fail_open`` policy); it reports its
    outages itself (the Redis store logs one warning when Redis is lost, one when it answers
    again), so that the limiter adds no line per request.
    """

    async def hit(self, key: str, limit: int, period: float, cost: int = 1
                  ) -> RateLimitResult:
        """Count a request of ``cost`` under ``limit`` requests per ``period`` seconds for
        ``key``, unless it is over the limit.

        Args:
            key: Identifies what is limited (it includes the limiter's name and the route).
            limit: Requests allowed per period.
            period: The period, in seconds.
            cost: What the request counts for.
        """


def gcra(tat: float, now: float, rate: Rate, cost: int = 1) -> tuple[float, RateLimitResult]:
    """One request under GCRA.

    Args:
        tat: The key's theoretical arrival time (0 for a new key).
        now: The current time, in seconds, on the clock ``tat`` was set with.
        rate: The quota.
        cost: What the request counts for.

    Returns:
        The new theoretical arrival time (unchanged when the request is refused) and the
        result.
    """
    interval = rate.interval
    tat = max(tat, now)
    new_tat = tat + cost * interval
    # A request may go while the schedule is at most one period ahead of now: that lets
    # `limit` requests through at once after a quiet period.
    allow_at = new_tat - rate.period
    if now < allow_at - 1e-9:
        return tat, RateLimitResult(False, 0, allow_at - now, tat - now)
    remaining = int((rate.period - (new_tat - now)) / interval + 1e-9)
    return new_tat, RateLimitResult(True, max(0, remaining), 0.0, new_tat - now)


def sliding_window(state: tuple[float, int, int], now: float, rate: Rate, cost: int = 1
                   ) -> tuple[tuple[float, int, int], RateLimitResult]:
    """One request under the sliding window.

    Args:
        state: ``(start, previous, current)``: the start of the current fixed window and the
            counts of the previous and current windows (``(0.0, 0, 0)`` for a new key).
        now: The current time, in seconds.
        rate: The quota.
        cost: What the request counts for.

    Returns:
        The new state and the result.
    """
    window = rate.period
    limit = rate.limit
    start, previous, current = state
    begin = math.floor(now / window) * window
    if begin != start:
        # The window that just ended counts on (rounded: (k + 1) * w - k * w is not always w
        # in floating point).
        previous = current if round((begin - start) / window) == 1 else 0
        current = 0
        start = begin
    elapsed = now - start
    weight = (window - elapsed) / window
    used = previous * weight + current
    if used + cost > limit + 1e-9:
        if current + cost > limit:
            # Not before the next window, and then only once enough of this one has slid out.
            retry = window - elapsed + window * max(0.0, 1 - (limit - cost) / max(current, 1))
        else:
            # Later in this window, when enough of the previous one has slid out.
            retry = window * (1 - (limit - cost - current) / previous) - elapsed
        reset = window - elapsed + (window if current else 0)
        return (start, previous, current), RateLimitResult(False, 0, max(retry, 0.0), reset)
    current += cost
    remaining = int(limit - (previous * weight + current) + 1e-9)
    reset = window - elapsed + window
    return (start, previous, current), RateLimitResult(True, max(0, remaining), 0.0, reset)


#: States past this many keys are pruned of the ones that no longer limit anything.
_PRUNE_AT = 10000


class MemoryRateLimitStore:
    """Counts in this process, for one worker (or the tests): a `RateLimitStore`.

    Memory follows the keys active lately: once the table grows past ``max_keys`` it forgets
    the keys whose state has decayed to nothing (a key seen again starts anew, as it would
    have), and if that is not enough, the keys unused longest.

    Args:
        algorithm: ``'gcra'`` or ``'sliding-window'``.
        max_keys: The number of keys past which the table is pruned.
        clock: Returns the current time in seconds (default: `time.monotonic`).

    Raises:
        ValueError: An unknown algorithm, or ``max_keys`` below 1.
    """

    def __init__(self, algorithm: str = 'gcra', *, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f'algorithm must be one of {", ".join(ALGORITHMS)}, not '
                             f'{algorithm!r}')
        if isinstance(max_keys, bool) or not isinstance(max_keys, int) or max_keys < 1:
            raise ValueError(f'max_keys must be an integer of at least 1, not {max_keys!r}')
        self.algorithm = algorithm
        self.max_keys = max_keys
        self.clock = clock
        self._sliding = algorithm == 'sliding-window'
        # key -> state, insertion order being use order. GCRA: the theoretical arrival time,
        # also the time the state stops mattering; sliding window: (state, that time).
        self._states: dict[str, Any] = {}
        # The quotas asked for, checked once each: (limit, period) -> their interval.
        self._intervals: dict[tuple[int, float], float] = {}

    async def hit(self, key: str, limit: int, period: float, cost: int = 1
                  ) -> RateLimitResult:
        """Count a request of ``key`` (see `RateLimitStore.hit`)."""
        return self.hit_now(key, limit, period, cost)

    def hit_now(self, key: str, limit: int, period: float, cost: int = 1) -> RateLimitResult:
        """`hit`, without awaiting (this store never waits)."""
        interval = self._intervals.get((limit, period))
        if interval is None:
            interval = self._intervals[(limit, period)] = Rate(limit, period).interval
        now = self.clock()
        states = self._states
        if self._sliding:
            entry = states.pop(key, None)
            state, result = sliding_window(
                entry[0] if entry is not None else (0.0, 0, 0), now, Rate(limit, period), cost)
            if len(states) >= self.max_keys:
                self._prune(now)
            self._states[key] = (state, state[0] + 2 * period)
            return result
        # `gcra`, inlined: this runs for every request.
        tat = states.pop(key, now)
        if tat < now:
            tat = now
        new_tat = tat + cost * interval
        allow_at = new_tat - period
        allowed = now >= allow_at - 1e-9
        if len(states) >= self.max_keys:
            self._prune(now)
            states = self._states
        if not allowed:
            states[key] = tat
            return _new_result(RateLimitResult, (False, 0, allow_at - now, tat - now))
        states[key] = new_tat
        remaining = int((period - (new_tat - now)) / interval + 1e-9)
        return _new_result(RateLimitResult,
                           (True, remaining if remaining > 0 else 0, 0.0, new_tat - now))

    def hit_ahead(self, key: str, period: float, interval: float, cost: int = 1) -> float:
        """`hit_now` with GCRA, the quick way (the algorithm must be ``'gcra'``): no result
        object, for the limiter's every request.

        Args:
            key: What is limited.
            period: The quota's period, in seconds.
            interval: The period divided by the limit (`Rate.interval`), above 0.
            cost: What the request counts for.

        Returns:
            When the request is allowed (and counted): how many seconds the key's schedule
            runs ahead of now, above 0, its ``reset_after``, from which ``remaining`` is
            ``int((period - ahead) / interval)``. When it is refused (and not counted): 0 or
            less (`hit_now` gives the details then).
        """
        now = self.clock()
        states = self._states
        tat: Optional[float] = states.pop(key, None)
        if tat is None:  # a new key: the table grows
            tat = now
            if len(states) >= self.max_keys:
                self._prune(now)
                states = self._states
        elif tat < now:
            tat = now
        new_tat = tat + cost * interval
        if now < new_tat - period - 1e-9:
            states[key] = tat
            return 0.0
        states[key] = new_tat
        return new_tat - now

    def _prune(self, now: float) -> None:
        if self._sliding:
            states = {key: entry for key, entry in self._states.items() if entry[1] > now}
        else:
            states = {key: tat for key, tat in self._states.items() if tat > now}
        while len(states) >= self.max_keys:
            del states[next(iter(states))]  # the one unused longest
        self._states = states

    def __len__(self) -> int:
        return len(self._states)

    def __repr__(self) -> str:
        return f'<MemoryRateLimitStore {self.algorithm} {len(self._states)} keys>'
