"""Compression: negotiation, what is left alone, streaming flushes, request-body decoding and
its limit, over the in-process client and real sockets."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import aiohttp
import pytest
from tremolo.middleware.compression import (
    Compression,
    available_encodings,
    negotiate,
    parse_accept_encoding,
)

from tremolo import Tremolo
from tremolo.testing import TestClient, serve

try:
    import brotli  # type: ignore[no-redef]
except ImportError:  # brotlicffi on PyPy
    try:
        import brotlicffi as brotli  # type: ignore[no-redef]
    except ImportError:
        brotli = None
try:
    from compression import zstd  # type: ignore[import-not-found]
except ImportError:
    try:
        from backports import zstd  # type: ignore[no-redef]
    except ImportError:
        zstd = None

needs_brotli = pytest.mark.skipif(brotli is None, reason='brotli is not installed')
needs_zstd = pytest.mark.skipif(zstd is None, reason='zstd is not available')

TEXT = 'Tremolo streams. ' * 200  # 3400 bytes, very compressible


def decode(coding: str, data: bytes) -> bytes:
    if coding == 'gzip':
        return gzip.decompress(data)
    if coding == 'br':
        return brotli.decompress(data)
    if coding == 'zstd':
        return zstd.decompress(data)
    raise AssertionError(coding)


@pytest.fixture
def app():
    app = Tremolo()
    app.install(Compression(minimum_size=500))

    @app.route('/text')
    async def text(**server):
        return TEXT

    @app.route('/small')
    async def small(**server):
        return 'tiny'

    @app.route('/json')
    async def json_route(**server):
        return {'items': list(range(500))}

    @app.route('/image')
    async def image(content_type='image/png', **server):
        return b'\x89PNG' + b'\x00' * 2000

    @app.route('/encoded')
    async def encoded(response, **server):
        response.headers['Content-Encoding'] = 'gzip'
        return gzip.compress(TEXT.encode())

    @app.route('/no-transform')
    async def no_transform(response, **server):
        response.headers['Cache-Control'] = 'no-transform'
        return TEXT

    @app.route('/etag')
    async def etag(response, **server):
        response.headers['ETag'] = '"v1"'
        response.headers['Accept-Ranges'] = 'bytes'
        return TEXT

    @app.route('/stream')
    async def stream(**server):
        for number in range(5):
            yield f'piece {number}: ' + 'x' * 100 + '\n'

    @app.route('/vary')
    async def vary(response, **server):
        response.headers['Vary'] = 'Cookie'
        return TEXT

    @app.route('/upload', methods=['POST'])
    async def upload(request):
        body = await request.body()
        return {'size': len(body), 'start': body[:10].decode()}

    @app.route('/stream-upload', methods=['POST'], max_body_size=100_000)
    async def stream_upload(request):
        size = 0
        async for piece in request.stream():
            size += len(piece)
        return {'size': size}

    return app


# -- negotiation -----------------------------------------------------------------------------

def test_parse_accept_encoding_reads_q_values():
    assert parse_accept_encoding('gzip, br;q=0.8, zstd;q=0, *;q=0.1, x-gzip;q=0.5') == {
        'gzip': 1.0, 'br': 0.8, 'zstd': 0.0, '*': 0.1}
    # Invalid q-values drop the item, not the header.
    assert parse_accept_encoding('gzip;q=2, br;q=abc, zstd;q=0.5') == {'zstd': 0.5}
    assert parse_accept_encoding('GZIP;Q=0.5') == {'gzip': 0.5}


@pytest.mark.parametrize('header, expected', [
    ('gzip', ('gzip', True)),
    ('gzip, br, zstd', ('zstd', True)),                      # ties: the server's order
    ('gzip;q=1, br;q=0.9, zstd;q=0.8', ('gzip', True)),      # q-values first
    ('br;q=0, gzip;q=0.1', ('gzip', True)),
    ('identity', (None, True)),
    ('', (None, True)),                                       # an empty value: identity only
    ('*', ('zstd', True)),
    ('*;q=0.5, zstd;q=0', ('br', True)),
    ('gzip, identity;q=0', ('gzip', False)),
    ('gzip;q=0, *;q=0', (None, False)),
    ('deflate', (None, True)),                               # nothing we offer
])
def test_negotiate(header, expected):
    assert negotiate(header, ('zstd', 'br', 'gzip')) == expected


def test_no_accept_encoding_means_no_compression():
    assert negotiate(None, ('gzip',)) == (None, True)


def test_bad_configuration_is_refused_naming_the_option():
    with pytest.raises(ValueError, match='gzip_level'):
        Compression(gzip_level=10)
    with pytest.raises(ValueError, match='minimum_size'):
        Compression(minimum_size=-1)
    with pytest.raises(ValueError, match="encodings: unknown coding 'lzma'"):
        Compression(encodings=['lzma'])
    with pytest.raises(ValueError, match='content_types'):
        Compression(content_types=['text'])
    assert Compression().encodings == available_encodings()
    assert available_encodings()[-1] == 'gzip'


# -- responses -------------------------------------------------------------------------------

@pytest.mark.parametrize('coding', [
    'gzip', pytest.param('br', marks=needs_brotli), pytest.param('zstd', marks=needs_zstd)])
async def test_a_whole_body_is_compressed_with_the_negotiated_coding(app, coding):
    async with TestClient(app) as client:
        response = await client.get('/text', headers={'Accept-Encoding': coding})
    assert response.status == 200
    assert response.header('content-encoding') == coding
    assert response.header('vary') == 'Accept-Encoding'
    assert int(response.header('content-length')) == len(response.body) < len(TEXT) // 10
    assert decode(coding, response.body) == TEXT.encode()


async def test_json_is_compressed_and_small_bodies_are_not(app):
    async with TestClient(app) as client:
        json_response = await client.get('/json', headers={'Accept-Encoding': 'gzip'})
        small = await client.get('/small', headers={'Accept-Encoding': 'gzip'})
    assert json_response.header('content-encoding') == 'gzip'
    assert gzip.decompress(json_response.body).startswith(b'{"items":[0,1,2')
    assert small.header('content-encoding') is None and small.body == b'tiny'
    assert small.header('vary') == 'Accept-Encoding'  # the representation still varies


async def test_a_client_refusing_identity_gets_even_a_small_body_compressed(app):
    async with TestClient(app) as client:
        response = await client.get('/small', headers={'Accept-Encoding': 'gzip, identity;q=0'})
    assert response.header('content-encoding') == 'gzip'
    assert gzip.decompress(response.body) == b'tiny'


@pytest.mark.parametrize('path', ['/image', '/encoded', '/no-transform'])
async def test_bodies_left_alone(app, path):
    async with TestClient(app) as client:
        response = await client.get(path, headers={'Accept-Encoding': 'gzip'})
    if path == '/encoded':  # already gzip: passed on untouched, not twice
        assert response.header('content-encoding') == 'gzip'
        assert gzip.decompress(response.body) == TEXT.encode()
    else:
        assert response.header('content-encoding') is None
    assert 'Accept-Encoding' not in (response.header('vary') or '')


async def test_no_accept_encoding_gets_identity(app):
    async with TestClient(app) as client:
        response = await client.get('/text')
    assert response.header('content-encoding') is None and response.text == TEXT
    assert response.header('vary') == 'Accept-Encoding'


async def test_strong_etag_is_weakened_and_ranges_withdrawn(app):
    async with TestClient(app) as client:
        response = await client.get('/etag', headers={'Accept-Encoding': 'gzip'})
        plain = await client.get('/etag')
    assert response.header('etag') == 'W/"v1"'
    assert response.header('accept-ranges') is None
    assert plain.header('etag') == '"v1"' and plain.header('accept-ranges') == 'bytes'


async def test_vary_is_merged_with_the_handlers(app):
    async with TestClient(app) as client:
        response = await client.get('/vary', headers={'Accept-Encoding': 'gzip'})
    assert response.header('vary') == 'Cookie, Accept-Encoding'


async def test_head_is_not_compressed(app):
    async with TestClient(app) as client:
        response = await client.head('/text', headers={'Accept-Encoding': 'gzip'})
    assert response.status == 200 and response.body == b''
    assert response.header('content-encoding') is None
    assert response.header('content-length') == str(len(TEXT))
    assert response.header('vary') == 'Accept-Encoding'


async def test_a_stream_is_flushed_at_every_piece(app):
    async with TestClient(app) as client:
        response = await client.get('/stream', headers={'Accept-Encoding': 'gzip'})
    assert response.header('content-encoding') == 'gzip'
    assert response.header('transfer-encoding') == 'chunked'
    decompressor = zlib.decompressobj(31)
    pieces = [decompressor.decompress(chunk) for chunk in response.chunks]
    # Every chunk decodes to exactly one piece on its own: nothing waits for the next one.
    assert pieces[:5] == [(f'piece {n}: ' + 'x' * 100 + '\n').encode() for n in range(5)]
    assert b''.join(pieces[5:]) == b'' and decompressor.eof


async def test_each_piece_reaches_a_real_client_as_it_is_produced():
    app = Tremolo()
    app.install(Compression())
    release = asyncio.Event()

    @app.route('/slow')
    async def slow(**server):
        yield 'first piece\n'
        await release.wait()
        yield 'second piece\n'

    async with serve(app) as server:
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            async with session.get(server.url + '/slow',
                                   headers={'Accept-Encoding': 'gzip'}) as response:
                assert response.headers['Content-Encoding'] == 'gzip'
                decompressor = zlib.decompressobj(31)
                first = await asyncio.wait_for(response.content.readany(), 5)
                # The first piece arrived, decodable, while the handler still waits.
                assert decompressor.decompress(first) == b'first piece\n'
                release.set()
                rest = await response.read()
                assert decompressor.decompress(rest) == b'second piece\n'
                assert decompressor.eof


async def test_aiohttp_decodes_what_it_is_sent():
    app = Tremolo()
    app.install(Compression())

    @app.route('/text')
    async def text(**server):
        return TEXT

    async with serve(app) as server:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + '/text',
                                   headers={'Accept-Encoding': 'gzip, deflate'}) as response:
                assert response.headers['Content-Encoding'] == 'gzip'
                assert await response.text() == TEXT


async def test_error_responses_are_left_small():
    app = Tremolo()
    app.install(Compression(minimum_size=0))
    async with TestClient(app) as client:
        response = await client.get('/missing', headers={'Accept-Encoding': 'gzip'})
    assert response.status == 404
    assert gzip.decompress(response.body) == b'Not Found'


async def test_partial_content_is_never_compressed(tmp_path):
    app = Tremolo()
    app.install(Compression(minimum_size=0))
    path = tmp_path / 'file.txt'
    path.write_text(TEXT)

    @app.route('/file')
    async def file(response, **server):
        return await response.sendfile(path)

    async with TestClient(app) as client:
        ranged = await client.get('/file', headers={'Accept-Encoding': 'gzip',
                                                    'Range': 'bytes=0-9'})
        whole = await client.get('/file', headers={'Accept-Encoding': 'gzip'})
        etag = whole.header('etag')
        cached = await client.get('/file', headers={'Accept-Encoding': 'gzip',
                                                    'If-None-Match': etag})
    assert ranged.status == 206 and ranged.body == TEXT[:10].encode()
    assert ranged.header('content-encoding') is None
    assert whole.header('content-encoding') == 'gzip'
    assert gzip.decompress(whole.body) == TEXT.encode()
    assert etag.startswith('W/"')
    # The weakened tag still validates (If-None-Match compares weakly, RFC 9110 §13.1.2).
    assert cached.status == 304 and cached.body == b''


# -- request bodies --------------------------------------------------------------------------

@pytest.mark.parametrize('coding', [
    'gzip', 'x-gzip', 'deflate', pytest.param('br', marks=needs_brotli),
    pytest.param('zstd', marks=needs_zstd)])
async def test_request_bodies_are_decoded(app, coding):
    raw = b'0123456789' * 5000
    body = {'gzip': gzip.compress, 'x-gzip': gzip.compress, 'deflate': zlib.compress,
            'br': lambda data: brotli.compress(data),
            'zstd': lambda data: zstd.compress(data)}[coding](raw)
    async with TestClient(app) as client:
        response = await client.post('/upload', body=body,
                                     headers={'Content-Encoding': coding})
        chunked = await client.post('/upload', body=body, chunked=True,
                                    headers={'Content-Encoding': coding})
    assert response.json() == {'size': len(raw), 'start': '0123456789'}
    assert chunked.json() == {'size': len(raw), 'start': '0123456789'}


async def test_two_gzip_members_are_one_body(app):
    body = gzip.compress(b'a' * 100) + gzip.compress(b'b' * 100)
    async with TestClient(app) as client:
        response = await client.post('/upload', body=body, headers={'Content-Encoding': 'gzip'})
    assert response.json()['size'] == 200


async def test_a_decompression_bomb_stops_at_max_body_size(app):
    bomb = gzip.compress(b'\x00' * (50 * 1024 * 1024))  # 50 MiB in ~50 KiB
    assert len(bomb) < 100_000
    async with TestClient(app, max_body_size=1024 * 1024) as client:
        whole = await client.post('/upload', body=bomb, headers={'Content-Encoding': 'gzip'})
        streamed = await client.post('/stream-upload', body=bomb,
                                     headers={'Content-Encoding': 'gzip'})
    assert whole.status == 413 and b'decoded' in whole.body
    assert streamed.status == 413


@needs_brotli
async def test_a_brotli_bomb_stops_at_max_body_size(app):
    bomb = brotli.compress(b'\x00' * (64 * 1024 * 1024))
    async with TestClient(app, max_body_size=1024 * 1024) as client:
        response = await client.post('/upload', body=bomb, headers={'Content-Encoding': 'br'})
    assert response.status == 413


@needs_zstd
async def test_a_zstd_bomb_stops_at_max_body_size(app):
    bomb = zstd.compress(b'\x00' * (64 * 1024 * 1024))
    async with TestClient(app, max_body_size=1024 * 1024) as client:
        response = await client.post('/upload', body=bomb, headers={'Content-Encoding': 'zstd'})
    assert response.status == 413


async def test_invalid_and_unknown_codings(app):
    async with TestClient(app) as client:
        invalid = await client.post('/upload', body=b'not gzip at all',
                                    headers={'Content-Encoding': 'gzip'})
        truncated = await client.post('/upload', body=gzip.compress(TEXT.encode())[:-10],
                                      headers={'Content-Encoding': 'gzip'})
        unknown = await client.post('/upload', body=b'x', headers={'Content-Encoding': 'lzw'})
    assert invalid.status == 400 and invalid.body == b'the request body is not valid gzip'
    assert truncated.status == 400
    assert unknown.status == 415
    assert 'gzip' in unknown.header('accept-encoding')


async def test_decoding_over_real_sockets(app):
    raw = TEXT.encode() * 20
    async with serve(app) as server:
        async with aiohttp.ClientSession() as session:
            async with session.post(server.url + '/upload', data=gzip.compress(raw),
                                    headers={'Content-Encoding': 'gzip'}) as response:
                assert response.status == 200
                assert (await response.json())['size'] == len(raw)
