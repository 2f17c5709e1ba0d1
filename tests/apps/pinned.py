"""Clients pinned to the workers of a multi-worker server: aiohttp sessions of one connection
each, grouped by the process id of the worker that serves their connection (``GET /pid``)."""

from __future__ import annotations

import aiohttp


async def sessions_per_worker(url: str, per_worker: int, workers: int = 2,
                              attempts: int = 64) -> dict[str, list[aiohttp.ClientSession]]:
    """``per_worker`` sessions on each of ``workers`` workers, by worker pid. The kernel spreads
    connections over the workers' ``SO_REUSEPORT`` sockets by a hash: new connections are made
    until every worker has its share (the extra ones are closed)."""
    pinned: dict[str, list[aiohttp.ClientSession]] = {}
    spare: list[aiohttp.ClientSession] = []
    try:
        for _ in range(attempts):
            if len(pinned) == workers and all(len(s) >= per_worker for s in pinned.values()):
                break
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
            async with session.get(url + '/pid') as response:
                pid = await response.text()
            group = pinned.setdefault(pid, [])
            (group if len(group) < per_worker else spare).append(session)
    finally:
        for session in spare:
            await session.close()
    if len(pinned) != workers or not all(len(s) == per_worker for s in pinned.values()):
        for group in pinned.values():
            for session in group:
                await session.close()
        raise AssertionError(f'could not reach {per_worker} connections on each of {workers} '
                             f'workers: {({pid: len(s) for pid, s in pinned.items()})}')
    return pinned
