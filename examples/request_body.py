"""Reading the request body: whole, streamed, as JSON, as text or as a form."""

from tremolo import Tremolo

app = Tremolo()


# --8<-- [start:body]
@app.post('/echo')
async def echo(request, content_type='application/octet-stream'):
    return await request.body()  # the whole body, as bytes
# --8<-- [end:body]


# --8<-- [start:stream]
@app.post('/upload', max_body_size=1024 * 1024 * 1024)  # up to 1 GiB on this route
async def upload(request):
    size = 0
    async for chunk in request.stream():  # piece by piece, in constant memory
        size += len(chunk)
    return {'received': size}
# --8<-- [end:stream]


# --8<-- [start:parsed]
@app.post('/json')
async def read_json(request):
    data = await request.json()  # 400 Bad Request if it is not JSON
    return {'you sent': data}


@app.post('/text')
async def read_text(request):
    text = await request.text()  # decoded with the charset of the Content-Type, else UTF-8
    return f'{len(text)} characters'


@app.post('/form')
async def read_form(request):
    form = await request.form()  # urlencoded or multipart, held in memory
    files = {name: [(f.filename, f.size) for f in parts] for name, parts in form.files.items()}
    return {'fields': dict(form), 'tags': form.getlist('tag'), 'files': files}
# --8<-- [end:parsed]


# --8<-- [start:limit]
@app.post('/comment', max_body_size=1024)
async def comment(request):
    return f'Thanks for {len(await request.body())} bytes of comment'
# --8<-- [end:limit]
