#!/usr/bin/env python3
"""Instructions per request, counted by valgrind: a measure that does not drift.

CPU time and throughput move by tens of percent with the machine's load; the number of
instructions the processor executes for one request does not (within 0.1% from run to run,
with a fixed hash seed). This counts them for the applications of ``library_inprocess.py``
(bare, each piece of the middleware stack, the whole stack), through the same in-process
exchanges (the real parser, protocol, middleware and handler; the test client's side is
counted too, and is the same for every variant):

    python3 instructions.py                        # every variant (about 15 s each)
    python3 instructions.py --variants bare,stacked

Each variant runs twice under ``valgrind --tool=cachegrind --cache-sim=no``, for a small and
a larger number of requests; the difference divided by the difference of the counts is what
one request costs, start-up and warm-up cancelled out. Needs ``valgrind`` (``apt-get install
valgrind``). Prints one JSON object: instructions per request by variant, and each variant's
cost over ``bare``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH / 'apps'))
sys.path.insert(0, str(BENCH))


def exchange(variant: str, count: int) -> None:
    """Run ``count`` exchanges with the variant's application (what valgrind watches)."""
    from inprocess import exchanges
    from library_inprocess import REQUESTS, application

    async def main() -> None:
        async with exchanges(application(variant), REQUESTS['plain']) as run:
            await run(200)  # warm-up
            await run(count)

    asyncio.run(main())


def instructions(variant: str, count: int) -> int:
    """Instructions of a whole run of ``count`` exchanges."""
    done = subprocess.run(
        ['valgrind', '--tool=cachegrind', '--cache-sim=no', '--cachegrind-out-file=/dev/null',
         sys.executable, __file__, '--child', variant, str(count)],
        capture_output=True, text=True, env={**os.environ, 'PYTHONHASHSEED': '0'}, check=True)
    found = re.search(r'I\s+refs:\s+([\d,]+)', done.stderr)
    if found is None:
        raise SystemExit(f'no count from valgrind for {variant}: {done.stderr[-500:]}')
    return int(found.group(1).replace(',', ''))


def per_request(variant: str, small: int, large: int) -> int:
    return round((instructions(variant, large) - instructions(variant, small)) / (large - small))


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == '--child':
        exchange(sys.argv[2], int(sys.argv[3]))
        return
    from library_inprocess import VARIANTS, chosen_variants

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--variants', default=','.join(VARIANTS),
                        help='comma-separated: ' + ', '.join(VARIANTS))
    parser.add_argument('--requests', type=int, default=2000,
                        help='the difference between the two runs of each variant')
    args = parser.parse_args()
    if shutil.which('valgrind') is None:
        raise SystemExit('valgrind is missing: apt-get install valgrind')
    variants = chosen_variants(args.variants)
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        counts = dict(zip(variants, pool.map(
            lambda variant: per_request(variant, 500, 500 + args.requests), variants)))
    print(json.dumps({
        'instructions_per_request': counts,
        'cost_over_bare': {variant: f'{count / counts["bare"] - 1:+.1%}'
                           for variant, count in counts.items() if variant != 'bare'},
    }))


if __name__ == '__main__':
    main()
