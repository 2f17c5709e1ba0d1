"""Bandwidth budgets kept in a store that several hosts share (Redis): tokens leased in slices.

A budget shared by several machines cannot be a bucket in memory: it lives in the store, and
every host takes its tokens from there. Asking the store for every piece of every transfer
would cost a round trip per 16 KiB; instead each transfer *leases* a slice of tokens at a time
(a fiftieth of a second of the budget by default) and spends it piece by piece, asking for the
next slice before the current one runs out so that the round trip never stalls it.

The store keeps the budget as a token bucket with the same debt semantics as
`tremolo.middleware.token_bucket.TokenBucket`, updated by one atomic script per lease: a lease
takes its slice at once and answers how long to wait before spending it. Every transfer, on
every host, leases slices of the same size and has at most two of them reserved at a time, so
the store serves the transfers in the order they ask: a round robin over all of them, whatever
host they are on. A transfer that ends gives its unspent tokens back.

When the store cannot answer (`BandwidthStore.lease` returns ``None``), the budget fails:

- *closed* (the default): each worker keeps to the budget on its own, with a local bucket at
  the budget's rate, until the store answers again. Transfers never stall; the total is at
  most the budget times the number of workers meanwhile.
- *open* (``fail_open=True``): the budget is not applied until the store answers again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Optional, Protocol

from tremolo.middleware.token_bucket import TokenBucket, check_burst, check_rate

__all__ = ['BandwidthStore', 'LeaseAccount', 'StoreBudget', 'default_lease_size']

#: Tokens being given back: the event loop holds tasks weakly, so they are held here until done.
_giving_back: set[asyncio.Task[None]] = set()


class BandwidthStore(Protocol):
    """What a bandwidth budget asks of a store shared by several hosts.

    `tremolo.extensions.redis.Redis` implements it (``Redis.bandwidth_store()``); any object
    with these two coroutine methods can be given as ``store=`` too.
    """

    async def lease(self, budget: str, member: str, rate: float, burst: float,
                    size: int) -> Optional[tuple[float, float]]:
        """Take ``size`` tokens (give them back if negative) from the bucket ``member`` of
        ``budget``, made full with ``rate`` and ``burst`` when it does not exist, in one atomic
        step.

        The rate and burst set with `set_rate` for ``budget`` win over the arguments.

        Returns:
            ``(seconds to wait before spending them, the budget's rate)``, or ``None`` when the
            store cannot answer now (it is unreachable): the caller then applies its own
            policy, at once.
        """

    async def set_rate(self, budget: str, rate: float, burst: float) -> bool:
        """Set the rate and burst of every bucket of ``budget`` from now on, for every host.

        Returns:
            Whether the store took the change (``False``: it is unreachable).
        """


def default_lease_size(rate: float) -> int:
    """The slice leased at a time for a budget of ``rate`` bytes per second: a fiftieth of a
    second's worth, at least 16 KiB (one piece of a streamed body), at most 1 MiB.

    Every transfer under a budget leases slices of this size, so the store answers about 50
    leases per second per budget, whatever the number of transfers.
    """
    return int(min(max(rate / 50, 16384), 1 << 20))


class StoreBudget:
    """One direction of a limiter's budget, kept in a store.

    Args:
        store: Where the buckets are.
        name: The budget's name in the store (the limiter's name and the direction).
        rate: Bytes per second (a rate set at run time in the store wins).
        burst: Bytes the bucket holds at most.
        lease_size: Bytes leased at a time.
        fail_open: What the budget does while the store cannot answer (see the module).
    """

    __slots__ = ('store', 'name', 'rate', 'burst', 'lease_size', 'fail_open', 'fallback')

    def __init__(self, store: BandwidthStore, name: str, rate: float, burst: float,
                 lease_size: int, fail_open: bool) -> None:
        check_rate(rate, 'rate')
        check_burst(burst)
        self.store = store
        self.name = name
        self.rate = float(rate)
        self.burst = float(burst)
        self.lease_size = lease_size
        self.fail_open = fail_open
        #: The local buckets applied while the store cannot answer, by member.
        self.fallback: dict[str, TokenBucket] = {}

    async def lease(self, member: str, size: int, now: float) -> float:
        """Lease ``size`` tokens for ``member``; return the seconds to wait before spending
        them (from ``now``, the event loop's time)."""
        reply = await self.store.lease(self.name, member, self.rate, self.burst, size)
        if reply is None:
            return self._fallback(member, size, now)
        wait, rate = reply
        if rate != self.rate:  # changed at run time, maybe on another host
            self.rate = rate
        if self.fallback:
            self.fallback.clear()
        return wait

    def _fallback(self, member: str, size: int, now: float) -> float:
        if self.fail_open:
            return 0.0
        bucket = self.fallback.get(member)
        if bucket is None:
            if len(self.fallback) >= 4096:  # clients come and go during a long outage
                self.fallback.clear()
            bucket = self.fallback[member] = TokenBucket(self.rate, self.burst, now)
        elif bucket.rate != self.rate:
            bucket.set_rate(self.rate, now)
        return bucket.reserve(size, now)

    async def give_back(self, member: str, size: int) -> None:
        """Return unspent tokens to the store (nothing happens if it cannot answer)."""
        await self.store.lease(self.name, member, self.rate, self.burst, -size)

    def __repr__(self) -> str:
        return f'<StoreBudget {self.name} {self.rate:g} B/s lease={self.lease_size}>'


class LeaseAccount:
    """The tokens one transfer holds from a `StoreBudget`: the slices leased and not spent yet,
    each with the time from which it may be spent.

    `take` spends from them without waiting for the store when they cover a piece (and leases
    the next slice ahead when they run low); `take_later` waits for a lease first.
    """

    __slots__ = ('budget', 'member', 'loop', 'slices', 'credit', 'pending', 'finished')

    def __init__(self, budget: StoreBudget, member: str,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.budget = budget
        self.member = member
        self.loop = loop
        #: [bytes left, event loop time from which they may be spent], oldest first
        self.slices: deque[list[float]] = deque()
        self.credit = 0
        self.pending: Optional[asyncio.Task[None]] = None
        self.finished = False

    def take(self, size: int, now: float) -> Optional[float]:
        """Spend ``size`` tokens: the seconds to wait before sending, or ``None`` when the
        slices held do not cover them (then call `take_later`)."""
        if self.credit < size:
            return None
        self.credit -= size
        ready = 0.0
        slices = self.slices
        while size > 0:
            head = slices[0]
            if head[1] > ready:
                ready = head[1]
            if head[0] > size:
                head[0] -= size
                break
            size -= int(head[0])
            slices.popleft()
        if self.credit * 2 < self.budget.lease_size and self.pending is None:
            # Lease the next slice now: it is granted before this one is spent.
            self.pending = self.loop.create_task(self._lease(self.budget.lease_size))
        return ready - now if ready > now else 0.0

    async def take_later(self, size: int) -> float:
        """Wait until the slices held cover ``size`` tokens, then `take` them."""
        while self.credit < size:
            pending = self.pending
            if pending is None:
                want = max(self.budget.lease_size, size - self.credit)
                pending = self.pending = self.loop.create_task(self._lease(want))
            # Shielded: a transfer cancelled meanwhile leaves the lease to finish (its tokens
            # are given back).
            await asyncio.shield(pending)
        wait = self.take(size, self.loop.time())
        assert wait is not None
        return wait

    async def _lease(self, size: int) -> None:
        try:
            now = self.loop.time()
            wait = await self.budget.lease(self.member, size, now)
            self.slices.append([size, now + wait])
            self.credit += size
        finally:
            self.pending = None
        if self.finished:
            self.finish()

    def finish(self) -> None:
        """The transfer is over: give the unspent tokens back to the store."""
        self.finished = True
        credit, self.credit = self.credit, 0
        self.slices.clear()
        if credit > 0:
            task = self.loop.create_task(self.budget.give_back(self.member, credit))
            _giving_back.add(task)
            task.add_done_callback(_giving_back.discard)

    def __repr__(self) -> str:
        return f'<LeaseAccount {self.budget.name}:{self.member} credit={self.credit}>'
