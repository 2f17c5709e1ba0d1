"""Idle keep-alive connections: open N, each answered once and then left idle, and read the
server worker's resident memory before and after."""

from __future__ import annotations

import asyncio
import random
import resource
import time
from typing import Any, Optional

from .procs import process_tree, rss_kib, socket_count, worker_pid

REQUEST = b'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
EXPECTED = b'Hello, World!'
CONCURRENT_OPENS = 256  # connections being opened at once (stays under every listen backlog)
IO_TIMEOUT = 30.0


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's open-file limit (inherited by the servers) towards ``wanted``;
    returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


async def _ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Send GET / and read the whole answer (Content-Length or chunked framing)."""
    writer.write(REQUEST)
    head = await reader.readuntil(b'\r\n\r\n')
    fields = {}
    for line in head.split(b'\r\n')[1:]:
        name, _, value = line.partition(b':')
        fields[name.strip().lower()] = value.strip().lower()
    if b'chunked' in fields.get(b'transfer-encoding', b''):
        body = await _read_chunked(reader)
    else:
        body = await reader.readexactly(int(fields.get(b'content-length', b'0')))
    return head.startswith(b'HTTP/1.1 200') and body == EXPECTED


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b'\r\n')).split(b';')[0], 16)
        if size == 0:
            while await reader.readuntil(b'\r\n') != b'\r\n':  # trailer fields
                pass
            return bytes(body)
        body += (await reader.readexactly(size + 2))[:-2]


async def _open(port: int, gate: asyncio.Semaphore) -> Optional[tuple[Any, Any]]:
    async with gate:
        try:
            reader, writer = await asyncio.open_connection('127.0.0.1', port)
            if await asyncio.wait_for(_ask(reader, writer), IO_TIMEOUT):
                return reader, writer
            writer.close()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                asyncio.TimeoutError, ValueError):
            pass
    return None


async def _still_served(pairs: list[tuple[Any, Any]], sample: int) -> int:
    async def one(pair: tuple[Any, Any]) -> bool:
        try:
            return await asyncio.wait_for(_ask(*pair), IO_TIMEOUT)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
            return False

    chosen = random.sample(pairs, min(sample, len(pairs)))
    return sum(await asyncio.gather(*(one(pair) for pair in chosen)))


async def _measure(server_pid: int, port: int, count: int, settle: float) -> dict[str, Any]:
    warm = await _open(port, asyncio.Semaphore(1))  # one answered request: the baseline
    if warm is None:
        raise RuntimeError('GET / failed before opening the idle connections')
    await asyncio.sleep(settle)
    # The worker is told apart once it holds the connections: keep every process's baseline.
    baselines = {pid: rss_kib(pid) for pid in process_tree(server_pid)}
    started = time.monotonic()
    gate = asyncio.Semaphore(CONCURRENT_OPENS)
    opened = await asyncio.gather(*(_open(port, gate) for _ in range(count)))
    pairs = [pair for pair in opened if pair is not None]
    open_seconds = time.monotonic() - started
    await asyncio.sleep(settle)
    pid = worker_pid(server_pid)
    base = baselines.get(pid) or 0
    loaded = rss_kib(pid) or 0
    sockets = socket_count(pid)
    alive = await _still_served(pairs, 50)
    for _, writer in [*pairs, warm]:
        writer.close()
    held = len(pairs)
    per_1000 = (loaded - base) / 1024 / held * 1000 if held else None
    return {
        'connections': count, 'held': held, 'worker_pid': pid, 'server_sockets': sockets,
        'sample_still_served': alive, 'sample_size': min(50, held),
        'rss_base_mib': base / 1024, 'rss_mib': loaded / 1024,
        'mib_per_1000': per_1000,
        'conns_per_mib': held / ((loaded - base) / 1024) if loaded > base else None,
        'open_seconds': open_seconds,
    }


def measure_idle(server_pid: int, port: int, count: int, settle: float = 1.0,
                 timeout: float = 300.0) -> dict[str, Any]:
    """Open ``count`` idle keep-alive connections to the server and measure its worker's RSS.

    Raises:
        RuntimeError: The server could not answer at all, or the whole took over ``timeout``.
    """
    try:
        return asyncio.run(asyncio.wait_for(_measure(server_pid, port, count, settle), timeout))
    except asyncio.TimeoutError as exc:
        raise RuntimeError(f'idle measurement took over {timeout:.0f} s') from exc
