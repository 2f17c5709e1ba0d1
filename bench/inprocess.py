#!/usr/bin/env python3
"""CPU time per request, in process: a benchmark app (apps/tremolo_app.py by default; the raw
ASGI app or the Starlette app with ``--app``) driven through the real parser, protocol,
middleware and handlers over the test client's in-memory transport.

No socket, no kernel, no load generator: what is left is the server's own work, measured as
the CPU time of this process (the best of several runs), which makes small differences
between two versions visible where loopback throughput is too noisy to tell. Use it for
changes to the hot path, next to the side-by-side run (`make -C bench compare`):

    python3 inprocess.py                       # with whichever tremolo is importable
    python3 inprocess.py --app asgi            # the raw ASGI app through the ASGI mode
    make -C bench compare-inprocess BASE=REV   # this tree against the commit REV

Prints one JSON object: microseconds of CPU per request, by scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent / 'apps'))

from tremolo.testing import TestClient  # noqa: E402

BODY = b'x' * (1024 * 1024)
#: The applications that can be measured: ``--app NAME`` (module ``apps/NAME_app.py``).
APPS = ('tremolo', 'asgi', 'starlette')

REQUESTS = {
    'hello': b'GET / HTTP/1.1\r\nHost: bench\r\n\r\n',
    'json': b'GET /json HTTP/1.1\r\nHost: bench\r\n\r\n',
    'user': b'GET /user/42 HTTP/1.1\r\nHost: bench\r\n\r\n',
    'stream': b'GET /stream HTTP/1.1\r\nHost: bench\r\n\r\n',
    'upload': b'POST /upload HTTP/1.1\r\nHost: bench\r\nContent-Length: %d\r\n\r\n%s'
              % (len(BODY), BODY),
}
COUNTS = {'hello': 4000, 'json': 4000, 'user': 4000, 'stream': 200, 'upload': 200}


async def measure(app: object, name: str, count: int, runs: int) -> float:
    return await measure_app(app, REQUESTS[name], count, runs, max_body_size=2 * len(BODY))


async def measure_app(application: Any, request: bytes, count: int, runs: int,
                      **options: Any) -> float:
    """Microseconds of CPU per exchange of ``request`` with ``application`` (the best of
    ``runs`` runs of ``count`` exchanges, after a warm-up), over one connection of the test
    client; ``options`` are the server's."""
    async with exchanges(application, request, **options) as run:
        await run(count // 10)  # warm-up
        best = min([await run(count) for _ in range(runs)])
    return best / count * 1e6


@contextlib.asynccontextmanager
async def exchanges(application: Any, request: bytes, **options: Any
                    ) -> AsyncIterator[Callable[[int], Awaitable[float]]]:
    """A connection to ``application`` through the test client, as ``run(count)``: the CPU
    seconds that ``count`` exchanges of ``request`` take (after a garbage collection)."""
    async with TestClient(application, **options) as client:
        connection = client.connect()
        transport = connection.transport

        async def exchange() -> int:
            connection.send(request)
            size = 0
            output = transport.output
            while True:
                await transport.wait(10.0)
                size += len(output)
                del output[:]  # read, without copying it out
                if size >= expected:
                    return size

        async def run(count: int) -> float:
            gc.collect()
            start = time.process_time()
            for _ in range(count):
                await exchange()
            return time.process_time() - start

        # The size of one answer: what comes until the connection is quiet.
        connection.send(request)
        expected = 0
        try:
            while True:
                await transport.wait(0.2)
                expected += len(transport.output)
                del transport.output[:]
        except TimeoutError:
            pass
        yield run
        await connection.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=7, help='runs per scenario (the best wins)')
    parser.add_argument('--scenarios', default=','.join(REQUESTS),
                        help='comma-separated: ' + ', '.join(REQUESTS))
    parser.add_argument('--scale', type=float, default=1.0, help='multiply the request counts')
    parser.add_argument('--app', choices=APPS, default='tremolo',
                        help='the application: tremolo (native), asgi (raw ASGI) or starlette')
    args = parser.parse_args()
    app = importlib.import_module(f'{args.app}_app').app
    results = {}
    for name in args.scenarios.split(','):
        count = max(1, int(COUNTS[name] * args.scale))
        results[name] = round(await measure(app, name, count, args.runs), 2)
    print(json.dumps(results))


if __name__ == '__main__':
    asyncio.run(main())
