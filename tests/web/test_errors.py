"""Exceptions, error handlers and what clients see of failures."""

from __future__ import annotations

import logging
import re

import pytest

from tremolo import (
    BadRequest,
    Forbidden,
    HTTPException,
    MethodNotAllowed,
    NotFound,
    Redirect,
    RegistrationError,
    TooManyRequests,
)
from tremolo.testing import TestClient


async def test_http_exception_status_message_and_headers(app):
    @app.route('/')
    async def index():
        raise TooManyRequests('slow down', headers={'Retry-After': '3'})

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.status == 429
    assert response.text == 'slow down'
    assert response.header('retry-after') == '3'
    assert response.header('content-type') == 'text/plain; charset=utf-8'


async def test_exception_discards_headers_set_before_it(app):
    @app.route('/')
    async def index(response):
        response.set_header('X-Partial', '1')
        raise Forbidden()

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.status == 403 and response.text == 'Forbidden'
    assert response.header('x-partial') is None


async def test_redirect(app):
    @app.route('/old')
    async def old():
        raise Redirect('/new', 301)

    @app.route('/login')
    async def login(response):
        response.set_cookie('session', 'abc')
        return response.redirect('/home')

    async with TestClient(app) as client:
        old = await client.get('/old')
        login = await client.get('/login')
    assert old.status == 301 and old.header('location') == '/new'
    assert login.status == 302 and login.header('location') == '/home'
    assert login.cookies == {'session': 'abc'}
    with pytest.raises(ValueError):
        Redirect('/x', 200)
    with pytest.raises(ValueError):
        Redirect('/x\r\nSet-Cookie: a=b')


async def test_unhandled_error_is_a_500_without_internals(app, caplog):
    @app.route('/')
    async def index():
        raise KeyError('secret-internal-name')

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.status == 500
    assert response.text == 'Internal Server Error'
    assert 'secret' not in response.text
    assert 'secret-internal-name' in caplog.text  # logged for the operator


async def test_debug_shows_the_traceback(app):
    @app.route('/')
    async def index():
        raise KeyError('secret-internal-name')

    async with TestClient(app, debug=True) as client:
        response = await client.get('/')
    assert response.status == 500
    assert 'Traceback' in response.text and 'secret-internal-name' in response.text


async def test_error_handlers_by_status_and_class(app):
    class PaymentError(Exception):
        pass

    class CardDeclined(PaymentError):
        pass

    @app.error(404)
    async def not_found(request, exc):
        return {'missing': request.path, 'status': exc.status}

    @app.error(PaymentError)
    async def payment(exc, response):
        response.set_status(402)
        return f'payment failed: {type(exc).__name__}'

    @app.error(500)
    def crashed(exc):
        return 'custom 500'

    @app.route('/pay')
    async def pay():
        raise CardDeclined()

    @app.route('/crash')
    async def crash():
        raise RuntimeError()

    async with TestClient(app) as client:
        missing = await client.get('/nowhere')
        pay = await client.get('/pay')
        crash = await client.get('/crash')
    assert missing.status == 404 and missing.json() == {'missing': '/nowhere', 'status': 404}
    assert pay.status == 402 and pay.text == 'payment failed: CardDeclined'
    assert crash.status == 500 and crash.text == 'custom 500'


async def test_405_error_handler_keeps_allow(app):
    @app.error(405)
    async def not_allowed(exc):
        assert isinstance(exc, MethodNotAllowed)
        return 'nope'

    @app.route('/x')
    async def x():
        return ''

    async with TestClient(app) as client:
        response = await client.post('/x')
    assert response.status == 405 and response.text == 'nope'
    assert response.header('allow') == 'GET, HEAD'


async def test_failing_error_handler_falls_back_to_a_bare_500(app, caplog):
    @app.error(400)
    async def broken():
        raise RuntimeError('handler bug')

    @app.route('/')
    async def index():
        raise BadRequest()

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.status == 500 and response.text == 'Internal Server Error'
    assert 'handler bug' in caplog.text


async def test_custom_http_exception_subclass(app):
    class Locked(HTTPException):
        status = 423

    @app.route('/')
    async def index():
        raise Locked()

    async with TestClient(app) as client:
        response = await client.get('/')
    assert response.status == 423 and response.text == 'Locked'


async def test_server_keeps_serving_after_errors(app):
    @app.route('/boom')
    async def boom():
        raise RuntimeError()

    @app.route('/ok')
    async def ok():
        return 'fine'

    async with TestClient(app) as client:
        connection = client.connect()
        assert (await connection.request('GET', '/boom')).status == 500
        # A 500 before anything was sent keeps the connection usable.
        assert (await connection.request('GET', '/ok')).text == 'fine'


def test_error_registration_rules(app):
    with pytest.raises(RegistrationError):
        app.error(200)
    with pytest.raises(RegistrationError):
        app.error('404')
    with pytest.raises(RegistrationError, match='nothing can supply'):
        @app.error(404)
        async def handler(missing):
            return ''


async def test_exception_with_a_class_handler_is_not_logged_as_an_error(app, caplog):
    @app.error(LookupError)
    async def lookup():
        return 'handled'

    @app.route('/')
    async def index():
        raise KeyError('expected')

    async with TestClient(app) as client:
        assert (await client.get('/')).text == 'handled'
    assert not [r for r in caplog.records if r.levelname == 'ERROR']


async def test_a_status_first_is_the_status(app, caplog):
    # Starlette's habit: HTTPException(404). The int is the status, never the body.
    @app.route('/plain')
    async def plain():
        raise HTTPException(404)

    @app.route('/detail')
    async def detail():
        raise HTTPException(404, 'no such book')

    @app.route('/keyword')
    async def keyword():
        raise HTTPException(409, detail='taken', headers={'X-Why': 'duplicate'})

    @app.route('/subclass')
    async def subclass():
        raise NotFound(404)

    async with TestClient(app) as client:
        plain_response = await client.get('/plain')
        detail_response = await client.get('/detail')
        keyword_response = await client.get('/keyword')
        subclass_response = await client.get('/subclass')
    assert (plain_response.status, plain_response.text) == (404, 'Not Found')
    assert (detail_response.status, detail_response.text) == (404, 'no such book')
    assert (keyword_response.status, keyword_response.text) == (409, 'taken')
    assert keyword_response.header('x-why') == 'duplicate'
    assert (subclass_response.status, subclass_response.text) == (404, 'Not Found')
    assert 'error' not in caplog.text.lower()  # an HTTP error is an answer, not a failure


async def test_bytes_message_is_sent_as_is(app):
    @app.route('/')
    async def index():
        raise BadRequest(b'\xffraw')

    async with TestClient(app) as client:
        response = await client.get('/')
    assert (response.status, response.body) == (400, b'\xffraw')


@pytest.mark.parametrize(('args', 'kwargs', 'error', 'message'), [
    ((99,), {}, ValueError, 'argument status must be between 400 and 599, not 99'),
    ((), {'status': 200}, ValueError, 'argument status must be between 400 and 599, not 200'),
    ((), {'status': 600}, ValueError, 'argument status must be between 400 and 599, not 600'),
    ((), {'status': '404'}, TypeError, "argument status must be an int, not '404'"),
    ((), {'status': 404.0}, TypeError, 'argument status must be an int, not 404.0'),
    ((), {'status': True}, TypeError, 'argument status must be an int, not True'),
    ((404,), {'status': 405}, TypeError, 'got the status twice'),
    (('message', 'detail'), {}, TypeError, 'takes detail only after a status'),
    ((['not', 'text'],), {}, TypeError, 'argument message must be str or bytes, not list'),
    ((404, 3.5), {}, TypeError, 'argument message must be str or bytes, not float'),
])
def test_misuse_is_refused_at_construction(args, kwargs, error, message):
    with pytest.raises(error, match='^HTTPException\\(\\) ' + re.escape(message)):
        HTTPException(*args, **kwargs)


def test_subclass_status_is_checked_where_it_is_defined():
    with pytest.raises(TypeError, match=r'Bad.status must be an int between 400 and 599'):
        class Bad(HTTPException):
            status = 99

    class Teapot(HTTPException):
        status = 418

    assert (Teapot().status, Teapot().message) == (418, "I'm a Teapot")
    with pytest.raises(ValueError, match=r'^Redirect\(\) argument status must be between 300'):
        Redirect('/x', 404)
    with pytest.raises(TypeError, match=r'^Redirect\(\) argument location must be str'):
        Redirect(b'/x')  # type: ignore[arg-type]


async def test_keep_alive_survives_a_misused_exception(app):
    # A misuse is a bug in the handler: a 500 on a well-formed response, and the connection
    # stays usable (before, status=99 wrote a malformed status line and hung the client).
    @app.route('/bad')
    async def bad():
        raise HTTPException(status=99)

    @app.route('/good')
    async def good():
        return 'ok'

    async with TestClient(app) as client:
        connection = client.connect()
        connection.send(b'GET /bad HTTP/1.1\r\nHost: t\r\n\r\n'
                        b'GET /good HTTP/1.1\r\nHost: t\r\n\r\n')
        first = await connection.read_response()
        second = await connection.read_response()
        await connection.close()
    assert (first.status, first.text) == (500, 'Internal Server Error')
    assert (second.status, second.text) == (200, 'ok')


def _errors(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


async def test_an_error_in_a_hook_names_the_hook(app, caplog):
    async def check_token(request):
        raise ValueError('token store down')

    async def stamp(response):
        raise KeyError('stamp')

    app.on_request(check_token, prefix='/in')
    app.on_response(stamp, prefix='/out')

    @app.route('/in/x')
    async def inner():
        return 'never'

    @app.route('/out/x')
    async def outer():
        return 'sent by the hook failing'

    async with TestClient(app) as client:
        inbound = await client.get('/in/x')
        outbound = await client.get('/out/x')
    assert inbound.status == outbound.status == 500
    module = __name__
    assert _errors(caplog) == [
        f'error in on_request hook {check_token.__qualname__} ({module}) answering GET /in/x',
        f'error in on_response hook {stamp.__qualname__} ({module}) answering GET /out/x',
    ]


async def test_a_middleware_method_is_named_with_its_class(app, caplog):
    class Audit:
        async def on_request(self, request):
            raise RuntimeError('audit log full')

    app.add_middleware(Audit())

    @app.route('/')
    async def index():
        return 'never'

    async with TestClient(app) as client:
        assert (await client.get('/')).status == 500
    assert _errors(caplog) == [
        f'error in on_request hook {Audit.on_request.__qualname__} ({__name__}) answering GET /'
    ]


async def test_handler_errors_still_name_the_handler(app, caplog):
    @app.on_request
    async def fine(request):
        return None

    @app.route('/')
    async def index():
        raise ValueError('bug')

    async with TestClient(app) as client:
        assert (await client.get('/')).status == 500
    assert _errors(caplog) == [
        f"error in handler {index.__qualname__} for route '/' answering GET /"]


@pytest.mark.parametrize('kind', ['async', 'sync'])
async def test_an_error_in_a_streamed_response_is_logged_once(app, caplog, kind):
    if kind == 'async':
        @app.route('/')
        async def index():
            yield b'first'
            raise ValueError('broken stream')
    else:
        @app.route('/')
        def index():
            yield b'first'
            raise ValueError('broken stream')

    @app.route('/next')
    async def after():
        return 'served'

    async with TestClient(app) as client:
        connection = client.connect()
        connection.send(b'GET / HTTP/1.1\r\nHost: t\r\n\r\n')
        data = await connection.read_all()
        assert (await client.get('/next')).text == 'served'
    assert data.startswith(b'HTTP/1.1 200 OK') and b'first' in data
    assert not data.endswith(b'0\r\n\r\n')  # cut short: the client sees the failure
    assert connection.transport.aborted
    assert _errors(caplog) == [
        f"error in handler {index.__qualname__} for route '/' answering GET /"]


async def test_a_streamed_response_cut_by_an_error_is_one_access_line(app, caplog):
    # Logged once as an error (naming the handler), recorded once as cut short.
    caplog.set_level(logging.INFO, 'tremolo.access')

    @app.route('/')
    async def index():
        yield b'first'
        raise ValueError('broken stream')

    async with TestClient(app, access_log=True,
                          access_log_format='{path} {status} {response_bytes} {complete}'
                          ) as client:
        connection = client.connect()
        connection.send(b'GET / HTTP/1.1\r\nHost: t\r\n\r\n')
        await connection.read_all()
    access = [r.getMessage() for r in caplog.records if r.name == 'tremolo.access']
    assert access == ['/ 200 5 false']
    assert len(_errors(caplog)) == 1
