"""``python tests/apps/run_basic.py '{"port": 0, "worker_num": 2}'``: run tests.apps.basic.

The JSON object holds the keyword arguments of ``app.run`` (``host`` defaults to 127.0.0.1 and
``port`` to 0), plus keys of its own: ``listen``, a list of addresses passed one by one to
``app.listen``, ``uvloop_policy``, which installs uvloop's event loop policy first (the way
the seed README shows), and ``metrics``, which installs the Metrics extension.
"""

import json
import sys

from tests.apps.basic import app

if __name__ == '__main__':
    options = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    for address in options.pop('listen', []):
        app.listen(address)
    if options.pop('metrics', False):
        from tremolo.extensions.metrics import Metrics

        app.install(Metrics())
    if options.pop('uvloop_policy', False):
        import asyncio

        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    host = options.pop('host', '127.0.0.1')
    port = options.pop('port', 0)
    app.run(host, port, **options)
