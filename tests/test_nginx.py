"""Tremolo behind a real nginx, configured with the documentation's own files.

``examples/nginx.conf`` and ``examples/nginx-proxy-protocol.conf`` are used as they are, with
only their addresses replaced: nginx listens on ephemeral loopback ports, plain and TLS, and
passes to an in-process Tremolo on another. The client connects from 127.0.0.2, so that it
is not the trusted proxy (127.0.0.1). nginx runs as the current user with every path in the
test's temporary directory. ``make test`` installs nginx where it can (Debian, as root);
elsewhere these tests are skipped.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from tests.apps.harness import REPO_ROOT, free_port, free_ports
from tremolo import Tremolo
from tremolo.testing import serve

trustme = pytest.importorskip('trustme')

EXAMPLES = REPO_ROOT / 'examples'
CLIENT = '127.0.0.2'  # a loopback address that is not the trusted proxy


def nginx_binary() -> str | None:
    candidates = ('/usr/sbin/nginx', '/usr/local/sbin/nginx')
    return shutil.which('nginx') or next(
        (path for path in candidates if os.access(path, os.X_OK)), None
    )


NGINX = nginx_binary()
pytestmark = pytest.mark.skipif(
    NGINX is None, reason='nginx is not installed (make test installs it on Debian as root: '
    'apt-get install nginx libnginx-mod-stream)',
)


def stream_module() -> str | None:
    """The ``load_module`` line the stream module needs ('' when built in), or ``None``."""
    assert NGINX is not None
    version = subprocess.run([NGINX, '-V'], capture_output=True, text=True).stderr
    if re.search(r'--with-stream(?=\s)', version):
        return ''
    if '--with-stream=dynamic' not in version:
        return None
    match = re.search(r'--modules-path=(\S+)', version)
    directory = Path(match.group(1) if match else '/usr/lib/nginx/modules')
    module = directory / 'ngx_stream_module.so'
    return f'load_module {module};' if module.is_file() else None


def substituted(name: str, *replacements: tuple[str, str]) -> str:
    text = (EXAMPLES / name).read_text()
    for old, new in replacements:
        assert text.count(old) == 1, f'{old!r} is not in examples/{name} exactly once'
        text = text.replace(old, new)
    return text


class Nginx:
    """One nginx process in the foreground, all of its files in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, http: str = '', stream: str = '', module: str = '',
              ports: tuple[int, ...] = ()) -> None:
        """Start with ``http`` inside ``http {}``, ``stream`` at the top level, after the
        ``load_module`` line ``module``; return once nginx accepts on every port."""
        d = self.directory
        for sub in ('client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'):
            (d / sub).mkdir(exist_ok=True)
        (d / 'site.conf').write_text(http)
        user = 'user root;' if os.geteuid() == 0 else ''  # else workers would run as nobody
        (d / 'nginx.conf').write_text(f'''
{module}
{user}
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {d}/site.conf;
}}
{stream}
''')
        assert NGINX is not None
        self.process = subprocess.Popen(
            [NGINX, '-p', str(d), '-e', str(d / 'error.log'), '-c', str(d / 'nginx.conf'),
             '-g', 'daemon off;'],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 15
        for port in ports:
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(f'nginx exited:\n{self.log()}')
                try:
                    socket.create_connection(('127.0.0.1', port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise AssertionError(
                            f'nginx is not listening on {port}:\n{self.log()}') from None
                    time.sleep(0.05)

    def log(self) -> str:
        path = self.directory / 'error.log'
        return path.read_text(errors='replace') if path.exists() else ''

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.fixture
def nginx(tmp_path):
    runner = Nginx(tmp_path)
    yield runner
    runner.stop()


@pytest.fixture
def app():
    app = Tremolo()
    app.connections = 0

    @app.on_connect
    async def count(connection):
        app.connections += 1

    @app.route('/who')
    async def who(request):
        return {'client': request.client, 'scheme': request.scheme, 'host': request.host,
                'peer': request.connection.client}

    @app.route('/slow')
    async def slow():
        for i in range(3):
            yield b'piece %d\n' % i
            await asyncio.sleep(0.3)

    @app.route('/upload', methods=['POST'])
    async def upload(request):
        digest = hashlib.sha256()
        size = 0
        async for piece in request.stream():
            digest.update(piece)
            size += len(piece)
        return {'size': size, 'sha256': digest.hexdigest()}

    return app


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(CLIENT, 0)))


@pytest.fixture
async def proxied(app, nginx, tmp_path, ca, certificate):
    """Tremolo behind examples/nginx.conf: ``(http_url, https_url, client_ssl_context)``."""
    certificate.cert_chain_pems[0].write_to_path(str(tmp_path / 'cert.pem'))
    certificate.private_key_pem.write_to_path(str(tmp_path / 'key.pem'))
    async with serve(app, trusted_proxies=['127.0.0.1']) as server:
        plain, tls = free_ports(2)
        nginx.start(substituted(
            'nginx.conf',
            ('server unix:/run/tremolo/app.sock;', f'server 127.0.0.1:{server.port};'),
            ('listen 80;', f'listen 127.0.0.1:{plain};\n    listen 127.0.0.1:{tls} ssl;\n'
                           f'    ssl_certificate {tmp_path}/cert.pem;\n'
                           f'    ssl_certificate_key {tmp_path}/key.pem;'),
        ), ports=(plain, tls))
        context = ssl.create_default_context()
        ca.configure_trust(context)
        yield f'http://127.0.0.1:{plain}', f'https://127.0.0.1:{tls}', context


async def test_client_and_scheme_come_through(proxied):
    http, https, context = proxied
    async with session() as client:
        async with client.get(http + '/who') as response:
            plain = await response.json()
        async with client.get(https + '/who', ssl=context) as response:
            secure = await response.json()
        # A client that prepends its own X-Forwarded-For cannot choose its address.
        headers = {'X-Forwarded-For': '6.6.6.6', 'X-Forwarded-Proto': 'https',
                   'X-Forwarded-Host': 'evil.example', 'Forwarded': 'for=6.6.6.6'}
        async with client.get(http + '/who', headers=headers) as response:
            spoofed = await response.json()
    assert plain['client'][0] == CLIENT and plain['scheme'] == 'http'
    assert plain['peer'][0] == '127.0.0.1'
    assert secure['client'][0] == CLIENT and secure['scheme'] == 'https'
    assert spoofed['client'][0] == CLIENT and spoofed['scheme'] == 'http'
    assert spoofed['host'] == '127.0.0.1'


async def test_keep_alive_to_the_upstream_is_reused(proxied, app):
    http, _, _ = proxied
    for _ in range(5):  # a new client connection each time: nginx keeps its upstream one
        async with session() as client:
            async with client.get(http + '/who') as response:
                assert response.status == 200
    assert app.connections == 1


async def test_streamed_response_arrives_piece_by_piece(proxied):
    http, _, _ = proxied
    async with session() as client:
        async with client.get(http + '/slow') as response:
            started = time.monotonic()
            arrivals = []
            async for piece in response.content.iter_any():
                arrivals.append((piece, time.monotonic() - started))
    assert b''.join(piece for piece, _ in arrivals) == b'piece 0\npiece 1\npiece 2\n'
    assert len(arrivals) >= 2
    assert arrivals[0][1] < 0.5  # the handler needs 0.9 s for all three


async def test_upload_through_the_proxy(proxied):
    http, _, _ = proxied
    body = os.urandom(3 * 1024 * 1024)
    async with session() as client:
        async with client.post(http + '/upload', data=io.BytesIO(body)) as response:
            result = await response.json()
    assert result == {'size': len(body), 'sha256': hashlib.sha256(body).hexdigest()}


async def test_proxy_protocol_from_nginx(app, nginx):
    module = stream_module()
    if module is None:
        pytest.skip('this nginx has no stream module (Debian: apt-get install '
                    'libnginx-mod-stream); PROXY protocol is tested over raw sockets instead')
    async with serve(app, proxy_protocol=True) as server:
        port = free_port()
        stream = substituted(
            'nginx-proxy-protocol.conf', ('listen 8080;', f'listen 127.0.0.1:{port};'),
            ('proxy_pass 127.0.0.1:8001;', f'proxy_pass 127.0.0.1:{server.port};'),
        )
        nginx.start(stream=stream, module=module, ports=(port,))
        seen = []
        async with session() as client:
            for _ in range(2):  # keep-alive: both requests on one relayed connection
                async with client.get(f'http://127.0.0.1:{port}/who') as response:
                    seen.append(await response.json())
    # The PROXY header named the client (its address and port), not nginx.
    assert seen[0]['client'][0] == CLIENT and seen[0]['client'][1] != 0
    assert seen[0]['client'] == seen[0]['peer'] == seen[1]['client']
