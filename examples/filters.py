"""Stream filters: gzip responses for clients that accept it, and gunzip request bodies."""

import zlib

from tremolo import BadRequest, Tremolo

app = Tremolo()


# --8<-- [start:response]
def gzip_filter():
    compressor = zlib.compressobj(wbits=31)  # 31: the gzip format

    def compress(data, final):
        # Flush each piece so that a streamed response still streams; `final` is True on
        # the last call, which ends the gzip stream.
        return compressor.compress(data) + compressor.flush(
            zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH
        )

    return compress


@app.on_response
async def gzip_response(request, response):
    if 'gzip' in request.headers.get('accept-encoding', ''):
        response.set_header('Content-Encoding', 'gzip')
        response.append_header('Vary', 'Accept-Encoding')
        response.add_filter(gzip_filter())
# --8<-- [end:response]


# --8<-- [start:request]
def gunzip_filter():
    decompressor = zlib.decompressobj(wbits=31)

    def decompress(data, final):
        try:
            return decompressor.decompress(data) + (decompressor.flush() if final else b'')
        except zlib.error as exc:
            raise BadRequest('the body is not valid gzip') from exc

    return decompress


@app.on_request
async def gunzip_request(request):
    if request.headers.get('content-encoding') == 'gzip':
        request.add_filter(gunzip_filter())  # the handler reads the decompressed body
# --8<-- [end:request]


@app.route('/article')
async def article(**server):
    return 'Tremolo streams. ' * 100


@app.route('/feed')
async def feed(**server):
    for number in range(100):
        yield f'entry {number}\n'


@app.post('/notes')
async def notes(request):
    return {'note': await request.text()}
