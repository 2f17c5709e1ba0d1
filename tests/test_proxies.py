"""Trusted proxies and PROXY protocol listeners: in process with the test client, and over
real sockets with aiohttp and raw streams.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import signal
import ssl
import struct
import time

import aiohttp
import pytest

from tests.apps.harness import REPO_ROOT, Processes, needs_uvloop
from tremolo import Options, Tremolo
from tremolo.cli import build_parser, options_from_args
from tremolo.http.proxy_protocol import PP2_TYPE_SSL, V2_SIGNATURE
from tremolo.testing import TestClient, serve


@pytest.fixture
def app():
    app = Tremolo()
    app.connections = []  # the connections seen by on_connect, in order

    @app.on_connect
    async def seen(connection):
        app.connections.append(
            (list(connection.client), list(connection.peer), connection.scheme))

    @app.route('/who')
    async def who(request):
        return {
            'client': request.client, 'scheme': request.scheme, 'host': request.host,
            'url': request.url, 'connection': request.connection.client,
            'peer': request.connection.peer, 'trusted': request.connection.trusted,
        }

    return app


async def who(client: TestClient, headers: dict[str, str], **connect) -> dict:
    connection = client.connect(**connect)
    try:
        response = await connection.request('GET', '/who', headers=headers)
        assert response.status == 200, response.body
        return json.loads(response.body)
    finally:
        await connection.close()


# -- trusted proxies, in process ------------------------------------------------------------------


async def test_nothing_is_trusted_by_default(app):
    async with TestClient(app) as client:
        seen = await who(client, {'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Proto': 'https',
                                  'Forwarded': 'for=198.51.100.1', 'Host': 'example.com'})
    assert seen['client'] == ['127.0.0.1', 40000]
    assert seen['scheme'] == 'http' and seen['host'] == 'example.com'
    assert seen['trusted'] is False


async def test_trusted_proxy_names_the_client(app):
    async with TestClient(app, trusted_proxies=['127.0.0.1']) as client:
        seen = await who(client, {
            'X-Forwarded-For': '10.0.0.9, 203.0.113.7', 'X-Forwarded-Proto': 'https',
            'X-Forwarded-Host': 'example.com', 'Host': 'internal',
        })
    assert seen['client'] == ['203.0.113.7', 0]
    assert seen['scheme'] == 'https'
    assert seen['url'] == 'https://example.com/who'
    assert seen['connection'] == seen['peer'] == ['127.0.0.1', 40000]
    assert seen['trusted'] is True


async def test_forwarded_field(app):
    async with TestClient(app, trusted_proxies='127.0.0.1, 10.0.0.0/8',
                          forwarded_headers='forwarded') as client:
        seen = await who(client, {
            'Forwarded': 'for=192.0.2.1, for="[2001:db8::17]:4711";proto=https;host=a.example,'
                         ' for=10.1.1.1;proto=http',
            'X-Forwarded-For': '198.51.100.2',
        })
    assert seen['client'] == ['2001:db8::17', 4711]
    assert seen['url'] == 'https://a.example/who'


async def test_an_untrusted_peer_cannot_forward(app):
    async with TestClient(app, trusted_proxies=['10.0.0.0/8']) as client:
        seen = await who(client, {'X-Forwarded-For': '203.0.113.7'}, peer=('198.51.100.9', 5))
    assert seen['client'] == ['198.51.100.9', 5]
    assert seen['trusted'] is False


async def test_malformed_fields_keep_the_peer(app, caplog):
    caplog.set_level(logging.DEBUG, logger='tremolo')
    async with TestClient(app, trusted_proxies=['*']) as client:
        seen = await who(client, {'X-Forwarded-For': '203.0.113.7, <script>'})
        again = await who(client, {'Forwarded': 'for="[::1'})
    assert seen['client'] == again['client'] == ['127.0.0.1', 40000]
    assert seen['scheme'] == 'http'
    assert any('ignored the forwarding fields' in record.getMessage()
               for record in caplog.records)


async def test_access_log_shows_the_forwarded_client(app, caplog):
    caplog.set_level(logging.INFO, logger='tremolo.access')
    async with TestClient(app, trusted_proxies=['127.0.0.1'], access_log=True) as client:
        await who(client, {'X-Forwarded-For': '203.0.113.7'})
    lines = [r.getMessage() for r in caplog.records if r.name == 'tremolo.access']
    assert lines and lines[-1].startswith('203.0.113.7:0 - "GET /who HTTP/1.1" 200')


def test_trusted_proxies_option():
    assert Options(trusted_proxies='127.0.0.1, ::1').trusted_proxies == ['127.0.0.1', '::1']
    assert Options(trusted_proxies=['10.0.0.0/8,unix', '*']).trusted_proxies == [
        '10.0.0.0/8', 'unix', '*']
    with pytest.raises(ValueError, match='trusted_proxies'):
        Options(trusted_proxies=['proxy.example'])
    with pytest.raises(ValueError, match='forwarded_headers'):
        Options(forwarded_headers='all')
    with pytest.raises(ValueError, match='proxy_protocol cannot be combined with ssl'):
        Options(proxy_protocol=True, ssl=ssl.create_default_context(ssl.Purpose.CLIENT_AUTH))


def test_command_line_flags():
    args = build_parser().parse_args([
        'app:app', '--trusted-proxies', '127.0.0.1,10.0.0.0/8', '--trusted-proxies', 'unix',
        '--forwarded-headers', 'forwarded', '--proxy-protocol',
    ])
    options = Options.from_kwargs(**options_from_args(args))
    assert options.trusted_proxies == ['127.0.0.1', '10.0.0.0/8', 'unix']
    assert options.forwarded_headers == 'forwarded'
    assert options.proxy_protocol is True


# -- trusted proxies, over real sockets -----------------------------------------------------------


async def test_trusted_proxy_over_sockets(app):
    async with serve(app, trusted_proxies=['127.0.0.1']) as server:
        async with aiohttp.ClientSession() as session:
            headers = {'X-Forwarded-For': '1.2.3.4, 203.0.113.7', 'X-Forwarded-Proto': 'https'}
            async with session.get(server.url + '/who', headers=headers) as response:
                seen = await response.json()
    assert seen['client'] == ['203.0.113.7', 0]
    assert seen['scheme'] == 'https'
    assert seen['peer'][0] == '127.0.0.1'


# -- PROXY protocol over real sockets -------------------------------------------------------------


def v1(source: str, port: int, destination: str = '127.0.0.1', dport: int = 80) -> bytes:
    family = 'TCP6' if ':' in source else 'TCP4'
    return f'PROXY {family} {source} {destination} {port} {dport}\r\n'.encode()


def v2(source: str, port: int, *, local: bool = False, tls: bool = False) -> bytes:
    ip = ipaddress.ip_address(source)
    family = 0x11 if ip.version == 4 else 0x21
    destination = ipaddress.ip_address('::1' if ip.version == 6 else '127.0.0.1')
    body = ip.packed + destination.packed + struct.pack('!HH', port, 8000)
    if tls:
        value = b'\x01' + b'\0' * 4
        body += bytes([PP2_TYPE_SSL]) + struct.pack('!H', len(value)) + value
    command = 0x20 if local else 0x21
    return V2_SIGNATURE + bytes([command, family]) + struct.pack('!H', len(body)) + body


GET_WHO = b'GET /who HTTP/1.1\r\nHost: example.com\r\n\r\n'


async def read_response(reader: asyncio.StreamReader) -> dict:
    head = await asyncio.wait_for(reader.readuntil(b'\r\n\r\n'), 10)
    assert head.startswith(b'HTTP/1.1 200 '), head
    length = next(int(line.split(b':')[1]) for line in head.split(b'\r\n')
                  if line.lower().startswith(b'content-length:'))
    return json.loads(await asyncio.wait_for(reader.readexactly(length), 10))


async def open_raw(server):
    return await asyncio.open_connection(server.host, server.port)


async def closed_without_answer(reader: asyncio.StreamReader, timeout: float = 10) -> bool:
    try:
        data = await asyncio.wait_for(reader.read(), timeout)
    except ConnectionResetError:
        return True
    return data == b''


@pytest.mark.parametrize('header, client, scheme', [
    (v1('203.0.113.7', 4711), ['203.0.113.7', 4711], 'http'),
    (v1('2001:db8::7', 1234, '::1'), ['2001:db8::7', 1234], 'http'),
    (v2('203.0.113.8', 5000), ['203.0.113.8', 5000], 'http'),
    (v2('2001:db8::8', 5001, tls=True), ['2001:db8::8', 5001], 'https'),
], ids=['v1-tcp4', 'v1-tcp6', 'v2-tcp4', 'v2-tcp6-tls'])
async def test_proxy_protocol_names_the_client(app, header, client, scheme):
    async with serve(app, proxy_protocol=True) as server:
        reader, writer = await open_raw(server)
        writer.write(header + GET_WHO)  # the header and the request in one segment
        first = await read_response(reader)
        writer.write(GET_WHO)  # keep-alive: the same client for the next request
        second = await read_response(reader)
        writer.close()
    assert first == second
    assert first['client'] == first['connection'] == client
    assert first['scheme'] == scheme
    assert first['peer'][0] == '127.0.0.1'
    assert app.connections == [(client, first['peer'], scheme)]


async def test_proxy_header_sent_byte_by_byte(app):
    async with serve(app, proxy_protocol=True) as server:
        reader, writer = await open_raw(server)
        for byte in v2('198.51.100.3', 999):
            writer.write(bytes([byte]))
            await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(GET_WHO)
        seen = await read_response(reader)
        writer.close()
    assert seen['client'] == ['198.51.100.3', 999]


async def test_local_command_keeps_the_real_peer(app):
    async with serve(app, proxy_protocol=True) as server:
        reader, writer = await open_raw(server)
        writer.write(v2('203.0.113.9', 1, local=True) + GET_WHO)
        seen = await read_response(reader)
        writer.close()
    assert seen['client'] == seen['peer']
    assert seen['client'][0] == '127.0.0.1'


async def test_forwarded_fields_apply_on_top_of_proxy_protocol(app):
    async with serve(app, proxy_protocol=True, trusted_proxies=['10.0.0.0/8']) as server:
        reader, writer = await open_raw(server)
        writer.write(v1('10.0.0.5', 80) + b'GET /who HTTP/1.1\r\nHost: x\r\n'
                     b'X-Forwarded-For: 203.0.113.10\r\n\r\n')
        trusted = await read_response(reader)
        writer.close()
        reader, writer = await open_raw(server)
        writer.write(v1('198.51.100.10', 80) + b'GET /who HTTP/1.1\r\nHost: x\r\n'
                     b'X-Forwarded-For: 203.0.113.10\r\n\r\n')
        untrusted = await read_response(reader)
        writer.close()
    assert trusted['client'] == ['203.0.113.10', 0]
    assert trusted['connection'] == ['10.0.0.5', 80]
    assert untrusted['client'] == ['198.51.100.10', 80]


@pytest.mark.parametrize('data', [
    GET_WHO,
    b'PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n' + GET_WHO,
    b'PROXY ' + b'x' * 300,
    V2_SIGNATURE + b'\x21\x11\xff\xff',
], ids=['plain-http', 'bad-v1', 'long-v1', 'huge-v2'])
async def test_bad_headers_close_without_an_answer(app, data, caplog):
    caplog.set_level(logging.DEBUG, logger='tremolo')
    async with serve(app, proxy_protocol=True) as server:
        reader, writer = await open_raw(server)
        writer.write(data)
        assert await closed_without_answer(reader)
        writer.close()
        # The worker goes on serving.
        reader, writer = await open_raw(server)
        writer.write(v1('203.0.113.1', 1) + GET_WHO)
        assert (await read_response(reader))['client'] == ['203.0.113.1', 1]
        writer.close()
    # Only the valid connection reached HTTP (and the on_connect hooks).
    assert [client for client, _, _ in app.connections] == [['203.0.113.1', 1]]
    assert any(record.getMessage().startswith('closed a connection from')
               for record in caplog.records)


async def test_missing_header_times_out(app):
    async with serve(app, proxy_protocol=True, header_timeout=0.5) as server:
        reader, writer = await open_raw(server)
        started = time.monotonic()
        writer.write(b'PROXY TCP4 ')  # and nothing more
        assert await closed_without_answer(reader)
        elapsed = time.monotonic() - started
        writer.close()
    assert 0.4 < elapsed < 5


@pytest.mark.slow
@needs_uvloop
async def test_proxy_protocol_on_uvloop(tmp_path):
    """The hand-over from the PROXY reader to HTTP (``transport.set_protocol``) on uvloop."""
    with Processes(tmp_path) as procs:
        server = procs.cli('tests.apps.basic:app', '--port', '0', '--loop', 'uvloop',
                           '--proxy-protocol', cwd=REPO_ROOT)
        [(host, port)] = await server.serving()
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(v2('203.0.113.50', 4000) + b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
        head = await asyncio.wait_for(reader.readuntil(b'\r\n\r\n'), 10)
        writer.close()
        assert head.startswith(b'HTTP/1.1 200 ')
        await server.wait_for(r'203\.0\.113\.50:4000 - "GET / HTTP/1\.1" 200')
        server.send(signal.SIGTERM)
        assert await server.wait_exit() == 0
