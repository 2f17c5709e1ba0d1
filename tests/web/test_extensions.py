"""The extension contract: setup at install, close at worker stop in reverse order."""

from __future__ import annotations

import pytest

from tremolo import Extension, RegistrationError
from tremolo.testing import TestClient


class Greeter(Extension):
    name = 'greeter'

    def __init__(self, word, log):
        self.word = word
        self.log = log

    def setup(self, app):
        @app.route(f'/{self.word}')
        async def greet(request):
            return f'{self.word} {request.path}'

        @app.on_response
        async def stamp(response):
            response.append_header('X-Greeter', self.word)

        self.log.append(f'setup {self.word}')

    async def close(self, globals):
        self.log.append(f'close {self.word}')


async def test_extensions_add_routes_providers_hooks_and_close_in_reverse(app):
    log = []
    hello = app.install(Greeter('hello', log))
    app.install(Greeter('hi', log))
    assert hello.word == 'hello'

    async with TestClient(app) as client:
        response = await client.get('/hello')
        assert response.text == 'hello /hello'
        assert [v for k, v in response.header_list if k == 'X-Greeter'] == ['hi', 'hello']
    assert log == ['setup hello', 'setup hi', 'close hi', 'close hello']


def test_extension_rules(app):
    with pytest.raises(RegistrationError, match='setup'):
        app.install(object())
    greeter = Greeter('x', [])
    app.install(greeter)
    with pytest.raises(RegistrationError, match='already installed'):
        app.install(greeter)


async def test_plain_object_extension_with_a_provider(app):
    class Clock:
        def setup(self, app):
            app.provide('now', lambda: 'noon')
            app.route('/plain')(lambda now: f'plain at {now}')

    app.install(Clock())

    @app.route('/time')
    async def time(now):
        return now

    async with TestClient(app) as client:
        assert (await client.get('/plain')).text == 'plain at noon'
        assert (await client.get('/time')).text == 'noon'
