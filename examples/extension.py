"""A complete extension: it adds a worker hook, a middleware hook, a provider and a route."""

from collections import Counter

from tremolo import Extension, Tremolo


# --8<-- [start:extension]
class RequestStats(Extension):
    """Counts the responses of each worker by status, and serves the counts at ``path``."""

    name = 'request-stats'

    def __init__(self, path='/stats'):
        self.path = path

    def setup(self, app):
        app.on_worker_start(self.start)
        app.on_response(priority=0)(self.count)  # the lowest priority runs last on the way out
        app.provide('stats')(self.stats)  # providers before the routes that use them
        app.route(self.path)(self.show)

    async def start(self, globals):
        globals.request_stats = Counter()

    async def count(self, response, globals):
        globals.request_stats[response.status] += 1

    def stats(self, globals):
        return globals.request_stats

    async def show(self, stats):
        return {str(status): count for status, count in sorted(stats.items())}

    async def close(self, globals, logger):
        logger.info('%s: %d responses', self.name, sum(globals.request_stats.values()))
# --8<-- [end:extension]


# --8<-- [start:install]
app = Tremolo()
stats = app.install(RequestStats(path='/_stats'))


@app.route('/')
async def index(**server):
    return 'Hello\n'
# --8<-- [end:install]
