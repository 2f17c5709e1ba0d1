"""Options: server-wide when the server starts, per route as handler defaults or decorator
arguments, and per request through ``context.options``."""

from tremolo import Tremolo

app = Tremolo()


# --8<-- [start:route]
@app.post('/upload', max_body_size=100 * 1024 * 1024)  # 100 MiB here, whatever the server's
async def upload(request):
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return {'received': size}


@app.route('/export.csv')
async def export(content_type='text/csv; charset=utf-8', **server):  # a default is an option
    yield 'id,name\n'
    yield '1,Ada\n'
# --8<-- [end:route]


# --8<-- [start:context]
@app.on_request(prefix='/downloads')
async def bigger_pieces(context):
    context.options['buffer_size'] = 256 * 1024  # for this request only


@app.route('/downloads/{name}')
async def download(name, context):
    return {'name': name, 'buffer_size': context.options['buffer_size']}


@app.route('/effective')
async def effective(context):
    return dict(context.options)
# --8<-- [end:context]


if __name__ == '__main__':
    # --8<-- [start:run]
    app.run('127.0.0.1', 8000, worker_num=4, max_body_size=1024 * 1024, access_log=False)
    # --8<-- [end:run]
