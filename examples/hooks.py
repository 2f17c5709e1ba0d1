"""Worker hooks prepare what every request of a worker shares; connection hooks follow each
client connection."""

from tremolo import Tremolo

app = Tremolo()


# --8<-- [start:worker]
class Pool:
    """Stands for a connection pool to a database or a cache."""

    def __init__(self, size):
        self.size = size
        self.closed = False

    async def close(self):
        self.closed = True


@app.on_worker_start
async def open_pool(globals, logger):
    globals.pool = Pool(size=10)  # one per worker process, shared by its requests
    logger.info('pool of %d opened', globals.pool.size)


@app.on_worker_stop
async def close_pool(globals, logger):
    await globals.pool.close()
    logger.info('pool closed')
# --8<-- [end:worker]


# --8<-- [start:connection]
@app.on_connect
async def greet(connection, logger):
    connection.state.served = 0  # per-connection data lives in connection.state
    logger.info('%s connected', connection.client_host)


@app.on_close
async def farewell(connection, logger):
    logger.info('%s leaves after %d requests', connection.client_host, connection.requests)
# --8<-- [end:connection]


# --8<-- [start:handler]
@app.route('/visit')
async def visit(request, globals):
    state = request.connection.state
    state.served += 1
    return {'pool_size': globals.pool.size, 'served_on_this_connection': state.served}
# --8<-- [end:handler]
