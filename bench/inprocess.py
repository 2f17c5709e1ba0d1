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
import gc
import importlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / 'apps'))

from tremolo.testing import TestClient  # noqa: E402

#: The applications that can be measured: ``--app NAME`` (module ``apps/NAME_app.py``).
APPS = ('tremolo', 'asgi', 'starlette')

BODY = b'x' * (1024 * 1024)
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
    request = REQUESTS[name]
    async with TestClient(app, max_body_size=2 * len(BODY)) as client:
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
        for _ in range(count // 10):  # warm-up
            await exchange()
        best = float('inf')
        for _ in range(runs):
            gc.collect()
            start = time.process_time()
            for _ in range(count):
                await exchange()
            best = min(best, time.process_time() - start)
        await connection.close()
    return best / count * 1e6


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
