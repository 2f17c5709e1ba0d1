"""The arithmetic of bandwidth limiting: a token bucket, as a pure function of bytes and time.

Nothing here reads a clock or sleeps: every method takes the current time, and answers how long
the caller must wait. That keeps the limiter exact and testable with a fake clock; the
middleware in `tremolo.middleware.bandwidth` supplies the event loop's time and does the waiting.

The bucket holds up to ``burst`` tokens (bytes) and refills at ``rate`` tokens per second.
Sending takes tokens *before* the bytes go out, and may take more than the bucket holds: the
balance then goes negative (a debt) and the sender waits until the refill has paid it back.
Because every sender reserves its bytes up front, senders that share one bucket are served in
the order they ask, each waiting behind the debt of those before it: with pieces of equal size
that is a round robin, and the bandwidth is shared fairly among the active transfers.
"""

from __future__ import annotations


class TokenBucket:
    """A token bucket of ``rate`` bytes per second holding at most ``burst`` bytes.

    Args:
        rate: Bytes per second, above zero.
        burst: The most bytes that may be sent at once after an idle period, at least one.
        now: The current time, in seconds (any monotonic clock).

    Raises:
        ValueError: A rate or burst that is not positive.
    """

    __slots__ = ('rate', 'burst', 'tokens', 'updated')

    def __init__(self, rate: float, burst: float, now: float) -> None:
        check_rate(rate, 'rate')
        check_burst(burst)
        self.rate = float(rate)
        self.burst = float(burst)
        self.tokens = float(burst)  # a fresh bucket is full
        self.updated = now

    def _refill(self, now: float) -> None:
        elapsed = now - self.updated
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.updated = now

    def reserve(self, size: int, now: float) -> float:
        """Take ``size`` tokens for bytes about to be sent; return the seconds to wait first.

        The tokens are taken at once, even when that leaves a debt: a caller that waits the
        returned delay and then sends has kept to the rate, and the next caller waits behind it.
        """
        self._refill(now)
        self.tokens -= size
        if self.tokens >= 0:
            return 0.0
        return -self.tokens / self.rate

    def delay(self, size: int, now: float) -> float:
        """The seconds before ``size`` bytes could be sent, without taking any tokens."""
        self._refill(now)
        missing = size - self.tokens
        return missing / self.rate if missing > 0 else 0.0

    def set_rate(self, rate: float, now: float, burst: float = 0.0) -> None:
        """Change the rate (and the burst, if given) from ``now`` on; the time before ``now``
        is accounted at the old rate."""
        check_rate(rate, 'rate')
        self._refill(now)
        self.rate = float(rate)
        if burst:
            check_burst(burst)
            self.burst = float(burst)
            self.tokens = min(self.tokens, self.burst)

    def __repr__(self) -> str:
        return f'<TokenBucket {self.rate:g} B/s burst={self.burst:g} tokens={self.tokens:g}>'


def default_burst(rate: float) -> int:
    """The burst used when none is given: a twentieth of a second's worth of bytes, at least
    16 KiB (one piece of a streamed body) and at most 1 MiB.

    A small burst keeps a limited transfer close to its rate from the first byte (a 10 MiB
    download at 1 MiB/s takes 9.95 s, not 9 s as with a burst of one second).
    """
    return int(min(max(rate / 20, 16384), 1 << 20))


def check_rate(rate: object, name: str) -> None:
    """Reject a rate that is not a positive number, naming it.

    Raises:
        ValueError: ``rate`` is not a number above zero.
    """
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise ValueError(f'{name} must be a number of bytes per second above zero, not {rate!r}')


def check_burst(burst: object) -> None:
    """Reject a burst that is not a positive number.

    Raises:
        ValueError: ``burst`` is not a number of bytes of at least one.
    """
    if isinstance(burst, bool) or not isinstance(burst, (int, float)) or not burst >= 1:
        raise ValueError(f'burst must be a number of bytes of at least 1, not {burst!r}')
