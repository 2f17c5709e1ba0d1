"""A small application for the running tests (``python -m tremolo tests.apps.basic:app``).

Routes report what the tests need to see from outside the process: the worker's pid, the type
of its event loop, a slow answer for graceful shutdown, and memory kept on demand (worker
recycling). When ``TREMOLO_TEST_STOP_DIR`` is
set, each worker writes a file named after its pid there from its ``on_worker_stop`` hook.
"""

from __future__ import annotations

import asyncio
import os

from tremolo import Tremolo

app = Tremolo()


@app.route('/')
async def index(**server):
    return 'Hello from tests.apps.basic'


@app.route('/pid')
async def pid(**server):
    return str(os.getpid())


@app.route('/loop')
async def loop_type(loop, **server):
    return f'{type(loop).__module__}.{type(loop).__name__}'


@app.route('/slow')
async def slow(request, **server):
    """Answers after ``?seconds=`` (default 1): a request still in flight at shutdown."""
    seconds = float(request.query.get('seconds', '1'))
    await asyncio.sleep(seconds)
    return f'slow done after {seconds:g} s'


@app.route('/grow')
async def grow(request, globals, **server):
    """Keeps ``?mb=`` megabytes more in the worker's memory; answers its pid."""
    kept = getattr(globals, 'kept', [])
    kept.append(bytearray(int(request.query.get('mb', '1')) * 1024 * 1024))
    globals.kept = kept
    return str(os.getpid())


@app.on_worker_stop
async def write_stop_file(**server):
    where = os.environ.get('TREMOLO_TEST_STOP_DIR')
    if where:
        with open(os.path.join(where, f'stopped-{os.getpid()}'), 'w') as f:
            f.write('stopped')
