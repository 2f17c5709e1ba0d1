"""CSRF: Sec-Fetch-Site and Origin checks, the signed double-submit token (header and form
field, masked), exempt routes, configuration."""

from __future__ import annotations

import aiohttp
import pytest
from tremolo.middleware.csrf import CSRF

from tremolo import Tremolo
from tremolo.testing import TestClient, serve

SECRET = 'csrf-test-secret-key-0123456789'


def make_app(secret=SECRET, **options):
    app = Tremolo()
    app.install(CSRF(secret, **options))

    @app.route('/form')
    async def form(csrf_token):
        return csrf_token

    @app.route('/change', methods=['POST', 'PUT', 'DELETE', 'GET'])
    async def change(request):
        if request.content_type == 'application/x-www-form-urlencoded':
            form = await request.form()  # read again after the middleware: it is kept
            return f'changed {form.get("name")}'
        return 'changed'

    @app.post('/hook', csrf_exempt=True)
    async def hook(**server):
        return 'hooked'

    return app


async def token_and_cookie(client):
    response = await client.get('/form')
    cookie = response.header('set-cookie')
    assert 'HttpOnly' not in cookie and 'SameSite=Lax' in cookie
    return response.text, cookie.split(';')[0]


async def test_safe_methods_pass_and_unsafe_ones_need_a_token():
    async with TestClient(make_app()) as client:
        safe = await client.get('/change')
        unsafe = await client.post('/change')
        deleted = await client.delete('/change')
    assert safe.status == 200
    assert unsafe.status == 403 and 'no valid CSRF cookie' in unsafe.text
    assert deleted.status == 403


async def test_the_token_in_the_header_or_the_form_field():
    async with TestClient(make_app()) as client:
        token, cookie = await token_and_cookie(client)
        by_header = await client.post('/change', headers={'Cookie': cookie,
                                                          'X-CSRF-Token': token})
        by_form = await client.post('/change', headers={'Cookie': cookie},
                                    form={'csrf_token': token, 'name': 'x'})
        by_cookie_value = await client.put(
            '/change', headers={'Cookie': cookie, 'X-CSRF-Token': cookie.split('=', 1)[1]})
    assert by_header.status == 200
    assert by_form.status == 200 and by_form.text == 'changed x'
    assert by_cookie_value.status == 200  # a script sends back what it read from the cookie


async def test_tokens_are_masked_afresh_and_all_match():
    async with TestClient(make_app()) as client:
        token, cookie = await token_and_cookie(client)
        again = await client.get('/form', headers={'Cookie': cookie})
        assert again.header('set-cookie') is None  # the client's valid cookie is kept
        assert again.text != token
        response = await client.post('/change', headers={'Cookie': cookie,
                                                         'X-CSRF-Token': again.text})
    assert response.status == 200


@pytest.mark.parametrize('tamper', ['token', 'cookie', 'other-secret'])
async def test_a_wrong_token_or_cookie_is_refused(tamper):
    async with TestClient(make_app()) as client:
        token, cookie = await token_and_cookie(client)
        other_token, _ = await token_and_cookie(client)  # another client's
    async with TestClient(make_app('another-secret-entirely')) as client:
        forged_token, forged_cookie = await token_and_cookie(client)
    headers = {
        'token': {'Cookie': cookie, 'X-CSRF-Token': other_token},
        'cookie': {'Cookie': cookie[:-3] + 'abc', 'X-CSRF-Token': token},
        # A pair made with another key: its cookie's signature does not verify here.
        'other-secret': {'Cookie': forged_cookie, 'X-CSRF-Token': forged_token},
    }[tamper]
    async with TestClient(make_app()) as client:
        response = await client.post('/change', headers=headers)
    assert response.status == 403


async def test_cross_site_and_foreign_origins_are_refused_even_with_a_token():
    async with TestClient(make_app()) as client:
        token, cookie = await token_and_cookie(client)
        headers = {'Cookie': cookie, 'X-CSRF-Token': token}
        cross = await client.post('/change', headers={**headers, 'Sec-Fetch-Site': 'cross-site'})
        sibling = await client.post('/change', headers={**headers, 'Sec-Fetch-Site': 'same-site'})
        foreign = await client.post('/change', headers={**headers,
                                                        'Origin': 'https://evil.example'})
        null = await client.post('/change', headers={**headers, 'Origin': 'null'})
        same = await client.post('/change', headers={**headers, 'Sec-Fetch-Site': 'same-origin',
                                                     'Origin': 'http://testserver'})
    assert cross.status == 403 and 'cross-site' in cross.text
    assert sibling.status == 403 and 'subdomain' in sibling.text
    assert foreign.status == 403 and 'evil.example' in foreign.text
    assert null.status == 403
    assert same.status == 200


async def test_trusted_origins_and_same_site():
    app = make_app(trusted_origins=['https://admin.example.com'], allow_same_site=True)
    async with TestClient(app) as client:
        token, cookie = await token_and_cookie(client)
        headers = {'Cookie': cookie, 'X-CSRF-Token': token}
        trusted = await client.post('/change', headers={
            **headers, 'Sec-Fetch-Site': 'cross-site', 'Origin': 'https://admin.example.com'})
        sibling = await client.post('/change', headers={**headers, 'Sec-Fetch-Site': 'same-site'})
    assert trusted.status == 200 and sibling.status == 200


async def test_default_ports_do_not_make_a_different_origin():
    async with TestClient(make_app()) as client:
        token, cookie = await token_and_cookie(client)
        response = await client.post('/change', headers={
            'Cookie': cookie, 'X-CSRF-Token': token, 'Host': 'example.com:80',
            'Origin': 'http://example.com'})
    assert response.status == 200


async def test_origin_checks_alone():
    async with TestClient(make_app(require_token=False)) as client:
        api = await client.post('/change')  # no browser headers: let through
        browser = await client.post('/change', headers={'Sec-Fetch-Site': 'same-origin'})
        cross = await client.post('/change', headers={'Sec-Fetch-Site': 'cross-site'})
    assert api.status == 200 and browser.status == 200 and cross.status == 403


async def test_an_exempt_route():
    async with TestClient(make_app()) as client:
        response = await client.post('/hook', headers={'Sec-Fetch-Site': 'cross-site'})
    assert response.status == 200


async def test_the_cookie_is_secure_over_https_behind_a_trusted_proxy():
    async with TestClient(make_app(), trusted_proxies=['127.0.0.1']) as client:
        response = await client.get('/form', headers={'X-Forwarded-Proto': 'https'})
    assert 'Secure' in response.header('set-cookie')


async def test_key_rotation_keeps_old_cookies_valid():
    async with TestClient(make_app()) as client:
        token, cookie = await token_and_cookie(client)
    app = Tremolo()
    app.install(CSRF(['a-brand-new-secret-key', SECRET]))

    @app.post('/change')
    async def change(**server):
        return 'changed'

    async with TestClient(app) as client:
        response = await client.post('/change', headers={'Cookie': cookie,
                                                         'X-CSRF-Token': token})
    assert response.status == 200


@pytest.mark.parametrize('options, message', [
    ({'secret_key': ''}, 'secret_key'), ({'secret_key': []}, 'secret_key'),
    ({'secret_key': SECRET, 'trusted_origins': ['https://ok.example/']}, 'trusted_origins'),
    ({'secret_key': SECRET, 'samesite': 'sometimes'}, 'cookie settings'),
])
def test_bad_configuration(options, message):
    with pytest.raises(ValueError, match=message):
        CSRF(**options)


async def test_a_form_post_over_real_sockets():
    async with serve(make_app()) as server:
        # unsafe=True: aiohttp keeps cookies of IP-address hosts only when told to.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.get(server.url + '/form') as response:
                token = await response.text()
            # The session's cookie jar sends the token cookie back.
            async with session.post(server.url + '/change',
                                    data={'csrf_token': token, 'name': 'real'}) as response:
                assert response.status == 200
                assert await response.text() == 'changed real'
            async with session.post(server.url + '/change', data={'name': 'x'},
                                    headers={'Origin': 'https://evil.example'}) as response:
                assert response.status == 403
