"""Streamed request bodies: multipart parts read as they arrive (request.parts()), form() and
json() limits, and chunked uploads split anywhere; in process, over real sockets with aiohttp,
and the memory of a server process receiving a big upload."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import random

import aiohttp
import pytest

from tests.apps.harness import Processes, child_env, children_of
from tremolo import Tremolo
from tremolo.testing import TestClient, serve
from tremolo.testing.client import build_request

MiB = 1024 * 1024
FORM = 'multipart/form-data; boundary=XyZ'


def part(name: str, content: bytes, filename: str | None = None, *headers: bytes) -> bytes:
    disposition = b'Content-Disposition: form-data; name="%s"' % name.encode()
    if filename is not None:
        disposition += b'; filename="%s"' % filename.encode()
    lines = b''.join(h + b'\r\n' for h in headers)
    return b'--XyZ\r\n' + disposition + b'\r\n' + lines + b'\r\n' + content + b'\r\n'


def multipart(*parts: bytes) -> bytes:
    return b''.join(parts) + b'--XyZ--\r\n'


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def app(tmp_path):
    app = Tremolo()

    @app.post('/parts', max_body_size=512 * MiB)
    async def parts(request):
        found = []
        async for item in request.parts():
            sha = hashlib.sha256()
            pieces = 0
            async for piece in item:
                sha.update(piece)
                pieces += 1
            found.append({'name': item.name, 'filename': item.filename,
                          'type': item.content_type, 'size': item.size,
                          'sha256': sha.hexdigest(), 'x': item.headers.get('x-extra')})
        return found

    @app.post('/second-only')
    async def second_only(request):
        names = []
        async for item in request.parts():
            names.append(item.name)
            if len(names) == 2:
                names.append(await item.text())
        return names

    @app.post('/read-sizes')
    async def read_sizes(request):
        sizes = []
        async for item in request.parts():
            while True:
                piece = await item.read(7)
                if not piece:
                    break
                sizes.append(len(piece))
        return sizes

    @app.post('/save')
    async def save(request):
        async for item in request.parts():
            size = await item.save(tmp_path / 'saved.bin')
            return {'size': size, 'sha256': digest((tmp_path / 'saved.bin').read_bytes())}

    @app.post('/limited', max_part_size=100, max_form_fields=3, max_part_header_size=256,
              max_preamble_size=64, max_body_size=4096)
    async def limited(request):
        return [[item.name, len(await item.read())] async for item in request.parts()]

    @app.post('/form', max_form_field_size=100)
    async def form(request):
        data = await request.form()
        files = {name: [f.filename, f.size] for name, [f] in data.files.items()}
        return {'fields': dict(data), 'files': files}

    @app.post('/json', max_body_size=1024)
    async def read_json(request):
        return {'value': await request.json()}

    @app.post('/body', max_body_size=512 * MiB)
    async def body(request):
        data = await request.body()
        return {'size': len(data), 'sha256': digest(data)}

    @app.post('/stream', max_body_size=512 * MiB)
    async def stream(request):
        sha = hashlib.sha256()
        size = 0
        async for piece in request.stream():
            sha.update(piece)
            size += len(piece)
        return {'size': size, 'sha256': sha.hexdigest()}

    return app


# -- in process ----------------------------------------------------------------------------------

async def test_parts_with_their_headers_and_content(app):
    file_content = os.urandom(300_000) + b'\r\n--XyY\r\n'
    body = multipart(
        part('title', 'Grüße'.encode()),
        part('doc', file_content, 'résumé.pdf', b'Content-Type: application/pdf',
             b'X-Extra: yes'),
        part('empty', b''),
    )
    async with TestClient(app) as client:
        response = await client.post('/parts', body=body, headers={'Content-Type': FORM})
    assert response.status == 200
    assert response.json() == [
        {'name': 'title', 'filename': None, 'type': 'text/plain', 'size': 7,
         'sha256': digest('Grüße'.encode()), 'x': None},
        {'name': 'doc', 'filename': 'résumé.pdf', 'type': 'application/pdf',
         'size': len(file_content), 'sha256': digest(file_content), 'x': 'yes'},
        {'name': 'empty', 'filename': None, 'type': 'text/plain', 'size': 0,
         'sha256': digest(b''), 'x': None},
    ]


async def test_unread_content_is_skipped(app):
    body = multipart(part('a', b'x' * 100_000), part('b', b'second'), part('c', b'y' * 10))
    async with TestClient(app) as client:
        response = await client.post('/second-only', body=body, headers={'Content-Type': FORM})
        again = await client.get('/nothing')  # the connection is still usable
    assert response.json() == ['a', 'b', 'second', 'c']
    assert again.status == 404


async def test_read_with_a_size(app):
    body = multipart(part('a', b'0123456789abcdef'))
    async with TestClient(app) as client:
        response = await client.post('/read-sizes', body=body, headers={'Content-Type': FORM})
    assert sum(response.json()) == 16 and max(response.json()) == 7


async def test_save_to_disk(app, tmp_path):
    content = os.urandom(2 * MiB)
    body = multipart(part('file', content, 'big.bin'))
    async with TestClient(app) as client:
        response = await client.post('/save', body=body, headers={'Content-Type': FORM},
                                     chunked=True)
    assert response.json() == {'size': len(content), 'sha256': digest(content)}


async def test_save_removes_the_file_when_the_upload_fails(app, tmp_path):
    body = multipart(part('file', b'x' * 200, 'f'))[:-30]  # ends inside the file
    async with TestClient(app) as client:
        response = await client.post('/save', body=body, headers={'Content-Type': FORM})
    assert response.status == 400
    assert not (tmp_path / 'saved.bin').exists()


async def test_boundary_split_across_reads(app):
    body = multipart(part('a', b'one\r\n--Xy\r\n--XyY'), part('b', b'\r\n' * 50))
    expected = [digest(b'one\r\n--Xy\r\n--XyY'), digest(b'\r\n' * 50)]
    async with TestClient(app) as client:
        for size in (1, 2, 3, 5, 8, 13):
            connection = client.connect()
            connection.send(build_request('POST', '/parts', body=body,
                                          headers={'Content-Type': FORM})[:-len(body)])
            for start in range(0, len(body), size):
                connection.send(body[start:start + size])
                await asyncio.sleep(0)
            response = await connection.read_response()
            assert [found['sha256'] for found in response.json()] == expected, size


@pytest.mark.parametrize(('body', 'content_type', 'status', 'message'), [
    pytest.param(multipart(part('a', b'1'))[:-9], FORM, 400, b'final boundary',
                 id='missing-final-boundary'),
    pytest.param(b'--XyZ\r\nContent-Type: text/plain\r\n\r\nv\r\n--XyZ--', FORM, 400,
                 b'Content-Disposition', id='no-content-disposition'),
    pytest.param(multipart(part('a', b'1', None, b'X-Big: ' + b'x' * 300)), FORM, 413,
                 b'headers too large', id='huge-part-header'),
    pytest.param(multipart(*[part('a', b'1')] * 4), FORM, 413, b'too many', id='too-many-parts'),
    pytest.param(multipart(part('a', b'x' * 101)), FORM, 413, b'part too large',
                 id='part-too-large'),
    pytest.param(b'p' * 65 + b'\r\n' + multipart(part('a', b'1')), FORM, 413,
                 b'preamble too large', id='preamble-too-large'),
    pytest.param(multipart(part('a', b'1')) + b'e' * 70, FORM, 413, b'epilogue too large',
                 id='epilogue-too-large'),
    pytest.param(multipart(*[part('a', b'x' * 99)] * 3) + b'p' * 4000, FORM, 413,
                 b'body too large', id='body-too-large'),
    pytest.param(multipart(part('a', b'1')), 'multipart/form-data', 400, b'boundary',
                 id='no-boundary'),
    pytest.param(b'a=1', 'application/x-www-form-urlencoded', 415, b'multipart',
                 id='not-multipart'),
    pytest.param(b'--XyZjunk\r\n', FORM, 400, b'delimiter', id='junk-after-delimiter'),
])
async def test_malformed_and_oversized(app, body, content_type, status, message):
    async with TestClient(app) as client:
        response = await client.post('/limited', body=body,
                                     headers={'Content-Type': content_type})
        again = await client.post('/limited', body=body, chunked=True,
                                  headers={'Content-Type': content_type})
        fine = await client.post('/limited', body=multipart(part('ok', b'1')),
                                 headers={'Content-Type': FORM})
    assert (response.status, again.status) == (status, status), response.body
    assert message.lower() in response.body.lower()
    assert fine.json() == [['ok', 1]]  # the worker keeps serving


async def test_limits_are_inclusive(app):
    body = multipart(*[part('a', b'x' * 100)] * 3)
    async with TestClient(app) as client:
        response = await client.post('/limited', body=body, headers={'Content-Type': FORM})
    assert response.json() == [['a', 100]] * 3


async def test_a_hook_can_change_the_limits_of_one_request(app):
    @app.on_request
    async def allow_more(request, context):
        if request.query.get('big'):
            context.options['max_part_size'] = 1000

    body = multipart(part('a', b'x' * 500))
    async with TestClient(app) as client:
        refused = await client.post('/limited', body=body, headers={'Content-Type': FORM})
        allowed = await client.post('/limited?big=1', body=body, headers={'Content-Type': FORM})
    assert refused.status == 413 and allowed.json() == [['a', 500]]


async def test_form_is_parsed_as_it_arrives_with_field_limits(app):
    body = multipart(part('name', b'Ada'), part('file', b'z' * 5000, 'f.txt'))
    async with TestClient(app) as client:
        ok = await client.post('/form', body=body, headers={'Content-Type': FORM}, chunked=True)
        big_field = await client.post('/form', body=multipart(part('name', b'x' * 101)),
                                      headers={'Content-Type': FORM})
        big_urlencoded = await client.post('/form', body=b'a=' + b'x' * 101, headers={
            'Content-Type': 'application/x-www-form-urlencoded'})
        many = await client.post('/form', body='&'.join(['a=1'] * 1001), headers={
            'Content-Type': 'application/x-www-form-urlencoded'})
        malformed = await client.post('/form', body=b'--XyZ\r\n\r\nv\r\n--XyZ--',
                                      headers={'Content-Type': FORM})
        other = await client.post('/form', body=b'{}', headers={
            'Content-Type': 'application/json'})
    assert ok.json() == {'fields': {'name': 'Ada'}, 'files': {'file': ['f.txt', 5000]}}
    assert (big_field.status, big_urlencoded.status, many.status) == (413, 413, 413)
    assert (malformed.status, other.status) == (400, 415)


@pytest.mark.parametrize(('body', 'status'), [
    (b'{"a": [1, 2]}', 200), (b'{not json', 400), (b'\xff\xfe\x00', 400), (b'', 400),
    (b'[' * 100_000 + b']' * 100_000, 413), (b'[' * 500 + b']' * 500, 200),
])
async def test_json_errors_are_never_500(app, body, status):
    async with TestClient(app) as client:
        response = await client.post('/json', body=body)
    assert response.status == status


async def test_deeply_nested_json_is_a_bad_request():
    app = Tremolo()

    @app.post('/json', max_body_size=MiB)
    async def read_json(request):
        return {'value': await request.json()}

    async with TestClient(app) as client:
        response = await client.post('/json', body=b'[' * 200_000 + b']' * 200_000)
    assert response.status == 400


# -- chunked uploads split anywhere, over a real socket ------------------------------------------

def chunked(data: bytes, sizes: list[int]) -> bytes:
    """``data`` in chunks of the given sizes (cycled), with chunk extensions now and then."""
    out = []
    pos = 0
    turn = 0
    while pos < len(data):
        size = sizes[turn % len(sizes)]
        piece = data[pos:pos + size]
        extension = b';ext=%d' % turn if turn % 5 == 3 else b''
        out.append(b'%x%s\r\n%s\r\n' % (len(piece), extension, piece))
        pos += size
        turn += 1
    return b''.join(out) + b'0\r\n\r\n'


async def send_split(port: int, head: bytes, body: bytes, cuts: list[int]) -> bytes:
    """Send ``head`` + ``body`` cut at ``cuts`` (each write drained and given a moment, so the
    server reads them apart); return the response."""
    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    data = head + body
    previous = 0
    for cut in sorted(set(cuts)) + [len(data)]:
        writer.write(data[previous:cut])
        await writer.drain()
        if cut - previous < 64:
            await asyncio.sleep(0.001)
        previous = cut
    response = await reader.read()
    writer.close()
    return response


def response_json(raw: bytes) -> dict:
    head, _, body = raw.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 200'), raw[:300]
    return json.loads(body)


@pytest.mark.parametrize('path', ['/stream', '/body', '/parts'])
@pytest.mark.parametrize('shape', ['one-byte-chunks', 'huge-chunk', 'split-size-lines',
                                   'random'])
async def test_chunked_upload_split_anywhere(app, path, shape):
    rng = random.Random(f'{path}{shape}')
    content = rng.randbytes(3000 if shape in ('one-byte-chunks', 'split-size-lines')
                            else 3 * MiB)
    if path == '/parts':
        payload = multipart(part('file', content, 'f.bin'))
        headers = b'Content-Type: ' + FORM.encode() + b'\r\n'
    else:
        payload = content
        headers = b''
    if shape == 'one-byte-chunks':
        body = chunked(payload, [1])
        cuts = list(range(0, len(body), 97))
    elif shape == 'huge-chunk':
        body = chunked(payload, [len(payload)])
        cuts = [1, 2, 3, 4, 5, 6, 7]
    elif shape == 'split-size-lines':
        body = chunked(payload, [17, 300, 1])
        # Cut inside every size line: after its first hex digit and between CR and LF.
        cuts = []
        pos = 0
        while True:
            line_end = body.index(b'\r\n', pos)
            cuts += [pos + 1, line_end + 1]
            size = int(body[pos:line_end].split(b';')[0], 16)
            if size == 0:
                break
            pos = line_end + 2 + size + 2
            cuts.append(pos - 1)  # between the CR and LF after the data
    else:
        body = chunked(payload, [rng.randrange(1, 200_000) for _ in range(50)])
        cuts = [rng.randrange(len(body)) for _ in range(200)]
    head = (b'POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n%s'
            b'Connection: close\r\n\r\n' % (path.encode(), headers))
    async with serve(app) as server:
        raw = await send_split(server.port, head, body, [len(head) + c for c in cuts])
    result = response_json(raw)
    if path == '/parts':
        [result] = result
    assert (result['size'], result['sha256']) == (len(content), digest(content))


# -- real sockets with aiohttp -------------------------------------------------------------------

async def test_aiohttp_form_data(app):
    content = os.urandom(5 * MiB)
    form = aiohttp.FormData()
    form.add_field('name', 'Zoë')
    form.add_field('file', io.BytesIO(content), filename='data.bin',
                   content_type='application/x-test')
    async with serve(app) as server, aiohttp.ClientSession() as session:
        async with session.post(server.url + '/parts', data=form) as response:
            found = await response.json()
    assert [(f['name'], f['filename'], f['type'], f['size']) for f in found] == [
        ('name', None, 'text/plain; charset=utf-8', 4),
        ('file', 'data.bin', 'application/x-test', len(content)),
    ]
    assert found[1]['sha256'] == digest(content)


async def test_aiohttp_multipart_writer(app):
    with aiohttp.MultipartWriter('form-data') as writer:
        first = writer.append('plain text')
        first.set_content_disposition('form-data', name='text')
        second = writer.append_json({'k': 'v'})
        second.set_content_disposition('form-data', name='data')
        third = writer.append(b'\r\n'.join([b'--' + writer.boundary.encode()[:-1]] * 1000))
        third.set_content_disposition('form-data', name='file', filename='x.bin')
    async with serve(app) as server, aiohttp.ClientSession() as session:
        async with session.post(server.url + '/parts', data=writer) as response:
            found = await response.json()
    assert [(f['name'], f['filename']) for f in found] == [
        ('text', None), ('data', None), ('file', 'x.bin')]
    assert found[1]['type'].startswith('application/json')
    assert found[2]['size'] > 30_000


# -- memory --------------------------------------------------------------------------------------

def peak_rss(pid: int) -> int:
    """The peak resident set size (VmHWM) of a process, in bytes."""
    with open(f'/proc/{pid}/status') as status:
        for line in status:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) * 1024
    raise AssertionError('no VmHWM')


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists('/proc/self/status'), reason='needs Linux /proc')
async def test_big_upload_to_disk_in_constant_memory(tmp_path):
    size = 200 * MiB
    piece = os.urandom(256 * 1024)
    boundary = 'm' * 30
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"'
            f'\r\nContent-Type: application/octet-stream\r\n\r\n').encode()
    tail = f'\r\n--{boundary}--\r\n'.encode()

    async def body(total: int):
        yield head
        for _ in range(total // len(piece)):
            yield piece
        yield tail

    with Processes(tmp_path) as procs:
        env_dir = tmp_path / 'uploads'
        server = procs.cli('examples.upload_to_disk:app', '--port', '0', '--no-access-log',
                           env=child_env(UPLOAD_DIR=str(env_dir)))
        url = await server.url('/upload')
        pid = (children_of(server.pid) or [server.pid])[0]
        timeout = aiohttp.ClientTimeout(total=120)
        headers = {'Content-Type': f'multipart/form-data; boundary={boundary}'}
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(url, data=body(4 * MiB), headers=headers) as response:
                assert response.status == 200, await response.text()
            before = peak_rss(pid)
            async with session.post(url, data=body(size), headers=headers) as response:
                result = await response.json()
        after = peak_rss(pid)
    [saved] = result['files']
    assert saved['size'] == size
    assert (env_dir / 'tremolo-uploads' / saved['stored_as']).stat().st_size == size
    assert after - before < 32 * MiB, f'peak RSS grew by {(after - before) / MiB:.1f} MiB'
