"""Request smuggling and limits, end to end: one error response, then the connection closes.

Each input is sent to a running server over a real socket (and, for the same cases, through
the in-process test client). The server must answer exactly once with the expected status and
close: not one byte of a rejected request may be read as a new request, which is checked by a
``/smuggled`` route that must never run.
"""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from tremolo import Tremolo
from tremolo.testing import TestClient, serve

SMUGGLED = b'GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n'
_STATUS = re.compile(rb'HTTP/1\.1 (\d{3}) ')


@pytest.fixture
def hits():
    return []


@pytest.fixture
def app(hits):
    app = Tremolo()

    @app.route('/', methods=['GET', 'POST'])
    async def index(request):
        hits.append(request.path)
        return b'got %d' % len(await request.body())

    @app.route('/smuggled')
    async def smuggled(request):
        hits.append(request.path)
        return 'smuggled'

    return app


def _post(fields: bytes, body: bytes = b'') -> bytes:
    return b'POST / HTTP/1.1\r\nHost: a\r\n' + fields + b'\r\n' + body


# (id, bytes, status). Every one is followed by SMUGGLED on the same connection.
SMUGGLING = [
    # CL.TE and TE.CL (RFC 9112 §6.3 (3)): a front end that trusts one and a back end that
    # trusts the other disagree on where the request ends.
    ('cl-te', _post(b'Content-Length: 41\r\nTransfer-Encoding: chunked\r\n', b'0\r\n\r\n'), 400),
    ('te-cl', _post(b'Transfer-Encoding: chunked\r\nContent-Length: 4\r\n', b'5c\r\n'), 400),
    ('cl-te-http10', b'POST / HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n'
                     b'\r\n0\r\n\r\n', 400),
    # TE.TE: an obfuscated Transfer-Encoding that one hop ignores and another honours.
    ('te-chunked-then-x', _post(b'Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n',
                                b'0\r\n\r\n'), 400),
    ('te-space-before-colon', _post(b'Transfer-Encoding : chunked\r\nContent-Length: 5\r\n',
                                    b'0\r\n\r\n'), 400),
    ('te-xchunked', _post(b'Transfer-Encoding: xchunked\r\n', b'0\r\n\r\n'), 400),
    ('te-vertical-tab', _post(b'Transfer-Encoding:\x0bchunked\r\n', b'0\r\n\r\n'), 400),
    ('te-chunked-twice', _post(b'Transfer-Encoding: chunked, chunked\r\n', b'0\r\n\r\n'), 400),
    ('te-folded', _post(b'Transfer-Encoding:\r\n chunked\r\n', b'0\r\n\r\n'), 400),
    ('te-quoted', _post(b'Transfer-Encoding: "chunked"\r\n', b'0\r\n\r\n'), 400),
    ('te-bare-lf', _post(b'Transfer-Encoding: chunked\nX: y\r\n', b'0\r\n\r\n'), 400),
    ('te-unknown-coding', _post(b'Transfer-Encoding: gzip, chunked\r\n', b'0\r\n\r\n'), 501),
    ('cl-conflicting', _post(b'Content-Length: 0\r\nContent-Length: 41\r\n'), 400),
    ('cl-plus', _post(b'Content-Length: +0\r\n'), 400),
    # A second request hidden in a body the server refuses to decode.
    ('chunk-size-space', _post(b'Transfer-Encoding: chunked\r\n', b'0 \r\n\r\n'), 400),
    ('chunk-size-hex-prefix', _post(b'Transfer-Encoding: chunked\r\n', b'0x0\r\n\r\n'), 400),
    ('chunk-size-overflow', _post(b'Transfer-Encoding: chunked\r\n',
                                  b'1' + b'0' * 16 + b'\r\n'), 400),
    ('chunk-size-bare-lf', _post(b'Transfer-Encoding: chunked\r\n', b'0\n\r\n'), 400),
    ('chunk-data-too-long', _post(b'Transfer-Encoding: chunked\r\n', b'1\r\nxx\r\n0\r\n\r\n'),
     400),
    # A bad head with a valid request pipelined behind it.
    ('bad-host', b'GET / HTTP/1.1\r\nHost: a b\r\n\r\n', 400),
    ('obs-fold', b'GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n', 400),
    ('http-2', b'GET / HTTP/2.0\r\nHost: a\r\n\r\n', 505),
]


async def _exchange_socket(server, data: bytes) -> tuple[bytes, bool]:
    """Send ``data``; return what came back before the server closed, and whether it did."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(data)
        await writer.drain()
        output = b''
        try:
            while True:
                piece = await asyncio.wait_for(reader.read(65536), 5)
                if not piece:
                    return output, True
                output += piece
        except (asyncio.TimeoutError, ConnectionResetError):
            return output, False
    finally:
        writer.close()


async def _exchange_in_process(client, data: bytes) -> tuple[bytes, bool]:
    connection = client.connect()
    connection.send(data)
    output = b''
    try:
        while not connection.transport.closed or connection.transport.output:
            output += await connection.receive(5)
    except asyncio.TimeoutError:
        return output, False
    finally:
        await connection.close()
    return output, True


def _statuses(output: bytes) -> list[int]:
    return [int(status) for status in _STATUS.findall(output)]


@pytest.mark.parametrize(
    ('data', 'status'), [c[1:] for c in SMUGGLING], ids=[c[0] for c in SMUGGLING]
)
async def test_smuggling_gets_one_error_and_a_close(app, hits, data, status):
    async with serve(app) as server:
        output, closed = await _exchange_socket(server, data + SMUGGLED)
    assert _statuses(output) == [status], output
    assert b'Connection: close' in output
    assert closed, 'the connection stayed open after a rejected request'
    assert '/smuggled' not in hits


@pytest.mark.parametrize(
    ('data', 'status'), [c[1:] for c in SMUGGLING], ids=[c[0] for c in SMUGGLING]
)
async def test_smuggling_in_process(app, hits, data, status):
    async with TestClient(app) as client:
        output, closed = await _exchange_in_process(client, data + SMUGGLED)
    assert _statuses(output) == [status], output
    assert closed
    assert '/smuggled' not in hits


async def test_the_same_bytes_when_valid_are_two_requests(app, hits):
    # The control: without the defect the pipelined request is served, so the tests above
    # really do show that the rejection is what keeps it from running.
    data = _post(b'Transfer-Encoding: chunked\r\n', b'0\r\n\r\n') + SMUGGLED
    async with serve(app) as server:
        output, _ = await _exchange_socket(server, data + b'GET / HTTP/1.1\r\nHost: a\r\n'
                                           b'Connection: close\r\n\r\n')
    assert _statuses(output) == [200, 200, 200]
    assert hits == ['/', '/smuggled', '/']


async def test_higher_minor_version_served_as_http11(app):
    async with serve(app) as server:
        output, closed = await _exchange_socket(
            server, b'GET / HTTP/1.2\r\nHost: a\r\nConnection: close\r\n\r\n')
    assert output.startswith(b'HTTP/1.1 200 ') and output.endswith(b'got 0')
    assert closed


# -- limits -------------------------------------------------------------------------------------

LIMITS = {'max_request_line': 64, 'max_header_size': 256, 'max_header_count': 5,
          'max_body_size': 16}

# (id, bytes, status): each just over one limit of LIMITS, with a request hidden behind the
# head or inside the body. A body over the limit is answered 413 when the handler reads it; the
# connection then closes, unless the whole body had already arrived (its framing is sound, so
# what follows is a genuine next request): here it is ended by "Connection: close".
_CLOSE = b'Connection: close\r\n'
OVER_LIMITS = [
    ('request-line', b'GET /?' + b'a' * 50 + b' HTTP/1.1\r\nHost: a\r\n\r\n' + SMUGGLED, 414),
    ('header-size', b'GET / HTTP/1.1\r\nHost: a\r\nX: ' + b'v' * 229 + b'\r\n\r\n' + SMUGGLED,
     431),
    ('header-count', b'GET / HTTP/1.1\r\nHost: a\r\n' + b'X: 1\r\n' * 5 + b'\r\n' + SMUGGLED,
     431),
    ('content-length-body', _post(b'Content-Length: %d\r\n' % len(SMUGGLED) + _CLOSE, SMUGGLED),
     413),
    ('chunked-body', _post(b'Transfer-Encoding: chunked\r\n' + _CLOSE,
                           b'%x\r\n%s\r\n0\r\n\r\n' % (len(SMUGGLED), SMUGGLED)), 413),
]
AT_LIMITS = [
    ('request-line', b'GET /?' + b'a' * 49 + b' HTTP/1.1\r\nHost: a\r\n\r\n'),
    ('header-size', b'GET / HTTP/1.1\r\nHost: a\r\nX: ' + b'v' * 228 + b'\r\n\r\n'),
    ('header-count', b'GET / HTTP/1.1\r\nHost: a\r\n' + b'X: 1\r\n' * 4 + b'\r\n'),
    ('content-length-body', _post(b'Content-Length: 16\r\n', b'x' * 16)),
    ('chunked-body', _post(b'Transfer-Encoding: chunked\r\n', b'8\r\n12345678\r\n'
                           b'8\r\n12345678\r\n0\r\n\r\n')),
]


@pytest.mark.parametrize(
    ('data', 'status'), [c[1:] for c in OVER_LIMITS], ids=[c[0] for c in OVER_LIMITS]
)
async def test_over_a_limit(app, hits, data, status):
    async with serve(app, **LIMITS) as server:
        output, closed = await _exchange_socket(server, data)
    assert _statuses(output) == [status], output
    assert closed
    assert '/smuggled' not in hits
    async with TestClient(app, **LIMITS) as client:
        output, closed = await _exchange_in_process(client, data)
    assert _statuses(output) == [status], output
    assert closed


@pytest.mark.parametrize('data', [c[1] for c in AT_LIMITS], ids=[c[0] for c in AT_LIMITS])
async def test_at_a_limit(app, data):
    async with serve(app, **LIMITS) as server:
        output, closed = await _exchange_socket(
            server, data + b'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    assert _statuses(output) == [200, 200], output
    assert closed


async def test_limits_with_aiohttp(app):
    # aiohttp sends a handful of fields of its own: room for them, not for twelve more.
    limits = {**LIMITS, 'max_header_count': 12, 'max_header_size': 1024}
    async with serve(app, **limits) as server, aiohttp.ClientSession() as session:
        headers = {f'X-{i}': '1' for i in range(12)}
        async with session.get(server.url + '/', headers=headers) as response:
            assert response.status == 431
        async with session.get(server.url + '/?' + 'a' * 60) as response:
            assert response.status == 414
        async with session.post(server.url + '/', data=b'x' * 17) as response:
            assert response.status == 413

        async def chunks():
            yield b'x' * 10
            yield b'x' * 10

        async with session.post(server.url + '/', data=chunks()) as response:
            assert response.status == 413
        async with session.get(server.url + '/', headers={'X': 'v' * 1100}) as response:
            assert response.status == 431
        async with session.post(server.url + '/', data=b'x' * 16) as response:
            assert (response.status, await response.read()) == (200, b'got 16')


def test_the_limits_table_shows_the_option_defaults():
    from pathlib import Path

    from tremolo.options import Options

    page = (Path(__file__).resolve().parent.parent / 'docs' / 'server-behaviour.md').read_text()
    defaults = Options()
    for name in ('max_request_line', 'max_header_size', 'max_header_count', 'max_body_size'):
        row = re.search(rf'^\| [^|]+ \| `{name}`[^|]* \| (\d+)', page, re.M)
        assert row is not None, name
        assert int(row.group(1)) == getattr(defaults, name), name
