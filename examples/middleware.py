"""Three middlewares at three priorities, a short-circuit, a prefix and an object.

Every hook logs its name, so that the order in which they run can be seen (and tested).
"""

from tremolo import Tremolo

app = Tremolo()


# --8<-- [start:functions]
@app.on_request(priority=10)
async def authenticate(request, response, context, logger):
    logger.info('authenticate')
    context.user = request.headers.get('x-user', 'anonymous')
    if context.user == 'mallory':
        response.set_status(403)
        return 'Go away\n'  # short-circuit: the handler is skipped


@app.on_response(priority=10)
async def add_user_header(response, context, logger):
    logger.info('add_user_header')
    response.set_header('X-User', context.user)


@app.on_request(priority=50)
async def start_timer(context, loop, logger):
    logger.info('start_timer')
    context.started = loop.time()


@app.on_response(priority=50)
async def add_server_timing(response, context, loop, logger):
    logger.info('add_server_timing')
    started = getattr(context, 'started', None)  # None if an earlier hook short-circuited
    if started is not None:  # the time until the head is sent (not to the end of a stream)
        response.set_header('Server-Timing', f'app;dur={(loop.time() - started) * 1000:.3f}')
# --8<-- [end:functions]


# --8<-- [start:object]
class Cors:
    """Allows cross-origin calls to the API and answers CORS preflight requests."""

    def __init__(self, origin):
        self.origin = origin

    async def on_request(self, request, response, logger):
        logger.info('Cors.on_request')
        if request.method == 'OPTIONS':  # a preflight request: answer it here
            response.set_status(204)
            response.set_header('Access-Control-Allow-Methods', 'GET, POST')
            return b''

    async def on_response(self, response, logger):
        logger.info('Cors.on_response')
        response.set_header('Access-Control-Allow-Origin', self.origin)


app.add_middleware(Cors('https://example.com'), prefix='/api')  # default priority: 100
# --8<-- [end:object]


# --8<-- [start:handlers]
@app.route('/api/items')
async def items(logger):
    logger.info('items')
    return {'items': ['a', 'b']}


@app.route('/about')
async def about(logger):
    logger.info('about')
    return 'About\n'
# --8<-- [end:handlers]
