"""Security headers, HTTPS redirects (aware of trusted proxies) and trusted hosts."""

from __future__ import annotations

import aiohttp
import pytest
from tremolo.middleware.security import (
    HTTPSRedirect,
    SecurityHeaders,
    TrustedHosts,
    split_host,
)

from tremolo import Tremolo
from tremolo.testing import TestClient, serve


def routes(app):
    @app.route('/')
    async def index(**server):
        return 'ok'

    @app.route('/framed')
    async def framed(response, **server):
        response.headers['X-Frame-Options'] = 'DENY'
        return 'ok'

    @app.route('/form', methods=['GET', 'POST'])
    async def form(**server):
        return 'form'

    return app


async def test_default_security_headers():
    app = routes(Tremolo())
    app.install(SecurityHeaders())
    async with TestClient(app) as client:
        response = await client.get('/')
        missing = await client.get('/nowhere')
    expected = {
        'x-content-type-options': 'nosniff', 'x-frame-options': 'SAMEORIGIN',
        'referrer-policy': 'strict-origin-when-cross-origin',
        'cross-origin-opener-policy': 'same-origin',
    }
    for name, value in expected.items():
        assert response.header(name) == value
        assert missing.header(name) == value  # errors too
    # HSTS only over HTTPS (RFC 6797 §7.2): this request came over plain HTTP.
    assert response.header('strict-transport-security') is None
    assert response.header('content-security-policy') is None


async def test_configured_headers_and_the_handlers_own_win():
    app = routes(Tremolo())
    app.install(SecurityHeaders(
        frame_options=None, content_security_policy="default-src 'self'",
        permissions_policy='geolocation=()', headers={'X-Extra': 'yes'}))
    async with TestClient(app) as client:
        response = await client.get('/')
        framed = await client.get('/framed')
    assert response.header('x-frame-options') is None
    assert response.header('content-security-policy') == "default-src 'self'"
    assert response.header('permissions-policy') == 'geolocation=()'
    assert response.header('x-extra') == 'yes'
    assert framed.header('x-frame-options') == 'DENY'
    assert framed.header_list.count(('X-Frame-Options', 'DENY')) == 1


async def test_hsts_over_https(server_context, client_context):
    app = routes(Tremolo())
    app.install(SecurityHeaders(hsts_max_age=600, hsts_preload=True))
    async with serve(app, ssl=server_context) as server:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + '/', ssl=client_context) as response:
                assert response.headers['Strict-Transport-Security'] == (
                    'max-age=600; includeSubDomains; preload')


async def test_hsts_behind_a_trusted_tls_proxy():
    app = routes(Tremolo())
    app.install(SecurityHeaders())
    async with TestClient(app, trusted_proxies=['127.0.0.1']) as client:
        response = await client.get('/', headers={'X-Forwarded-Proto': 'https'})
    assert response.header('strict-transport-security') == (
        'max-age=31536000; includeSubDomains')


@pytest.mark.parametrize('options, message', [
    ({'hsts_max_age': -1}, 'hsts_max_age'),
    ({'referrer_policy': 'no-referrer\r\nX-Injected: 1'}, 'referrer_policy'),
    ({'headers': {'Bad Name': 'x'}}, 'headers'),
])
def test_bad_security_headers_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        SecurityHeaders(**options)


# -- HTTPS redirects -----------------------------------------------------------------------------

async def test_plain_http_is_redirected_with_the_path_and_query():
    app = routes(Tremolo())
    app.install(HTTPSRedirect())
    async with TestClient(app) as client:
        response = await client.get('/form?a=1&b=%20', headers={'Host': 'example.com:8080'})
        post = await client.post('/form', body=b'x', headers={'Host': 'example.com'})
    assert response.status == 308
    assert response.header('location') == 'https://example.com/form?a=1&b=%20'
    assert post.status == 308  # the method and body are kept by the client


async def test_redirect_to_another_port_and_status():
    app = routes(Tremolo())
    app.install(HTTPSRedirect(301, https_port=8443))
    async with TestClient(app) as client:
        response = await client.get('/', headers={'Host': '[::1]:8080'})
    assert response.status == 301
    assert response.header('location') == 'https://[::1]:8443/'


async def test_no_redirect_behind_a_trusted_tls_proxy_and_one_from_an_untrusted_peer():
    app = routes(Tremolo())
    app.install(HTTPSRedirect())
    async with TestClient(app, trusted_proxies=['127.0.0.1']) as client:
        proxied = await client.get('/', headers={'X-Forwarded-Proto': 'https'})
    async with TestClient(app) as client:
        forged = await client.get('/', headers={'X-Forwarded-Proto': 'https'})
    assert proxied.status == 200
    assert forged.status == 308  # an untrusted client cannot claim HTTPS


async def test_https_requests_are_served(server_context, client_context):
    app = routes(Tremolo())
    app.install(HTTPSRedirect())
    async with serve(app, ssl=server_context) as server:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + '/', ssl=client_context) as response:
                assert response.status == 200


async def test_a_real_client_is_sent_to_https_on_its_default_port():
    app = routes(Tremolo())
    app.install(HTTPSRedirect())
    async with serve(app) as server:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + '/form?x=1', allow_redirects=False) as response:
                assert response.status == 308
                # The plain-HTTP port is not the HTTPS one: without https_port, 443.
                assert response.headers['Location'] == 'https://127.0.0.1/form?x=1'


def test_redirect_configuration_is_checked():
    with pytest.raises(ValueError, match='status'):
        HTTPSRedirect(200)
    with pytest.raises(ValueError, match='https_port'):
        HTTPSRedirect(https_port=70000)


# -- trusted hosts -------------------------------------------------------------------------------

def test_split_host():
    assert split_host('Example.COM.:8080') == ('example.com', ':8080')
    assert split_host('[::1]:80') == ('[::1]', ':80')
    assert split_host('host') == ('host', '')


@pytest.mark.parametrize('host, allowed', [
    ('example.com', True), ('EXAMPLE.com:8000', True), ('example.com.', True),
    ('www.example.com', True), ('a.b.example.com', True), ('badexample.com', False),
    ('example.org', False), ('127.0.0.1:9000', True), ('[::1]', True), ('localhost', False),
])
def test_trusted_host_patterns(host, allowed):
    hosts = TrustedHosts(['example.com', '*.example.com', '127.0.0.1', '[::1]'])
    assert hosts.allows(host) is allowed


async def test_other_hosts_get_400():
    app = routes(Tremolo())
    app.install(TrustedHosts(['example.com']))
    async with TestClient(app) as client:
        good = await client.get('/', headers={'Host': 'example.com'})
        bad = await client.get('/', headers={'Host': 'attacker.test'})
        absolute = await client.get('http://attacker.test/', headers={'Host': 'example.com'})
    assert good.status == 200
    assert bad.status == 400 and bad.text == 'Invalid host'
    # The target's authority is the host (RFC 9112 §3.2.2), not the Host header.
    assert absolute.status == 400


async def test_a_forwarded_host_is_checked_behind_a_trusted_proxy():
    app = routes(Tremolo())
    app.install(TrustedHosts(['public.example']))
    async with TestClient(app, trusted_proxies=['127.0.0.1']) as client:
        good = await client.get('/', headers={'Host': 'internal:8000',
                                              'X-Forwarded-Host': 'public.example'})
        bad = await client.get('/', headers={'Host': 'internal:8000',
                                             'X-Forwarded-Host': 'evil.example'})
    assert good.status == 200 and bad.status == 400


async def test_trusted_hosts_over_real_sockets():
    app = routes(Tremolo())
    app.install(TrustedHosts(['localhost', '127.0.0.1']))
    async with serve(app) as server:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + '/') as response:
                assert response.status == 200
            async with session.get(server.url + '/', headers={'Host': 'evil'}) as response:
                assert response.status == 400


@pytest.mark.parametrize('hosts', [[], ['example.com:80'], ['*example.com'], ['a b'], ['::1']])
def test_bad_host_lists_are_refused(hosts):
    with pytest.raises(ValueError, match='allowed_hosts'):
        TrustedHosts(hosts)
