"""HTTPS: the ``ssl`` option and the ``--ssl-*`` flags, with certificates made by trustme and
aiohttp as the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import signal
import ssl
import time

import aiohttp
import pytest
import trustme

from tests.apps.harness import REPO_ROOT
from tremolo import Tremolo
from tremolo.testing import serve

trustme_serialization = pytest.importorskip('cryptography.hazmat.primitives.serialization')


@pytest.fixture
def app():
    app = Tremolo()
    app.connections = 0

    @app.on_connect
    async def count(connection):
        app.connections += 1

    @app.route('/who')
    async def who(request):
        return {'scheme': request.scheme, 'url': request.url,
                'connection': request.connection.scheme}

    @app.route('/echo', methods=['POST'], max_body_size=8 * 1024 * 1024)
    async def echo(request):
        async for piece in request.stream():
            yield piece

    @app.route('/slow')
    async def slow():
        for i in range(3):
            yield b'piece %d\n' % i
            await asyncio.sleep(0.2)

    return app


async def test_get_over_https(app, server_context, client_context):
    async with serve(app, ssl=server_context) as server:
        assert server.url.startswith('https://')
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + '/who', ssl=client_context) as response:
                assert response.status == 200
                seen = await response.json()
    assert seen == {'scheme': 'https', 'url': f'https://127.0.0.1:{server.port}/who',
                    'connection': 'https'}


async def test_post_body_and_keep_alive(app, server_context, client_context):
    body = bytes(range(256)) * 16 * 1024  # 4 MiB, more than any TLS record or socket buffer
    connector = aiohttp.TCPConnector(limit=1, ssl=client_context)
    async with serve(app, ssl=server_context) as server:
        async with aiohttp.ClientSession(connector=connector) as session:
            for _ in range(3):
                async with session.post(server.url + '/echo', data=io.BytesIO(body)) as response:
                    assert response.status == 200
                    assert await response.read() == body
    assert app.connections == 1  # the three requests shared one TLS connection


async def test_streamed_response_arrives_piece_by_piece(app, server_context, client_context):
    async with serve(app, ssl=server_context) as server:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + '/slow', ssl=client_context) as response:
                arrivals = []
                started = time.monotonic()
                async for piece in response.content.iter_any():
                    arrivals.append((piece, time.monotonic() - started))
    assert b''.join(piece for piece, _ in arrivals) == b'piece 0\npiece 1\npiece 2\n'
    # The first piece came before the handler finished (it sleeps 0.4 s after it).
    assert arrivals[0][0].startswith(b'piece 0') and arrivals[0][1] < 0.35
    assert len(arrivals) >= 2


async def test_silent_client_is_closed_after_the_handshake_timeout(app, server_context,
                                                                  client_context):
    async with serve(app, ssl=server_context, header_timeout=0.5) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        started = time.monotonic()
        try:
            data = await asyncio.wait_for(reader.read(), 10)
        except ConnectionResetError:
            data = b''
        elapsed = time.monotonic() - started
        writer.close()
        assert data == b''
        assert 0.4 < elapsed < 5
        async with aiohttp.ClientSession() as session:  # the worker still serves
            async with session.get(server.url + '/who', ssl=client_context) as response:
                assert response.status == 200


async def test_plain_http_on_a_tls_port_is_closed(app, server_context, client_context, caplog):
    caplog.set_level(logging.DEBUG)
    async with serve(app, ssl=server_context) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(b'GET /who HTTP/1.1\r\nHost: x\r\n\r\n')
        try:
            data = await asyncio.wait_for(reader.read(), 10)
        except ConnectionResetError:
            data = b''
        writer.close()
        assert not data.startswith(b'HTTP/')  # no HTTP answer; at most a TLS alert
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + '/who', ssl=client_context) as response:
                assert (await response.json())['scheme'] == 'https'


async def test_upload_aborted_by_the_client_is_not_a_server_error(app, server_context,
                                                                   client_context, caplog):
    # A client going away mid-upload (close_notify, then the connection closes) is at most a
    # debug line: no error logged for the request, and no asyncio warning about eof_received.
    caplog.set_level(logging.DEBUG)
    ended: asyncio.Queue[str] = asyncio.Queue()

    @app.route('/upload', methods=['POST'], max_body_size=64 * 1024 * 1024)
    async def upload(request):
        try:
            async for _ in request.stream():
                pass
        except BaseException as exc:
            ended.put_nowait(type(exc).__name__)
            raise
        return 'complete'

    async with serve(app, ssl=server_context) as server:
        for _ in range(3):
            reader, writer = await asyncio.open_connection(server.host, server.port,
                                                           ssl=client_context)
            writer.write(b'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n'
                         + b'a' * 100_000)
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()
            assert await asyncio.wait_for(ended.get(), 10) == 'ClientDisconnected'
        deadline = time.monotonic() + 10
        while server.worker.state.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert not server.worker.state.connections
    noisy = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert noisy == []
    assert any('went away' in record.getMessage() for record in caplog.records
               if record.levelno == logging.DEBUG)


# -- the command line ---------------------------------------------------------------------------



def encrypted_key(certificate: trustme.LeafCert, password: bytes) -> bytes:
    serialization = trustme_serialization
    key = serialization.load_pem_private_key(certificate.private_key_pem.bytes(), None)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )


@pytest.mark.parametrize('with_password', [False, True], ids=['plain-key', 'encrypted-key'])
async def test_command_line_serves_https(procs, tmp_path, certificate, client_context,
                                         with_password):
    certfile = tmp_path / 'cert.pem'
    keyfile = tmp_path / 'key.pem'
    certificate.cert_chain_pems[0].write_to_path(str(certfile))
    args = ['tests.apps.basic:app', '--port', '0', '--ssl-certfile', str(certfile),
            '--ssl-keyfile', str(keyfile)]
    if with_password:
        keyfile.write_bytes(encrypted_key(certificate, b'secret'))
        args += ['--ssl-keyfile-password', 'secret']
    else:
        certificate.private_key_pem.write_to_path(str(keyfile))
    server = procs.cli(*args, cwd=REPO_ROOT)
    match = (await server.wait_for(r'serving on https://127\.0\.0\.1:(\d+)'))[0]
    async with aiohttp.ClientSession() as session:
        async with session.get(f'https://127.0.0.1:{match.group(1)}/',
                               ssl=client_context) as response:
            assert response.status == 200
            assert await response.text() == 'Hello from tests.apps.basic'
    server.send(signal.SIGTERM)
    assert await server.wait_exit() == 0


async def test_command_line_wrong_password_is_one_line(procs, tmp_path, certificate):
    certfile = tmp_path / 'cert.pem'
    keyfile = tmp_path / 'key.pem'
    certificate.cert_chain_pems[0].write_to_path(str(certfile))
    keyfile.write_bytes(encrypted_key(certificate, b'secret'))
    server = procs.cli('tests.apps.basic:app', '--port', '0', '--ssl-certfile', str(certfile),
                       '--ssl-keyfile', str(keyfile), '--ssl-keyfile-password', 'wrong',
                       cwd=REPO_ROOT)
    assert await server.wait_exit() != 0
    assert 'error: cannot load the certificate' in server.stderr
    assert 'Traceback' not in server.stderr
