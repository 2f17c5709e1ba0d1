"""Injection: a handler's parameters are filled by name (or by type) when it is called."""

from tremolo import Tremolo, Unauthorized

app = Tremolo()


# --8<-- [start:server-names]
@app.route('/whoami/{username}')
async def whoami(username, request, response, context, app, globals, loop, logger):
    logger.info('%s asked who they are', username)  # the 'tremolo' logger
    response.set_header('X-Loop', type(loop).__name__)
    return {
        'username': username,  # a path parameter
        'path': request.path,
        'app': app.name,
        'worker_globals': sorted(vars(globals)),  # what on_worker_start hooks stored
        'max_body_size': context.options['max_body_size'],
    }


@app.route('/everything/{username}')
async def everything(**server):
    return sorted(server)  # every server name and path parameter
# --8<-- [end:server-names]


# --8<-- [start:providers]
class Session:
    """Stands for a database session: opened per request, closed after the response."""

    def __init__(self, globals):
        self.globals = globals
        self.closed = False

    def query(self, sql):
        return [{'sql': sql}]

    def close(self):
        self.closed = True
        self.globals.sessions_closed += 1


@app.on_worker_start
async def count_sessions(globals):
    globals.sessions_closed = 0


@app.provide('user')
def current_user(request):
    token = request.headers.get('authorization')
    if token is None:
        raise Unauthorized('log in first', headers={'WWW-Authenticate': 'Bearer'})
    return token.removeprefix('Bearer ')


@app.provide(Session)
async def open_session(globals):
    session = Session(globals)
    yield session  # the value injected
    session.close()  # runs once the response has been sent


@app.route('/orders')
async def orders(user, db: Session):  # `user` by name, `db` by its type
    return {'user': user, 'orders': db.query(f'orders of {user}')}


@app.route('/sessions-closed')
async def sessions_closed(globals):
    return {'closed': globals.sessions_closed}
# --8<-- [end:providers]


# --8<-- [start:route-options]
@app.route('/report.csv')
async def report(content_type='text/csv; charset=utf-8', **server):
    yield 'month,sales\n'
    yield '2024-01,42\n'


@app.route('/items', methods=['POST'], status=201)
async def create_item(request):
    return {'created': await request.json()}
# --8<-- [end:route-options]
