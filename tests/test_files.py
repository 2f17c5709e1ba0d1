"""Response.sendfile: in process (the read path) and over real sockets (zero-copy)."""

from __future__ import annotations

import asyncio
import email.parser
import logging
import os
import re

import aiohttp
import pytest
from tremolo.middleware.bandwidth import throttle

from tests.apps.harness import needs_uvloop
from tremolo import Tremolo
from tremolo.files import content_disposition, guess_content_type
from tremolo.testing import TestClient, serve

BIG = 8 * 1024 * 1024 + 123  # several socket buffers, not a multiple of any piece size


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp('files')
    (root / 'data.bin').write_bytes(os.urandom(300_000))
    (root / 'big.bin').write_bytes(os.urandom(BIG))
    (root / 'hello.txt').write_text('Hello, files!\n')
    (root / 'empty.txt').write_bytes(b'')
    (root / 'page.html').write_text('<h1>hi</h1>')
    (root / 'dir').mkdir()
    return root


def make_app(root, pieces=None) -> Tremolo:
    app = Tremolo()

    @app.route('/file/{name}')
    async def returned(name, response):
        return await response.sendfile(root / name)

    @app.route('/awaited/{name}')
    async def awaited(name, response):
        await response.sendfile(str(root / name))

    @app.route('/download')
    async def download(response):
        return await response.sendfile(root / 'data.bin', filename='résumé "v1".bin')

    @app.route('/plain')
    async def plain(response):
        return await response.sendfile(root / 'hello.txt', etag=False, last_modified=False,
                                       ranges=False, content_type='text/x-custom')

    @app.route('/custom-etag')
    async def custom_etag(response):
        return await response.sendfile(root / 'hello.txt', etag='"v2"',
                                       headers={'Cache-Control': 'no-cache'})

    @app.route('/paced/{name}')
    async def paced(name, response):
        def count(data, final):
            pieces.append(len(data))
            return data
        count.preserves_length = True  # like a speed limiter
        response.add_filter(count)
        return await response.sendfile(root / name, chunk_size=65536)

    @app.route('/throttled')
    async def throttled(response):
        throttle(response, rate=1024 * 1024)
        return await response.sendfile(root / 'data.bin')

    @app.route('/missing')
    async def missing(response):
        response.status = 404  # a file as the error page: no 304, no range
        return await response.sendfile(root / 'page.html')

    @app.route('/filtered/{name}')
    async def filtered(name, response):
        def count(data, final):
            pieces.append(len(data))
            return data
        response.add_filter(count)
        return await response.sendfile(root / name, chunk_size=65536)

    @app.route('/shrinking/{name}')
    async def shrinking(name, response, request):
        path = root / 'shrink' / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b'x' * 1_000_000)
        if 'filter' in request.query:
            response.add_filter(lambda data, final: data)
        return await response.sendfile(path)

    @app.on_response
    async def truncate(request):
        # Runs after the head's length is decided and before the body: the file shrinks.
        if request.path.startswith('/shrinking/'):
            with open(root / 'shrink' / request.path.rsplit('/', 1)[1], 'r+b') as file:
                file.truncate(1000)

    return app


@pytest.fixture
def pieces():
    return []


@pytest.fixture
def app(root, pieces):
    return make_app(root, pieces)


# -- in process: the read path --------------------------------------------------------------------

async def test_whole_file_with_its_headers(app, root):
    async with TestClient(app) as client:
        response = await client.get('/file/hello.txt')
        assert response.status == 200
        assert response.body == b'Hello, files!\n'
        headers = response.headers
        assert headers['content-type'] == 'text/plain; charset=utf-8'
        assert headers['content-length'] == '14'
        assert headers['accept-ranges'] == 'bytes'
        info = os.stat(root / 'hello.txt')
        assert headers['etag'] == f'"{info.st_mtime_ns:x}-{info.st_size:x}"'
        assert headers['last-modified'].endswith(' GMT')
        assert 'transfer-encoding' not in headers
        response = await client.get('/file/data.bin')
        assert response.body == (root / 'data.bin').read_bytes()
        assert response.header('content-type') == 'application/octet-stream'


async def test_returned_and_awaited_on_one_connection(app, root):
    async with TestClient(app) as client:
        connection = client.connect()
        for path in ('/file/page.html', '/awaited/page.html', '/file/empty.txt',
                     '/awaited/empty.txt', '/file/page.html'):
            response = await connection.request('GET', path)
            assert response.status == 200
            assert response.body == (root / path.rsplit('/', 1)[1]).read_bytes()
        assert not connection.closed
        await connection.close()


async def test_head_sends_the_head_only(app):
    async with TestClient(app) as client:
        response = await client.request('HEAD', '/file/data.bin')
        assert response.status == 200 and response.body == b''
        assert response.header('content-length') == '300000'
        # Ranges are defined for GET only: HEAD with a Range gets the 200 head.
        response = await client.request('HEAD', '/file/data.bin', headers={'Range': 'bytes=0-1'})
        assert response.status == 200 and response.header('content-length') == '300000'


async def test_missing_directory_and_fifo_are_not_found(app, root, tmp_path):
    async with TestClient(app) as client:
        assert (await client.get('/file/nope.txt')).status == 404
        assert (await client.get('/file/dir')).status == 404
        if hasattr(os, 'mkfifo'):
            os.mkfifo(root / 'fifo')
            try:
                # Opening a FIFO would wait for a writer: it is refused without waiting.
                assert (await client.get('/file/fifo')).status == 404
            finally:
                os.unlink(root / 'fifo')


async def test_unreadable_file_is_forbidden(app, root, monkeypatch):
    (root / 'secret.txt').write_text('no')
    real_open = os.open

    def denied(path, flags, *args):
        # What the kernel answers a process without the permission (root reads anything,
        # so the refusal is simulated at the system call).
        if str(path).endswith('secret.txt'):
            raise PermissionError(13, 'Permission denied', str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, 'open', denied)
    async with TestClient(app) as client:
        assert (await client.get('/file/secret.txt')).status == 403
        assert (await client.get('/file/data.bin')).status == 200


async def test_single_and_suffix_ranges(app, root):
    data = (root / 'data.bin').read_bytes()
    async with TestClient(app) as client:
        for value, expected in (('bytes=0-0', (0, 0)), ('bytes=100-199', (100, 199)),
                                ('bytes=-500', (299_500, 299_999)),
                                ('bytes=299000-', (299_000, 299_999)),
                                ('bytes=-999999', (0, 299_999))):
            response = await client.get('/file/data.bin', headers={'Range': value})
            assert response.status == 206, value
            first, last = expected
            assert response.header('content-range') == f'bytes {first}-{last}/300000'
            assert response.header('content-length') == str(last - first + 1)
            assert response.body == data[first:last + 1]


async def test_multiple_ranges_are_multipart(app, root):
    data = (root / 'data.bin').read_bytes()
    async with TestClient(app) as client:
        response = await client.get('/file/data.bin',
                                    headers={'Range': 'bytes=0-9, 1000-1999, -10'})
    assert response.status == 206
    content_type = response.header('content-type')
    assert content_type.startswith('multipart/byteranges; boundary=')
    assert int(response.header('content-length')) == len(response.body)
    message = email.parser.BytesParser().parsebytes(
        b'Content-Type: ' + content_type.encode() + b'\r\n\r\n' + response.body)
    parts = message.get_payload()
    assert [part['Content-Range'] for part in parts] == [
        'bytes 0-9/300000', 'bytes 1000-1999/300000', 'bytes 299990-299999/300000']
    assert all(part['Content-Type'] == 'application/octet-stream' for part in parts)
    assert [part.get_payload(decode=True) for part in parts] == [
        data[:10], data[1000:2000], data[-10:]]


async def test_unsatisfiable_and_ignored_ranges(app, root):
    async with TestClient(app) as client:
        response = await client.get('/file/data.bin', headers={'Range': 'bytes=300000-'})
        assert response.status == 416
        assert response.header('content-range') == 'bytes */300000'
        response = await client.get('/file/empty.txt', headers={'Range': 'bytes=0-'})
        assert response.status == 416 and response.header('content-range') == 'bytes */0'
        for ignored in ('bytes=5-2', 'lines=1-2', 'bytes=x'):
            response = await client.get('/file/hello.txt', headers={'Range': ignored})
            assert response.status == 200 and response.body == b'Hello, files!\n'
        response = await client.get('/plain', headers={'Range': 'bytes=0-1'})
        assert response.status == 200 and 'accept-ranges' not in response.headers


async def test_conditional_requests(app):
    async with TestClient(app) as client:
        first = await client.get('/file/hello.txt')
        etag, modified = first.header('etag'), first.header('last-modified')
        response = await client.get('/file/hello.txt', headers={'If-None-Match': etag})
        assert response.status == 304 and response.body == b''
        assert response.header('etag') == etag
        assert 'last-modified' not in response.headers and 'content-length' not in response.headers
        response = await client.get('/file/hello.txt', headers={'If-None-Match': f'W/{etag}'})
        assert response.status == 304
        response = await client.get('/file/hello.txt', headers={'If-Modified-Since': modified})
        assert response.status == 304
        response = await client.get('/file/hello.txt', headers={
            'If-None-Match': '"stale"', 'If-Modified-Since': modified})
        assert response.status == 200  # If-Modified-Since is ignored with If-None-Match
        response = await client.get('/file/hello.txt', headers={'If-Match': '"stale"'})
        assert response.status == 412
        response = await client.get('/file/hello.txt', headers={'If-Match': etag})
        assert response.status == 200
        response = await client.get('/file/hello.txt', headers={
            'If-Unmodified-Since': 'Sun, 06 Nov 1994 08:49:37 GMT'})
        assert response.status == 412
        response = await client.post('/file/hello.txt')
        assert response.status == 405


async def test_if_range(app):
    async with TestClient(app) as client:
        first = await client.get('/file/hello.txt')
        etag, modified = first.header('etag'), first.header('last-modified')
        for validator, status in ((etag, 206), (modified, 206), ('"stale"', 200),
                                  (f'W/{etag}', 200),
                                  ('Sun, 06 Nov 1994 08:49:37 GMT', 200)):
            response = await client.get('/file/hello.txt',
                                        headers={'Range': 'bytes=0-4', 'If-Range': validator})
            assert response.status == status, validator
            assert response.body == (b'Hello' if status == 206 else b'Hello, files!\n')


async def test_options(app):
    async with TestClient(app) as client:
        response = await client.get('/plain')
        assert response.header('content-type') == 'text/x-custom'
        assert 'etag' not in response.headers and 'last-modified' not in response.headers
        response = await client.get('/custom-etag')
        assert response.header('etag') == '"v2"'
        assert response.header('cache-control') == 'no-cache'
        response = await client.get('/custom-etag', headers={'If-None-Match': '"v2"'})
        assert response.status == 304 and response.header('cache-control') == 'no-cache'
        response = await client.get('/download')
        assert response.header('content-disposition') == (
            'attachment; filename="r_sum_ _v1_.bin"; '
            "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22v1%22.bin")


async def test_error_page_from_a_file_ignores_preconditions_and_ranges(app):
    async with TestClient(app) as client:
        etag = (await client.get('/missing')).header('etag')
        for headers in ({'If-None-Match': etag}, {'Range': 'bytes=0-1'}, {'If-Match': '"x"'}):
            response = await client.get('/missing', headers=headers)
            assert response.status == 404 and response.body == b'<h1>hi</h1>'
            assert 'accept-ranges' not in response.headers


async def test_filters_see_every_piece(app, root, pieces):
    data = (root / 'data.bin').read_bytes()
    async with TestClient(app) as client:
        response = await client.get('/filtered/data.bin')
        assert response.body == data
        assert response.header('transfer-encoding') == 'chunked'
        assert sum(pieces) == len(data) and max(pieces) == 65536
        del pieces[:]
        response = await client.get('/filtered/data.bin', headers={'Range': 'bytes=10-19,-5'})
        assert response.status == 206 and sum(pieces) == len(response.body)
        response = await client.request('HEAD', '/filtered/data.bin')
        assert response.status == 200 and response.body == b''


async def test_length_preserving_filters_keep_the_content_length(app, root, pieces):
    data = (root / 'data.bin').read_bytes()
    async with TestClient(app) as client:
        response = await client.get('/paced/data.bin')
        assert response.body == data and response.header('content-length') == '300000'
        assert 'transfer-encoding' not in response.headers
        assert sum(pieces) == len(data) and max(pieces) == 65536
        response = await client.get('/paced/data.bin', headers={'Range': 'bytes=10-19,-5'})
        assert response.status == 206
        assert int(response.header('content-length')) == len(response.body)
        response = await client.request('HEAD', '/paced/data.bin')
        assert response.header('content-length') == '300000' and response.body == b''


async def test_speed_limited_download(app, root, sendfile_calls):
    data = (root / 'data.bin').read_bytes()
    async with serve(app) as server, aiohttp.ClientSession() as session:
        started = asyncio.get_running_loop().time()
        async with session.get(server.url + '/throttled') as response:
            assert response.headers['Content-Length'] == '300000'
            assert await response.read() == data
        elapsed = asyncio.get_running_loop().time() - started
    assert 0.15 < elapsed < 5  # 300 kB at 1 MiB/s, less the burst
    assert sendfile_calls == []  # the limiter must see every piece


async def test_access_log_counts_the_file_bytes(app, caplog):
    caplog.set_level(logging.INFO, logger='tremolo.access')
    async with TestClient(app, access_log=True) as client:
        await client.get('/file/data.bin')
        await client.get('/file/data.bin', headers={'Range': 'bytes=0-99'})
    sizes = [record.getMessage().rsplit(' ', 2)[1:] for record in caplog.records
             if record.name == 'tremolo.access']
    assert sizes == [['200', '300000'], ['206', '100']]


@pytest.mark.parametrize('query', ['', '?filter'])
async def test_a_file_that_shrinks_aborts_the_connection(app, caplog, query):
    async with TestClient(app) as client:
        connection = client.connect()
        with pytest.raises(ConnectionError):
            await connection.request('GET', '/shrinking/in-process' + query)
        assert connection.transport.aborted
    assert any('while it was sent' in message for message in caplog.messages)


def test_content_type_and_disposition_helpers():
    assert guess_content_type('a.css') == 'text/css; charset=utf-8'
    assert guess_content_type('a.png') == 'image/png'
    assert guess_content_type('a.tar.gz') == 'application/gzip'
    assert guess_content_type('noextension') == 'application/octet-stream'
    assert content_disposition('a.txt') == 'attachment; filename="a.txt"'
    assert content_disposition('../a\r\n.txt') == (
        'attachment; filename=".._a__.txt"; filename*=UTF-8\'\'.._a%0D%0A.txt')


# -- real sockets: zero-copy ----------------------------------------------------------------------

@pytest.fixture
def sendfile_calls(monkeypatch):
    """Count the event loop's sendfile calls (and the bytes they sent)."""
    calls = []
    original = asyncio.BaseEventLoop.sendfile

    async def spy(self, transport, file, offset=0, count=None, *, fallback=True):
        sent = await original(self, transport, file, offset, count, fallback=fallback)
        calls.append(sent)
        return sent

    monkeypatch.setattr(asyncio.BaseEventLoop, 'sendfile', spy)
    return calls


async def exercise(app, root, pieces=None):
    """The same requests over a real socket, whatever the loop and path."""
    big = (root / 'big.bin').read_bytes()
    data = (root / 'data.bin').read_bytes()
    async with serve(app) as server, aiohttp.ClientSession() as session:
        async with session.get(server.url + '/file/big.bin') as response:
            assert response.status == 200
            assert response.headers['Content-Length'] == str(BIG)
            assert await response.read() == big
        async with session.get(server.url + '/file/big.bin',
                               headers={'Range': 'bytes=1000000-'}) as response:
            assert response.status == 206 and await response.read() == big[1_000_000:]
        async with session.get(server.url + '/file/data.bin',
                               headers={'Range': 'bytes=0-9,100-199,-10'}) as response:
            assert response.status == 206
            reader = aiohttp.MultipartReader.from_response(response)
            parts = []
            while (part := await reader.next()) is not None:
                parts.append((part.headers['Content-Range'], await part.read()))
            assert parts == [('bytes 0-9/300000', data[:10]),
                             ('bytes 100-199/300000', data[100:200]),
                             ('bytes 299990-299999/300000', data[-10:])]
        async with session.get(server.url + '/file/hello.txt') as response:
            etag = response.headers['ETag']
        async with session.get(server.url + '/file/hello.txt',
                               headers={'If-None-Match': etag}) as response:
            assert response.status == 304
        async with session.get(server.url + '/file/hello.txt',
                               headers={'If-Match': '"x"'}) as response:
            assert response.status == 412
        async with session.get(server.url + '/file/hello.txt',
                               headers={'Range': 'bytes=99-'}) as response:
            assert response.status == 416
        async with session.head(server.url + '/file/big.bin') as response:
            assert response.headers['Content-Length'] == str(BIG)
            assert await response.read() == b''
        async with session.get(server.url + '/filtered/big.bin') as response:
            assert await response.read() == big
        if pieces is not None:
            assert sum(pieces) == BIG


async def test_real_socket_uses_zero_copy(app, root, sendfile_calls, pieces):
    await exercise(app, root, pieces)
    # The big file, its range and hello.txt; multipart and filtered bodies are read.
    assert sendfile_calls == [BIG, BIG - 1_000_000, 14]


async def test_client_leaving_mid_file_leaves_the_server_serving(app, root, sendfile_calls):
    async with serve(app) as server:
        for _ in range(3):
            reader, writer = await asyncio.open_connection(server.host, server.port)
            writer.write(b'GET /file/big.bin HTTP/1.1\r\nHost: x\r\n\r\n')
            await reader.readexactly(100_000)
            writer.transport.abort()
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + '/file/hello.txt') as response:
                assert await response.read() == b'Hello, files!\n'


async def test_real_socket_shrinking_file_aborts(app, caplog):
    async with serve(app) as server, aiohttp.ClientSession() as session:
        for query in ('', '?filter'):
            # Cut short: the body is incomplete (or, with a filter, even the held head was
            # dropped by the abort): an error for the client, never a wait.
            with pytest.raises(aiohttp.ClientError):
                async with session.get(server.url + '/shrinking/socket' + query) as response:
                    await response.read()
    assert sum('while it was sent' in message for message in caplog.messages) >= 2


async def test_raw_socket_sees_the_head_before_the_file(app, root):
    async with serve(app) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(b'GET /file/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'
                     b'GET /file/hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        data = await reader.read()
        writer.close()
    answers = re.findall(rb'HTTP/1\.1 200 OK\r\n.*?\r\n\r\nHello, files!\n', data, re.S)
    assert len(answers) == 2 and data.endswith(b'Hello, files!\n')


@needs_uvloop
def test_uvloop_falls_back_to_reads(root):
    import uvloop

    from tremolo.server import output

    pieces = []
    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(exercise(make_app(root, pieces), root, pieces))
    finally:
        loop.close()
    assert uvloop.Loop in output._NO_SENDFILE



async def test_tls_reads_and_writes(app, root, sendfile_calls, server_context,
                                    client_context):
    big = (root / 'big.bin').read_bytes()
    async with serve(app, ssl=server_context) as server, aiohttp.ClientSession() as session:
        url = server.url
        assert url.startswith('https://')
        async with session.get(url + '/file/big.bin', ssl=client_context) as response:
            assert response.headers['Content-Length'] == str(BIG)
            assert await response.read() == big
        async with session.get(url + '/file/big.bin', ssl=client_context,
                               headers={'Range': 'bytes=-1000'}) as response:
            assert response.status == 206 and await response.read() == big[-1000:]
    assert sendfile_calls == []  # encryption happens in user space: no zero-copy
