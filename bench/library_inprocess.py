#!/usr/bin/env python3
"""The middleware library's cost in process: CPU time per ``GET /``, bare, with each piece
of the stack alone, and with the whole stack (``apps/library_app.py``).

The same measurement as ``inprocess.py`` (the real parser, protocol, middleware and handler
over the test client's in-memory transport, no sockets; the best of several runs), for the
applications of ``library.py``'s ``stack`` comparison. It shows where the stack's cost comes
from, piece by piece, where loopback throughput only tells the sum:

    python3 library_inprocess.py                   # with whichever tremolo is importable
    python3 library_inprocess.py --variants bare,stacked --runs 3
    make -C bench compare-library-inprocess BASE=main   # this tree against the commit BASE

Prints one JSON object: microseconds of CPU per request by variant, and each variant's cost
over ``bare`` as a share of it (``stacked`` is what the 15% target is about).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / 'apps'))

from inprocess import exchanges  # noqa: E402
from library_app import PIECES, hello_app  # noqa: E402

#: What the client sends: wrk's request in library.py (no Origin), and a cross-origin one.
REQUESTS = {
    'plain': b'GET / HTTP/1.1\r\nHost: bench\r\n\r\n',
    'origin': b'GET / HTTP/1.1\r\nHost: bench\r\nOrigin: https://app.example.com\r\n\r\n',
}
VARIANTS = ('bare', *PIECES, 'stacked')


def chosen_variants(text: str) -> list[str]:
    """The variants of a comma-separated list, ``bare`` first (what the others compare to)."""
    variants = [name.strip() for name in text.split(',') if name.strip()]
    unknown = [name for name in variants if name not in VARIANTS]
    if unknown:
        raise SystemExit(f'unknown variant(s): {", ".join(unknown)}; known: '
                         f'{", ".join(VARIANTS)}')
    if 'bare' not in variants:
        variants.insert(0, 'bare')
    return variants


def application(variant: str):
    if variant == 'bare':
        return hello_app()
    if variant == 'stacked':
        return hello_app(PIECES)
    return hello_app((variant,))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=20,
                        help='runs per variant, alternating (the best wins)')
    parser.add_argument('--count', type=int, default=1000, help='requests per run')
    parser.add_argument('--variants', default=','.join(VARIANTS),
                        help='comma-separated: ' + ', '.join(VARIANTS))
    parser.add_argument('--request', default='plain', choices=sorted(REQUESTS),
                        help='plain (no Origin, as wrk sends it) or origin (cross-origin)')
    parser.add_argument('--smoke', action='store_true', help='a short run: checks that it runs')
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.count = 2, 100
    variants = chosen_variants(args.variants)
    request = REQUESTS[args.request]
    # Every variant has its connection open; the runs alternate between them, so that a busy
    # moment of the machine spreads over all of them rather than spoiling one.
    async with contextlib.AsyncExitStack() as stack:
        runs = {variant: await stack.enter_async_context(
            exchanges(application(variant), request)) for variant in variants}
        for run in runs.values():
            await run(args.count // 10)  # warm-up
        best = dict.fromkeys(variants, float('inf'))
        for _ in range(args.runs):
            for variant, run in runs.items():
                best[variant] = min(best[variant], await run(args.count))
    micros = {variant: round(seconds / args.count * 1e6, 2) for variant, seconds in best.items()}
    bare = micros['bare']
    costs = {variant: f'{(value - bare) / bare:+.1%}' for variant, value in micros.items()
             if variant != 'bare'}
    print(json.dumps({'us_per_request': micros, 'cost_over_bare': costs}))


if __name__ == '__main__':
    asyncio.run(main())
