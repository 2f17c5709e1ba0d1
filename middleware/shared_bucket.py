"""Token buckets and rates in memory shared by the worker processes of one server.

A server with ``worker_num`` above 1 forks its workers from one parent process, after the
application was compiled (`tremolo.Tremolo.run` compiles it, and builds its middleware, before
the first fork). Memory mapped ``MAP_SHARED`` before the fork stays shared after it: every
worker reads and writes the same bytes. That is how one bandwidth budget spans every worker of
a server without any store, and how a rate changed in one worker reaches the others.

Each region is an anonymous file (``memfd_create`` on Linux, an unlinked temporary file
elsewhere) mapped into memory, and guarded by a POSIX record lock (``lockf``) on that file.
A record lock is released by the kernel when its holder dies, so a worker killed while it
holds the lock cannot leave the others waiting forever; it is held for the few instructions
of one update, never across an ``await``.

Time is ``time.monotonic()``: ``CLOCK_MONOTONIC`` is one clock for every process of the
machine, so the buckets of all workers refill on the same time line.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import tempfile
import time

from tremolo.middleware.token_bucket import check_burst, check_rate

__all__ = ['SharedMemory', 'SharedTokenBucket', 'SharedRates']


class SharedMemory:
    """A small region of memory shared with the processes forked after it was made, and its
    lock.

    Args:
        size: Bytes of the region (zeroed).
    """

    __slots__ = ('fd', 'memory', 'size')

    def __init__(self, size: int) -> None:
        memfd_create = getattr(os, 'memfd_create', None)
        if memfd_create is not None:
            fd = memfd_create('tremolo-shared', getattr(os, 'MFD_CLOEXEC', 0))
        else:  # pragma: no cover - not Linux
            with tempfile.TemporaryFile() as file:
                fd = os.dup(file.fileno())
        os.ftruncate(fd, size)
        self.fd = fd
        self.size = size
        self.memory = mmap.mmap(fd, size)

    def lock(self) -> None:
        """Take the lock (blocking: every holder keeps it for a few microseconds)."""
        fcntl.lockf(self.fd, fcntl.LOCK_EX)

    def unlock(self) -> None:
        fcntl.lockf(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Unmap the region in this process (the others keep theirs)."""
        self.memory.close()
        os.close(self.fd)


#: rate, burst, tokens, updated (seconds of time.monotonic())
_BUCKET = struct.Struct('=dddd')


class SharedTokenBucket:
    """A `tremolo.middleware.token_bucket.TokenBucket` whose state every worker process
    shares: the same debt semantics, so the transfers of all workers that reserve from it are
    served in the order they ask, a round robin over the whole server.

    Make it before the workers are forked (a middleware is made when the application is
    built, which is before). ``now`` arguments are accepted for the interface of a
    `TokenBucket` and ignored: the shared clock is ``time.monotonic()``.

    Args:
        rate: Bytes per second, above zero.
        burst: The most bytes that may be sent at once after an idle period, at least one.
    """

    __slots__ = ('shared',)

    def __init__(self, rate: float, burst: float) -> None:
        check_rate(rate, 'rate')
        check_burst(burst)
        self.shared = SharedMemory(_BUCKET.size)
        _BUCKET.pack_into(self.shared.memory, 0, float(rate), float(burst), float(burst),
                          time.monotonic())

    @property
    def rate(self) -> float:
        value: float = _BUCKET.unpack_from(self.shared.memory, 0)[0]
        return value

    @property
    def burst(self) -> float:
        value: float = _BUCKET.unpack_from(self.shared.memory, 0)[1]
        return value

    @property
    def tokens(self) -> float:
        value: float = _BUCKET.unpack_from(self.shared.memory, 0)[2]
        return value

    @property
    def updated(self) -> float:
        value: float = _BUCKET.unpack_from(self.shared.memory, 0)[3]
        return value

    def reserve(self, size: int, now: float = 0.0) -> float:
        """Take ``size`` tokens; return the seconds to wait before sending (see
        `TokenBucket.reserve`)."""
        shared = self.shared
        memory = shared.memory
        shared.lock()
        try:
            rate, burst, tokens, updated = _BUCKET.unpack_from(memory, 0)
            clock = time.monotonic()
            if clock > updated:
                tokens = min(burst, tokens + (clock - updated) * rate)
                updated = clock
            tokens -= size
            _BUCKET.pack_into(memory, 0, rate, burst, tokens, updated)
        finally:
            shared.unlock()
        return 0.0 if tokens >= 0 else -tokens / rate

    def refund(self, size: int) -> None:
        """Give back ``size`` tokens reserved and never used (up to the burst)."""
        shared = self.shared
        shared.lock()
        try:
            rate, burst, tokens, updated = _BUCKET.unpack_from(shared.memory, 0)
            _BUCKET.pack_into(shared.memory, 0, rate, burst, min(burst, tokens + size),
                              updated)
        finally:
            shared.unlock()

    def set_rate(self, rate: float, now: float = 0.0, burst: float = 0.0) -> None:
        """Change the rate (and the burst, if given) for every worker, from now on."""
        check_rate(rate, 'rate')
        if burst:
            check_burst(burst)
        shared = self.shared
        shared.lock()
        try:
            old_rate, old_burst, tokens, updated = _BUCKET.unpack_from(shared.memory, 0)
            clock = time.monotonic()
            if clock > updated:
                tokens = min(old_burst, tokens + (clock - updated) * old_rate)
                updated = clock
            new_burst = float(burst) if burst else old_burst
            _BUCKET.pack_into(shared.memory, 0, float(rate), new_burst,
                              min(tokens, new_burst), updated)
        finally:
            shared.unlock()

    def __repr__(self) -> str:
        rate, burst, tokens, _ = _BUCKET.unpack_from(self.shared.memory, 0)
        return f'<SharedTokenBucket {rate:g} B/s burst={burst:g} tokens={tokens:g}>'


#: version, download rate, upload rate
_RATES = struct.Struct('=Qdd')


class SharedRates:
    """The rates of a limiter as every worker sees them: a change made in one worker is read
    by the others at their next request (``version`` tells them that something changed).

    Args:
        download_rate: Bytes per second, 0 for none.
        upload_rate: Bytes per second, 0 for none.
    """

    __slots__ = ('shared',)

    def __init__(self, download_rate: float, upload_rate: float) -> None:
        self.shared = SharedMemory(_RATES.size)
        _RATES.pack_into(self.shared.memory, 0, 0, float(download_rate), float(upload_rate))

    @property
    def version(self) -> int:
        """A number that grows with every change (read without the lock: one aligned word)."""
        version: int = _RATES.unpack_from(self.shared.memory, 0)[0]
        return version

    def read(self) -> tuple[int, float, float]:
        """``(version, download_rate, upload_rate)``, consistent."""
        shared = self.shared
        shared.lock()
        try:
            return _RATES.unpack_from(shared.memory, 0)
        finally:
            shared.unlock()

    def write(self, download_rate: float, upload_rate: float) -> int:
        """Set both rates; return the new version."""
        shared = self.shared
        shared.lock()
        try:
            version: int = _RATES.unpack_from(shared.memory, 0)[0] + 1
            _RATES.pack_into(shared.memory, 0, version, float(download_rate),
                             float(upload_rate))
        finally:
            shared.unlock()
        return version
