"""What a request-rate limit counts with: rates, decisions, the store interface and the
in-process store.

A `RateLimitStore` keeps one small state per key (a client, an API key, ...) and answers one
question, atomically: *may one more request of this key go now, and if so count it*
(`RateLimitStore.hit`). Check and count are one call, so that two workers, or two hosts,
sharing a store can never both take the last request of a quota. Two algorithms are defined
here as pure functions of a state and a time, so that every store computes the same answers:

- **GCRA** (the generic cell rate algorithm, ITU-T I.371): the state is one time, the
  *theoretical arrival time* of the next request. A quota of ``limit`` requests per ``period``
  lets ``limit`` requests through at once, then one every ``period / limit`` seconds: a smooth
  rate with a burst, and no edge where two windows' worth pass within a moment.
- **Sliding window** (approximated from two fixed windows): the count of the current window
  plus the previous window's weighted by how much of it still overlaps the last ``period``
  seconds. At most ``limit`` requests in any window of ``period`` seconds, give or take the
  approximation's error, which is small when requests are spread out.

`MemoryRateLimitStore` holds the states in a dict of this process. With several worker
processes, each has its own: a client is limited by each worker it reaches (see the rate
limiting page); a store shared by every worker and host (Redis) plugs in with the same
interface.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Protocol, Union

__all__ = ['ALGORITHMS', 'Decision', 'MemoryRateLimitStore', 'Rate', 'RateLimitStore', 'gcra',
           'sliding_window']

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


class Decision(NamedTuple):
    """A store's answer for one request.

    Attributes:
        allowed: Whether the request may go (it was counted).
        limit: The quota's number of requests.
        remaining: Requests still allowed now, after this one.
        reset: Seconds until the quota is whole again (nothing counted any more).
        retry_after: Seconds until a request would be allowed (0 when this one was).
    """

    allowed: bool
    limit: int
    remaining: int
    reset: float
    retry_after: float


class RateLimitStore(Protocol):
    """Where request-rate limits keep their counts.

    One method, atomic: implementations (in this process, or shared through Redis) count a
    request and decide on it in one step, with the algorithms of this module, reading their
    own clock (a shared store reads one clock for every host).
    """

    async def hit(self, key: str, rate: Rate, algorithm: str) -> Decision:
        """Count one request of ``key`` against ``rate`` if it is allowed now.

        Args:
            key: Identifies what is limited (it includes the limiter's name and the route).
            rate: The quota.
            algorithm: ``'gcra'`` or ``'sliding-window'``.
        """


def gcra(tat: float, now: float, rate: Rate) -> tuple[float, Decision]:
    """One request under GCRA.

    Args:
        tat: The key's theoretical arrival time (0 for a new key).
        now: The current time, in seconds, on the clock ``tat`` was set with.
        rate: The quota.

    Returns:
        The new theoretical arrival time (unchanged when the request is refused) and the
        decision.
    """
    interval = rate.interval
    tat = max(tat, now)
    new_tat = tat + interval
    # A request may go while the schedule is at most one period ahead of now: that lets
    # `limit` requests through at once after a quiet period.
    allow_at = new_tat - rate.period
    if now < allow_at - 1e-9:
        return tat, Decision(False, rate.limit, 0, tat - now, allow_at - now)
    remaining = int((rate.period - (new_tat - now)) / interval + 1e-9)
    return new_tat, Decision(True, rate.limit, max(0, remaining), new_tat - now, 0.0)


def sliding_window(state: tuple[float, int, int], now: float, rate: Rate
                   ) -> tuple[tuple[float, int, int], Decision]:
    """One request under the sliding window.

    Args:
        state: ``(start, previous, current)``: the start of the current fixed window and the
            counts of the previous and current windows (``(0.0, 0, 0)`` for a new key).
        now: The current time, in seconds.
        rate: The quota.

    Returns:
        The new state and the decision.
    """
    window = rate.period
    limit = rate.limit
    start, previous, current = state
    begin = math.floor(now / window) * window
    if begin != start:
        previous = current if begin - start == window else 0
        current = 0
        start = begin
    elapsed = now - start
    weight = (window - elapsed) / window
    used = previous * weight + current
    if used + 1 > limit + 1e-9:
        if current + 1 > limit:
            # Not before the next window, and then only once enough of this one has slid out.
            retry = window - elapsed + window * max(0.0, 1 - (limit - 1) / current)
        else:
            # Later in this window, when enough of the previous one has slid out.
            retry = window * (1 - (limit - 1 - current) / previous) - elapsed
        reset = window - elapsed + (window if current else 0)
        return (start, previous, current), Decision(False, limit, 0, reset, max(retry, 0.0))
    current += 1
    remaining = int(limit - (previous * weight + current) + 1e-9)
    reset = window - elapsed + window
    return (start, previous, current), Decision(True, limit, max(0, remaining), reset, 0.0)


#: States past this many keys are pruned of the ones that no longer limit anything.
_PRUNE_AT = 10000


class MemoryRateLimitStore:
    """Counts in this process, for one worker (or the tests): a `RateLimitStore`.

    Memory follows the keys active lately: once the table grows past ``max_keys`` it forgets
    the keys whose state has decayed to nothing (a key seen again starts anew, as it would
    have), and if that is not enough, the keys unused longest.

    Args:
        max_keys: The number of keys past which the table is pruned.
        clock: Returns the current time in seconds (default: `time.monotonic`).
    """

    def __init__(self, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(max_keys, bool) or not isinstance(max_keys, int) or max_keys < 1:
            raise ValueError(f'max_keys must be an integer of at least 1, not {max_keys!r}')
        self.max_keys = max_keys
        self.clock = clock
        # key -> (state, the time the state stops mattering); insertion order is use order.
        self._states: dict[str, tuple[Any, float]] = {}

    async def hit(self, key: str, rate: Rate, algorithm: str) -> Decision:
        """Count one request of ``key`` (see `RateLimitStore.hit`)."""
        return self.hit_now(key, rate, algorithm)

    def hit_now(self, key: str, rate: Rate, algorithm: str) -> Decision:
        """`hit`, without awaiting (this store never waits)."""
        now = self.clock()
        states = self._states
        entry = states.pop(key, None)
        previous: Any = entry[0] if entry is not None else None
        state: Any
        if algorithm == 'gcra':
            state, decision = gcra(previous if previous is not None else 0.0, now, rate)
            expires = state
        elif algorithm == 'sliding-window':
            state, decision = sliding_window(
                previous if previous is not None else (0.0, 0, 0), now, rate)
            expires = state[0] + 2 * rate.period
        else:
            raise ValueError(f'unknown algorithm {algorithm!r}; known: {", ".join(ALGORITHMS)}')
        if len(states) >= self.max_keys:
            self._prune(now)
        self._states[key] = (state, expires)
        return decision

    def _prune(self, now: float) -> None:
        states = {key: entry for key, entry in self._states.items() if entry[1] > now}
        while len(states) >= self.max_keys:
            del states[next(iter(states))]  # the one unused longest
        self._states = states

    def __len__(self) -> int:
        return len(self._states)

    def __repr__(self) -> str:
        return f'<MemoryRateLimitStore {len(self._states)} keys>'
