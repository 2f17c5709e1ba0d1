"""The static files extension: serving, redirects, and every way out of the root refused."""

from __future__ import annotations

import asyncio
import logging
import os

import aiohttp
import pytest
from tremolo.extensions.static import StaticFiles

from tremolo import RegistrationError, Tremolo
from tremolo.testing import TestClient, serve


@pytest.fixture
def site(tmp_path):
    """``tmp_path/public`` is served; ``tmp_path/secret.txt`` lies beside it."""
    root = tmp_path / 'public'
    (root / 'css').mkdir(parents=True)
    (root / 'docs').mkdir()
    (root / 'empty-dir').mkdir()
    (root / '.git').mkdir()
    (root / 'index.html').write_text('<h1>home</h1>')
    (root / 'css' / 'site.css').write_text('body {}')
    (root / 'docs' / 'index.html').write_text('<h1>docs</h1>')
    (root / 'app.js').write_text('let a = 1;')
    (root / 'image.png').write_bytes(b'\x89PNG' + bytes(1000))
    (root / '.env').write_text('PASSWORD=1')
    (root / '.git' / 'config').write_text('[core]')
    (root / 'C:').mkdir()
    (root / 'C:' / 'x.txt').write_text('drive')
    (tmp_path / 'secret.txt').write_text('top secret')
    os.symlink(tmp_path / 'secret.txt', root / 'escape.txt')
    os.symlink(tmp_path, root / 'up')
    os.symlink(root / 'css' / 'site.css', root / 'alias.css')  # stays inside
    os.symlink(root / '.env', root / 'visible-env')  # inside, but to a hidden file
    return tmp_path


def make_app(site, **options) -> Tremolo:
    app = Tremolo()
    app.install(StaticFiles(site / 'public', **options))

    @app.route('/')
    async def home():
        return 'app'

    return app


async def test_files_with_types_and_cache_headers(site):
    async with TestClient(make_app(site)) as client:
        response = await client.get('/static/css/site.css')
        assert response.status == 200 and response.body == b'body {}'
        assert response.header('content-type') == 'text/css; charset=utf-8'
        assert response.header('cache-control') == 'public, max-age=3600'
        assert response.header('etag') and response.header('last-modified')
        response = await client.get('/static/image.png')
        assert response.header('content-type') == 'image/png'
        assert len(response.body) == 1004
        response = await client.request('HEAD', '/static/image.png')
        assert response.body == b'' and response.header('content-length') == '1004'
        assert (await client.get('/static/alias.css')).body == b'body {}'
        assert (await client.get('/')).text == 'app'


async def test_conditional_and_range_requests(site):
    async with TestClient(make_app(site)) as client:
        etag = (await client.get('/static/app.js')).header('etag')
        response = await client.get('/static/app.js', headers={'If-None-Match': etag})
        assert response.status == 304
        assert response.header('cache-control') == 'public, max-age=3600'
        response = await client.get('/static/app.js', headers={'Range': 'bytes=4-4'})
        assert response.status == 206 and response.body == b'a'
        response = await client.get('/static/app.js', headers={'Range': 'bytes=400-'})
        assert response.status == 416


async def test_directories_index_and_redirects(site):
    async with TestClient(make_app(site)) as client:
        response = await client.get('/static')
        assert response.status == 301 and response.header('location') == '/static/'
        response = await client.get('/static/')
        assert response.text == '<h1>home</h1>'
        assert response.header('content-type') == 'text/html; charset=utf-8'
        response = await client.get('/static/docs?page=2')
        assert response.status == 301 and response.header('location') == '/static/docs/?page=2'
        assert (await client.get('/static/docs/')).text == '<h1>docs</h1>'
        assert (await client.get('/static/empty-dir/')).status == 404  # no listing
        assert (await client.get('/static/css/site.css/')).status == 404
        assert (await client.post('/static/app.js')).status == 405
    async with TestClient(make_app(site, index=None, cache_control=None)) as client:
        assert (await client.get('/static/docs/')).status == 404
        assert 'cache-control' not in (await client.get('/static/app.js')).headers


async def test_root_prefix_and_options(site):
    app = make_app(site, prefix='/', hidden=True, headers={'X-Served-By': 'static'})
    async with TestClient(app) as client:
        assert (await client.get('/css/site.css')).body == b'body {}'
        response = await client.get('/.env')
        assert response.body == b'PASSWORD=1' and response.header('x-served-by') == 'static'


ATTEMPTS = [
    ('/static/../secret.txt', 'dot segment'),
    ('/static/css/../../secret.txt', 'dot segment'),
    ('/static/./app.js', 'dot segment'),
    ('/static/%2e%2e/secret.txt', 'dot segment'),
    ('/static/%2E%2E/secret.txt', 'dot segment'),
    ('/static/..%2fsecret.txt', 'encoded separator'),
    ('/static/..%2Fsecret.txt', 'encoded separator'),
    ('/static/..%5csecret.txt', 'encoded separator'),
    ('/static/app.js%00.png', 'NUL'),
    ('/static//etc/passwd', 'empty'),
    ('/static/%2fetc/passwd', 'encoded separator'),
    ('/static/C:/x.txt', 'drive letter'),
    ('/static/c:%5cwindows', 'encoded separator'),
    ('/static/.env', 'hidden'),
    ('/static/.git/config', 'hidden'),
    ('/static/visible-env', 'hidden'),
    ('/static/escape.txt', 'symbolic link'),
    ('/static/up/secret.txt', 'symbolic link'),
]


@pytest.mark.parametrize('target, why', ATTEMPTS, ids=[target for target, _ in ATTEMPTS])
async def test_escapes_are_refused_and_logged(site, caplog, target, why):
    caplog.set_level(logging.INFO, logger='tremolo.static')
    async with TestClient(make_app(site)) as client:
        connection = client.connect(peer=('203.0.113.9', 5555))
        response = await connection.request('GET', target)
        await connection.close()
    assert response.status == 404
    assert b'secret' not in response.body and b'PASSWORD' not in response.body
    [record] = [r for r in caplog.records if r.name == 'tremolo.static']
    message = record.getMessage()
    assert record.levelno == logging.INFO
    assert '203.0.113.9' in message and target in message and why in message


async def test_symlinks_followed_when_allowed(site):
    async with TestClient(make_app(site, follow_symlinks=True)) as client:
        assert (await client.get('/static/escape.txt')).text == 'top secret'
        assert (await client.get('/static/up/secret.txt')).text == 'top secret'
        assert (await client.get('/static/../secret.txt')).status == 404  # still refused


async def test_raw_socket_attempts(site):
    """The targets exactly as sent (a client library would normalise the dot segments)."""
    async with serve(make_app(site)) as server:
        for target in ('/static/../secret.txt', '/static/%2e%2e/secret.txt',
                       '/static/..%2fsecret.txt', '/static/app.js%00', '/static/escape.txt',
                       '/static/up/secret.txt', '/static/css/..%5c..%5csecret.txt'):
            reader, writer = await asyncio.open_connection(server.host, server.port)
            writer.write(b'GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
                         % target.encode())
            answer = await reader.read()
            writer.close()
            assert answer.startswith(b'HTTP/1.1 404 '), (target, answer)
            assert b'top secret' not in answer
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + '/static/css/site.css') as response:
                assert await response.read() == b'body {}'
            async with session.get(server.url + '/static/image.png',
                                   headers={'Range': 'bytes=0-3'}) as response:
                assert response.status == 206 and await response.read() == b'\x89PNG'


def test_configuration_errors(site):
    with pytest.raises(RegistrationError, match='not a directory'):
        Tremolo().install(StaticFiles(site / 'missing'))
    with pytest.raises(ValueError):
        StaticFiles(site, prefix='static')
    with pytest.raises(ValueError):
        StaticFiles(site, index='../index.html')
