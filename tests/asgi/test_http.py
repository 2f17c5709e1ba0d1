"""The ASGI ``http`` protocol, event by event, against raw ASGI applications (no framework).

In process through the real parser and protocol (`TestClient`), and over real sockets with
aiohttp where the socket matters (zero-copy files, TLS, disconnects). These run on PyPy too.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os

import aiohttp
import pytest

from tremolo.asgi import ASGIProtocolError
from tremolo.testing import TestClient, serve


def client_of(app, **options) -> TestClient:
    """A test client for an application that does not speak the lifespan protocol."""
    options.setdefault('lifespan', 'off')
    return TestClient(app, **options)


def text_app(body: bytes = b'Hello, World!', headers=((b'content-type', b'text/plain'),)):
    async def app(scope, receive, send):
        if scope['type'] != 'http':
            return
        await send({'type': 'http.response.start', 'status': 200, 'headers': list(headers)})
        await send({'type': 'http.response.body', 'body': body})
    return app


async def read_body(receive) -> tuple[bytes, int]:
    """The whole body, and the number of http.request messages it came in."""
    chunks, messages = [], 0
    while True:
        message = await receive()
        assert message['type'] == 'http.request'
        messages += 1
        chunks.append(message['body'])
        if not message['more_body']:
            return b''.join(chunks), messages


# -- the scope ------------------------------------------------------------------------------------

def scope_app(seen: list):
    async def app(scope, receive, send):
        if scope['type'] == 'lifespan':
            await receive()
            scope['state']['started'] = True
            await send({'type': 'lifespan.startup.complete'})
            await receive()
            await send({'type': 'lifespan.shutdown.complete'})
            return
        seen.append(scope)
        scope.get('state', {})['changed'] = True  # a copy: the next request does not see it
        await send({'type': 'http.response.start', 'status': 204})
        await send({'type': 'http.response.body'})
    return app


async def test_the_http_scope_holds_what_the_spec_names():
    seen: list = []
    async with TestClient(scope_app(seen)) as client:
        response = await client.get('/caf%C3%A9/a%2Fb?x=1&y=%20', headers={'X-Thing': 'A'})
        await client.post('/post', body=b'x')
    assert response.status == 204
    scope, second = seen
    assert scope['type'] == 'http'
    assert scope['asgi'] == {'version': '3.0', 'spec_version': '2.5'}
    assert scope['http_version'] == '1.1'
    assert scope['method'] == 'GET' and second['method'] == 'POST'
    assert scope['scheme'] == 'http'
    assert scope['path'] == '/café/a/b'
    assert scope['raw_path'] == b'/caf%C3%A9/a%2Fb'
    assert scope['query_string'] == b'x=1&y=%20'
    assert scope['root_path'] == ''
    assert (b'x-thing', b'A') in scope['headers']
    assert (b'host', b'testserver') in scope['headers']
    assert all(name == name.lower() for name, _ in scope['headers'])
    assert scope['client'] == ('127.0.0.1', 40000)
    assert scope['server'] == ('127.0.0.1', 8000)
    assert set(scope['extensions']) == {
        'http.response.pathsend', 'http.response.trailers', 'http.response.early_hint'}
    assert scope['state'] == {'started': True, 'changed': True}
    assert second['state'] == {'started': True, 'changed': True}
    assert second['state'] is not scope['state']


async def test_root_path_is_given_and_prefixed_to_the_path():
    seen: list = []
    async with client_of(scope_app(seen), root_path='/api') as client:
        await client.get('/users/1?a=b')
    assert seen[0]['root_path'] == '/api'
    assert seen[0]['path'] == '/api/users/1'
    assert seen[0]['raw_path'] == b'/api/users/1'
    assert seen[0]['query_string'] == b'a=b'


def test_a_bad_root_path_is_refused_naming_the_option():
    from tremolo import Options

    with pytest.raises(ValueError, match="'root_path'"):
        Options(root_path='api/')


async def test_client_and_scheme_come_from_trusted_proxies():
    seen: list = []
    async with client_of(scope_app(seen), trusted_proxies=['127.0.0.1']) as client:
        await client.get('/', headers={'X-Forwarded-For': '203.0.113.9',
                                        'X-Forwarded-Proto': 'https'})
    assert seen[0]['client'] == ('203.0.113.9', 0)
    assert seen[0]['scheme'] == 'https'


async def test_http_1_0_is_told():
    seen: list = []
    async with client_of(scope_app(seen)) as client:
        output = await client.raw(b'GET / HTTP/1.0\r\n\r\n')
    assert output.startswith(b'HTTP/1.1 204 No Content\r\n')
    assert seen[0]['http_version'] == '1.0'


# -- the request body -----------------------------------------------------------------------------

def echo_app(log: list):
    async def app(scope, receive, send):
        if scope['type'] != 'http':
            return
        body, messages = await read_body(receive)
        log.append(messages)
        digest = hashlib.sha256(body).hexdigest().encode()
        await send({'type': 'http.response.start', 'status': 200,
                    'headers': [(b'content-type', b'text/plain')]})
        await send({'type': 'http.response.body', 'body': b'%d %s' % (len(body), digest)})
    return app


async def test_a_request_without_body_is_one_empty_message():
    log: list = []
    async with client_of(echo_app(log)) as client:
        response = await client.get('/')
    assert response.body.startswith(b'0 ')
    assert log == [1]


async def test_a_big_body_is_streamed_in_pieces_with_backpressure():
    body = os.urandom(3 * 1024 * 1024)
    log: list = []
    async with client_of(echo_app(log), body_buffer_size=64 * 1024,
                          max_body_size=8 * 1024 * 1024) as client:
        connection = client.connect()
        connection.send(b'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n' % len(body))
        for start in range(0, len(body), 256 * 1024):
            connection.send(body[start:start + 256 * 1024])
        # The application has not read yet: reading paused, the rest waits in the "kernel".
        assert not connection.transport.reading
        response = await connection.read_response()
    assert response.body == b'%d %s' % (len(body), hashlib.sha256(body).hexdigest().encode())
    assert log[0] > 1


async def test_the_pieces_arrived_while_the_app_was_busy_come_in_one_message():
    pieces: list[bytes] = []
    go = asyncio.Event()

    async def app(scope, receive, send):
        await go.wait()  # busy while the body arrives
        more = True
        while more:
            message = await receive()
            pieces.append(message['body'])
            more = message.get('more_body', False)
        await send({'type': 'http.response.start', 'status': 200, 'headers': []})
        await send({'type': 'http.response.body', 'body': b'%d' % len(pieces)})

    async with client_of(app) as client:
        connection = client.connect()
        connection.send(b'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\n')
        await asyncio.sleep(0.01)
        for piece in (b'abc', b'def'):
            connection.send(piece)
            await asyncio.sleep(0.01)
        go.set()
        await asyncio.sleep(0.01)
        connection.send(b'ghi')  # after the app has taken what had arrived
        response = await connection.read_response()
    assert response.status == 200
    assert pieces == [b'abcdef', b'ghi', b''] or pieces == [b'abcdef', b'ghi'], pieces


async def test_a_chunked_body_ends_with_an_empty_last_message():
    log: list = []
    async with client_of(echo_app(log)) as client:
        response = await client.post('/', body=b'abc', chunked=True)
    assert response.body.startswith(b'3 ')


async def test_a_body_above_max_body_size_is_refused_413_and_the_app_sees_a_disconnect():
    seen: list = []

    async def app(scope, receive, send):
        message = await receive()
        seen.append(message)
        with pytest.raises(OSError):
            await send({'type': 'http.response.start', 'status': 200})

    async with client_of(app, max_body_size=10) as client:
        response = await client.post('/', body=b'x' * 100)
    assert response.status == 413
    assert seen == [{'type': 'http.disconnect'}]


async def test_100_continue_is_sent_only_when_the_app_reads_the_body():
    log: list = []
    async with client_of(echo_app(log)) as client:
        connection = client.connect()
        connection.send(b'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n'
                        b'Expect: 100-continue\r\n\r\n')
        assert await connection.receive() == b'HTTP/1.1 100 Continue\r\n\r\n'
        connection.send(b'abc')
        response = await connection.read_response()
        assert response.body.startswith(b'3 ')

    async with client_of(text_app()) as client:
        connection = client.connect()
        connection.send(b'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n'
                        b'Expect: 100-continue\r\n\r\n')
        response = await connection.read_response()
        assert response.interim == [] and response.status == 200
        assert response.header('connection') == 'close'  # the body was never read


async def test_receive_after_the_body_waits_for_the_end_of_the_response():
    events: list = []

    async def app(scope, receive, send):
        await receive()
        waiting = asyncio.ensure_future(receive())
        await asyncio.sleep(0.05)
        events.append(waiting.done())
        await send({'type': 'http.response.start', 'status': 200})
        await send({'type': 'http.response.body', 'body': b'ok'})
        events.append(await waiting)

    async with client_of(app) as client:
        assert (await client.get('/')).body == b'ok'
    assert events == [False, {'type': 'http.disconnect'}]


async def test_http_disconnect_comes_as_soon_as_the_client_goes():
    events: list = []
    gone = asyncio.Event()

    async def app(scope, receive, send):
        await receive()
        events.append(await receive())
        gone.set()
        try:
            await send({'type': 'http.response.start', 'status': 200})
            await send({'type': 'http.response.body', 'body': b'late'})
        except OSError as exc:
            events.append(type(exc).__name__)

    async with client_of(app) as client:
        connection = client.connect()
        connection.send(b'GET / HTTP/1.1\r\nHost: t\r\n\r\n')
        await asyncio.sleep(0.05)
        await connection.close()
        await asyncio.wait_for(gone.wait(), 5)
        await asyncio.sleep(0.01)
    assert events == [{'type': 'http.disconnect'}, 'ClientDisconnected']


# -- the response ---------------------------------------------------------------------------------

async def test_a_whole_body_gets_its_content_length_and_no_content_type_unless_given():
    async with client_of(text_app(b'abc', headers=())) as client:
        response = await client.get('/')
    assert response.body == b'abc'
    assert response.header('content-length') == '3'
    assert response.header('content-type') is None
    assert response.header('transfer-encoding') is None


def streaming_app(headers=(), pieces=(b'one ', b'two ', b'three')):
    async def app(scope, receive, send):
        await send({'type': 'http.response.start', 'status': 200, 'headers': list(headers)})
        for piece in pieces:
            await send({'type': 'http.response.body', 'body': piece, 'more_body': True})
        await send({'type': 'http.response.body', 'body': b''})
    return app


async def test_a_streamed_body_without_length_is_chunked():
    async with client_of(streaming_app()) as client:
        response = await client.get('/')
        assert response.body == b'one two three'
        assert response.header('transfer-encoding') == 'chunked'
        assert response.chunks == [b'one ', b'two ', b'three']
        output = await client.raw(b'GET / HTTP/1.0\r\n\r\n')
    # HTTP/1.0 has no chunked coding: closing the connection ends the body.
    assert output.endswith(b'\r\n\r\none two three')
    assert b'Connection: close' in output


async def test_a_streamed_body_keeps_the_content_length_the_app_gives():
    headers = [(b'content-length', b'13'), (b'transfer-encoding', b'chunked')]
    async with client_of(streaming_app(headers)) as client:
        response = await client.get('/')
    assert response.body == b'one two three'
    assert response.header('content-length') == '13'
    assert response.header('transfer-encoding') is None


async def test_head_sends_the_head_only_with_the_length():
    async with client_of(text_app(b'Hello')) as client:
        response = await client.head('/')
        assert response.body == b'' and response.header('content-length') == '5'
        streamed = await client.head('/')
    assert streamed.status == 200

    async def declared(scope, receive, send):
        await send({'type': 'http.response.start', 'status': 200,
                    'headers': [(b'content-length', b'1000')]})
        await send({'type': 'http.response.body', 'body': b''})

    async with client_of(declared) as client:
        response = await client.head('/')
        assert response.header('content-length') == '1000' and response.body == b''
        again = await client.head('/')  # the connection was not cut
        assert again.status == 200


async def test_connection_close_from_the_app_closes_after_the_response():
    async with client_of(text_app(b'bye', headers=[(b'connection', b'close')])) as client:
        connection = client.connect()
        response = await connection.request('GET', '/')
        assert response.header('connection') == 'close'
        await asyncio.sleep(0.01)
        assert connection.closed


async def test_status_and_repeated_headers_are_sent_as_given():
    headers = [(b'set-cookie', b'a=1'), (b'Set-Cookie', b'b=2'), (b'x-custom', b'v')]

    async def app(scope, receive, send):
        await send({'type': 'http.response.start', 'status': 418, 'headers': headers})
        await send({'type': 'http.response.body', 'body': b'teapot'})

    async with client_of(app) as client:
        response = await client.get('/')
    assert response.status == 418
    assert [value for name, value in response.header_list if name.lower() == 'set-cookie'] == [
        'a=1', 'b=2']
    assert response.header('x-custom') == 'v'


async def test_pathsend_sends_the_file(tmp_path):
    data = os.urandom(300_000)
    path = tmp_path / 'data.bin'
    path.write_bytes(data)

    async def app(scope, receive, send):
        assert 'http.response.pathsend' in scope['extensions']
        await send({'type': 'http.response.start', 'status': 200,
                    'headers': [(b'content-type', b'application/octet-stream')]})
        await send({'type': 'http.response.pathsend', 'path': str(path)})

    async with client_of(app) as client:
        response = await client.get('/')
        assert response.body == data
        assert response.header('content-length') == str(len(data))
    # Over a real socket, the file goes with loop.sendfile.
    async with serve(app, lifespan='off') as server, aiohttp.ClientSession() as session:
        async with session.get(server.url + '/') as answer:
            assert await answer.read() == data


async def test_trailers_follow_a_chunked_body():
    async def app(scope, receive, send):
        assert 'http.response.trailers' in scope['extensions']
        await send({'type': 'http.response.start', 'status': 200, 'trailers': True,
                    'headers': [(b'content-length', b'5'), (b'trailer', b'x-checksum')]})
        await send({'type': 'http.response.body', 'body': b'hello'})
        await send({'type': 'http.response.trailers', 'headers': [(b'x-checksum', b'abc')],
                    'more_trailers': True})
        await send({'type': 'http.response.trailers', 'headers': [(b'x-more', b'1')]})

    async with client_of(app) as client:
        response = await client.get('/')
    assert response.body == b'hello'
    assert response.header('transfer-encoding') == 'chunked'
    assert response.trailers == {b'x-checksum': b'abc', b'x-more': b'1'}


async def test_early_hints_send_103_before_the_response():
    async def app(scope, receive, send):
        assert 'http.response.early_hint' in scope['extensions']
        await send({'type': 'http.response.early_hint',
                    'links': [b'</style.css>; rel=preload; as=style',
                              b'</app.js>; rel=preload; as=script']})
        await send({'type': 'http.response.start', 'status': 200})
        await send({'type': 'http.response.body', 'body': b'page'})

    async with client_of(app) as client:
        output = await client.raw(b'GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n')
        response = await client.get('/')
        old = await client.raw(b'GET / HTTP/1.0\r\n\r\n')
    assert output.startswith(b'HTTP/1.1 103 Early Hints\r\n'
                             b'Link: </style.css>; rel=preload; as=style\r\n'
                             b'Link: </app.js>; rel=preload; as=script\r\n\r\n'
                             b'HTTP/1.1 200 OK\r\n')
    assert response.interim == [103] and response.body == b'page'
    assert old.startswith(b'HTTP/1.1 200 OK\r\n')  # no 1xx to an HTTP/1.0 client


async def test_the_tls_extension_on_tls_connections(server_context, client_context):
    seen: list = []
    async with serve(scope_app(seen), ssl=server_context) as server:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + '/', ssl=client_context) as response:
                assert response.status == 204
    scope = seen[0]
    assert scope['scheme'] == 'https'
    tls = scope['extensions']['tls']
    assert tls['tls_version'] in (0x0303, 0x0304)
    assert tls['client_cert_chain'] == [] and tls['client_cert_name'] is None
    async with client_of(scope_app(seen)) as client:
        await client.get('/')
    assert 'tls' not in seen[-1]['extensions']


# -- send after the client left ---------------------------------------------------------------

async def test_send_after_the_client_left_raises_oserror_over_sockets():
    outcome: asyncio.Future = asyncio.get_running_loop().create_future()

    async def app(scope, receive, send):
        if scope['type'] != 'http':
            return
        await send({'type': 'http.response.start', 'status': 200})
        try:
            for _ in range(10_000):
                await send({'type': 'http.response.body', 'body': b'x' * 65536,
                            'more_body': True})
                await asyncio.sleep(0.001)
        except OSError as exc:
            outcome.set_result(exc)
            raise
        outcome.set_result(None)

    async with serve(app, lifespan='off') as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(b'GET / HTTP/1.1\r\nHost: t\r\n\r\n')
        await reader.read(100_000)
        writer.close()
        error = await asyncio.wait_for(outcome, 10)
    assert isinstance(error, OSError)


# -- errors ---------------------------------------------------------------------------------------

async def test_an_error_before_the_response_is_a_500_without_internals(caplog):
    async def app(scope, receive, send):
        raise ValueError('secret internals')

    async with client_of(app) as client:
        response = await client.get('/')
        again = await client.get('/')  # the worker goes on
    assert response.status == 500 and response.body == b'Internal Server Error'
    assert again.status == 500
    assert 'secret' not in response.text
    assert 'error in the ASGI application' in caplog.text and 'secret internals' in caplog.text


async def test_debug_shows_the_traceback():
    async def app(scope, receive, send):
        raise ValueError('shown in debug')

    async with client_of(app, debug=True) as client:
        response = await client.get('/')
    assert response.status == 500 and 'ValueError: shown in debug' in response.text


async def test_an_error_after_the_body_started_cuts_the_connection():
    async def app(scope, receive, send):
        if scope['path'] == '/ok':
            await send({'type': 'http.response.start', 'status': 200})
            await send({'type': 'http.response.body', 'body': b'fine'})
            return
        await send({'type': 'http.response.start', 'status': 200})
        await send({'type': 'http.response.body', 'body': b'partial', 'more_body': True})
        raise RuntimeError('mid-stream')

    async with client_of(app) as client:
        connection = client.connect()
        connection.send(b'GET / HTTP/1.1\r\nHost: t\r\n\r\n')
        output = await connection.read_all()
        assert output.endswith(b'partial\r\n')  # no last chunk: the client sees it fail
        assert connection.transport.aborted
        assert (await client.get('/ok')).body == b'fine'


@pytest.mark.parametrize(('messages', 'logged'), [
    ([{'type': 'http.response.body', 'body': b'x'}], 'before http.response.start'),
    ([{'type': 'http.response.start', 'status': 200},
      {'type': 'http.response.body', 'body': 'text'}], 'an ASGI body is bytes, not str'),
    ([{'type': 'http.response.start', 'status': 200},
      {'type': 'http.response.start', 'status': 200}], 'sent twice'),
    ([], 'returned without sending http.response.start'),
    ([{'type': 'http.response.start', 'status': 200}], 'before its response'),
    ([{'type': 'http.response.start', 'status': 99}], 'needs a status'),
    ([{'type': 'http.response.start', 'status': 200, 'headers': [(b'x', b'a\r\nb')]}],
     'invalid characters'),
    ([{'type': 'http.response.start', 'status': 200, 'headers': [(b'bad name', b'v')]}],
     'invalid header name'),
    ([{'type': 'http.response.start', 'status': 200, 'headers': [('x', 'v')]}],
     'pair of bytes'),
    ([{'type': 'http.response.start', 'status': 200, 'headers': [(b'content-length', b'3')]},
      {'type': 'http.response.body', 'body': b'toolong'}], 'content-length header says 3'),
    ([{'type': 'http.response.trailers', 'headers': []}], 'trailers'),
    ([{'type': 'websocket.accept'}], "unexpected ASGI message 'websocket.accept'"),
    (['not a dict'], 'a dict with a "type"'),
])
async def test_a_misbehaving_app_gets_a_clear_log_and_the_client_a_clean_500(
        caplog, messages, logged):
    async def app(scope, receive, send):
        for message in messages:
            await send(message)

    caplog.set_level(logging.ERROR, 'tremolo')
    async with client_of(app) as client:
        response = await client.get('/')
        assert response.status == 500 and response.body == b'Internal Server Error'
        assert (await client.get('/')).status == 500  # the worker keeps serving
    assert logged in caplog.text


async def test_a_body_after_the_response_completed_is_refused():
    errors: list = []

    async def app(scope, receive, send):
        await send({'type': 'http.response.start', 'status': 200})
        await send({'type': 'http.response.body', 'body': b'done'})
        try:
            await send({'type': 'http.response.body', 'body': b'more'})
        except ASGIProtocolError as exc:
            errors.append(str(exc))

    async with client_of(app) as client:
        assert (await client.get('/')).body == b'done'
    assert errors == ['http.response.body sent after the response was complete']


async def test_a_response_streamed_short_of_its_length_is_cut():
    async def app(scope, receive, send):
        await send({'type': 'http.response.start', 'status': 200,
                    'headers': [(b'content-length', b'10')]})
        await send({'type': 'http.response.body', 'body': b'abc', 'more_body': True})
        await send({'type': 'http.response.body', 'body': b''})

    async with client_of(app) as client:
        connection = client.connect()
        connection.send(b'GET / HTTP/1.1\r\nHost: t\r\n\r\n')
        output = await connection.read_all()
    assert output.endswith(b'\r\n\r\nabc') and connection.transport.aborted


async def test_the_apps_date_and_server_replace_the_servers():
    headers = [(b'server', b'my-app/1.0'), (b'date', b'Thu, 01 Jan 2026 00:00:00 GMT')]
    async with client_of(text_app(b'x', headers=headers)) as client:
        response = await client.get('/')
    assert [value for name, value in response.header_list if name.lower() == 'server'] == [
        'my-app/1.0']
    assert [value for name, value in response.header_list if name.lower() == 'date'] == [
        'Thu, 01 Jan 2026 00:00:00 GMT']
    async with client_of(text_app(b'x', headers=[(b'server', b'only-server')])) as client:
        partial = await client.get('/')
    assert partial.header('server') == 'only-server' and partial.header('date') is not None


# -- the connection: PROXY protocol, TLS client certificates --------------------------------------

async def test_the_proxy_protocol_names_the_client_and_the_scheme():
    seen: list = []
    header = b'PROXY TCP4 203.0.113.7 198.51.100.2 4711 443\r\n'
    async with serve(scope_app(seen), proxy_protocol=True) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(header + b'GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n')
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    assert answer.startswith(b'HTTP/1.1 204 ')
    assert seen[0]['client'] == ('203.0.113.7', 4711)
    assert seen[0]['server'] == ('198.51.100.2', 443)


async def test_the_tls_extension_names_the_client_certificate(ca, certificate, client_context):
    import ssl

    seen: list = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_OPTIONAL
    client_certificate = ca.issue_cert('client.example', organization_name='Tremolo Tests')
    client_certificate.configure_cert(client_context)
    async with serve(scope_app(seen), ssl=context) as server:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + '/', ssl=client_context) as response:
                assert response.status == 204
    tls = seen[0]['extensions']['tls']
    assert len(tls['client_cert_chain']) == 1
    assert tls['client_cert_chain'][0].startswith('-----BEGIN CERTIFICATE-----')
    assert 'O=Tremolo Tests' in tls['client_cert_name']


def test_distinguished_names_are_written_as_rfc_4514_says():
    from tremolo.asgi.scope import distinguished_name

    subject = ((('countryName', 'FR'),), (('organizationName', 'Acme, Inc.'),),
               (('commonName', ' lead#'), ('userId', 'x+y')))
    assert distinguished_name({'subject': subject}) == r'CN=\ lead#+UID=x\+y,O=Acme\, Inc.,C=FR'
    assert distinguished_name({}) is None


async def test_several_receivers_all_hear_the_disconnect():
    heard: list = []
    gone = asyncio.Event()

    async def app(scope, receive, send):
        await receive()

        async def listen(name):
            message = await receive()
            heard.append((name, message['type']))

        cancelled = asyncio.ensure_future(listen('cancelled'))
        listeners = [asyncio.ensure_future(listen(name)) for name in ('a', 'b')]
        await asyncio.sleep(0.01)
        cancelled.cancel()
        await asyncio.gather(*listeners)
        gone.set()

    async with client_of(app) as client:
        connection = client.connect()
        connection.send(b'GET / HTTP/1.1\r\nHost: t\r\n\r\n')
        await asyncio.sleep(0.05)
        await connection.close()
        await asyncio.wait_for(gone.wait(), 5)
    assert sorted(heard) == [('a', 'http.disconnect'), ('b', 'http.disconnect')]


# -- work after the response (background tasks) ---------------------------------------------------

def background_app(log: list, seconds: float = 0.5, fail: bool = False):
    async def app(scope, receive, send):
        if scope['type'] != 'http':
            return
        await send({'type': 'http.response.start', 'status': 200})
        await send({'type': 'http.response.body', 'body': scope['path'].encode()})
        if scope['path'] == '/background':
            await asyncio.sleep(seconds)  # the work after the response (Starlette's tasks)
            if fail:
                raise RuntimeError('the background task failed')
            log.append('background done')
    return app


async def test_the_next_request_does_not_wait_for_the_work_after_a_response():
    log: list = []
    loop = asyncio.get_running_loop()
    async with client_of(background_app(log)) as client:
        connection = client.connect()
        assert (await connection.request('GET', '/background')).body == b'/background'
        started = loop.time()
        assert (await connection.request('GET', '/next')).body == b'/next'
        assert loop.time() - started < 0.3 and log == []  # answered while the work goes on
        # Pipelined behind a response whose handler carries on: answered all the same.
        connection.send(b'GET /background HTTP/1.1\r\nHost: t\r\n\r\n'
                        b'GET /after HTTP/1.1\r\nHost: t\r\n\r\n')
        assert (await connection.read_response()).body == b'/background'
        assert (await connection.read_response()).body == b'/after'
        assert log == []
        for _ in range(100):  # each background task ends 0.5 s after its response
            if len(log) == 2:
                break
            await asyncio.sleep(0.05)
    assert log == ['background done', 'background done']


async def test_an_error_after_the_response_is_logged_and_the_connection_goes_on(caplog):
    async with client_of(background_app([], seconds=0.01, fail=True)) as client:
        connection = client.connect()
        assert (await connection.request('GET', '/background')).status == 200
        await asyncio.sleep(0.05)
        assert (await connection.request('GET', '/next')).body == b'/next'
    assert 'error in the ASGI application' in caplog.text
    assert 'the background task failed' in caplog.text


async def test_the_graceful_stop_waits_for_the_work_after_a_response():
    log: list = []
    async with serve(background_app(log, seconds=0.3), lifespan='off') as server:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + '/background') as response:
                assert await response.text() == '/background'
    assert log == ['background done']  # serve() stopped the worker: it waited
    log.clear()
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with serve(background_app(log, seconds=30), lifespan='off',
                     graceful_shutdown_timeout=0.2) as server:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + '/background') as response:
                assert await response.text() == '/background'
    assert log == [] and loop.time() - started < 5  # cancelled once the timeout passed


# -- the speed limits of the server options -----------------------------------------------------

async def test_download_and_upload_rates_limit_an_asgi_application():
    log: list = []
    loop = asyncio.get_running_loop()
    async with client_of(text_app(b'x' * 60_000), download_rate=100_000) as client:
        started = loop.time()
        response = await client.get('/')
        elapsed = loop.time() - started
    assert response.body == b'x' * 60_000
    assert elapsed > 0.3  # generous: 60 kB at 100 kB/s after the first burst
    async with client_of(echo_app(log), upload_rate=100_000) as client:
        started = loop.time()
        response = await client.post('/', body=b'y' * 60_000)
        elapsed = loop.time() - started
    assert response.body.startswith(b'60000 ')
    assert elapsed > 0.3
