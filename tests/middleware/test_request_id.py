"""Request ids: accepted or made, injected, echoed, in the access log line and in every log
record made while the request runs."""

from __future__ import annotations

import asyncio
import logging
import re

import aiohttp
import pytest
from tremolo.middleware.request_id import (
    RequestID,
    current_request_id,
    install_log_record_factory,
)

from tremolo import Tremolo
from tremolo.testing import TestClient, serve

log = logging.getLogger('tests.request_id')


@pytest.fixture
def app():
    app = Tremolo()
    app.install(RequestID())

    @app.route('/')
    async def index(request_id, request):
        log.info('handling')
        return {'id': request_id, 'request.id': request.id, 'current': current_request_id()}

    @app.route('/sync')
    def sync(request_id):
        log.info('in a thread')
        return {'current': current_request_id()}

    @app.route('/boom')
    async def boom(**server):
        raise RuntimeError('boom')

    return app


async def test_a_new_id_is_made_injected_and_echoed(app):
    async with TestClient(app) as client:
        first = await client.get('/')
        second = await client.get('/')
    body = first.json()
    assert re.fullmatch(r'[0-9a-f]{32}', body['id'])
    assert body['id'] == body['request.id'] == body['current'] == first.header('x-request-id')
    assert second.json()['id'] != body['id']


async def test_new_ids_stay_distinct_across_draws_of_randomness():
    app = Tremolo()
    app.install(RequestID())

    @app.route('/')
    async def index(request_id):
        return request_id

    async with TestClient(app) as client:
        connection = client.connect()
        ids = [(await connection.request('GET', '/')).text for _ in range(600)]
    # 256 ids per draw: 600 requests take three draws.
    assert all(re.fullmatch(r'[0-9a-f]{32}', each) for each in ids)
    assert len(set(ids)) == 600


async def test_an_id_the_application_sets_on_the_response_is_kept():
    app = Tremolo()
    app.install(RequestID())

    @app.route('/')
    async def index(response, request_id):
        response.headers['X-Request-ID'] = f'app-{request_id[:8]}'
        return 'x'

    async with TestClient(app) as client:
        response = await client.get('/')
    [value] = [value for name, value in response.header_list if name.lower() == 'x-request-id']
    assert value.startswith('app-')


@pytest.mark.parametrize('incoming, kept', [
    ('abc-123', True), ('a' * 200, True), ('a' * 201, False), ('has space', False),
    ('quote"', False), ('semi;colon', False), ('trace:01/ab=cd', True),
])
async def test_a_valid_incoming_id_is_kept(app, incoming, kept):
    async with TestClient(app) as client:
        response = await client.get('/', headers={'X-Request-ID': incoming})
    assert (response.json()['id'] == incoming) is kept
    assert response.header('x-request-id') == response.json()['id']


async def test_untrusted_incoming_ids_are_replaced():
    app = Tremolo()
    app.install(RequestID(header='X-Correlation-ID', trust_incoming=False,
                          generator=lambda: 'made-here'))

    @app.route('/')
    async def index(request_id):
        return request_id

    async with TestClient(app) as client:
        response = await client.get('/', headers={'X-Correlation-ID': 'from-client'})
    assert response.text == 'made-here' and response.header('x-correlation-id') == 'made-here'


async def test_log_records_carry_the_id(app, caplog):
    caplog.set_level(logging.INFO, logger='tests.request_id')
    async with TestClient(app) as client:
        response = await client.get('/', headers={'X-Request-ID': 'req-1'})
        threaded = await client.get('/sync', headers={'X-Request-ID': 'req-2'})
    assert response.status == threaded.status == 200
    records = {record.getMessage(): record for record in caplog.records
               if record.name == 'tests.request_id'}
    assert records['handling'].request_id == 'req-1'
    assert records['in a thread'].request_id == 'req-2'
    assert threaded.json() == {'current': 'req-2'}
    outside = log.makeRecord('x', logging.INFO, __file__, 1, 'outside', (), None)
    assert outside.request_id == '-'


async def test_errors_are_logged_with_the_id(app, caplog):
    caplog.set_level(logging.ERROR, logger='tremolo')
    async with TestClient(app) as client:
        response = await client.get('/boom', headers={'X-Request-ID': 'failing-1'})
    assert response.status == 500 and response.header('x-request-id') == 'failing-1'
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert errors and all(record.request_id == 'failing-1' for record in errors)


async def test_the_access_log_line_ends_with_the_id(app, caplog):
    caplog.set_level(logging.INFO, logger='tremolo.access')
    async with TestClient(app, access_log=True) as client:
        await client.get('/', headers={'X-Request-ID': 'logged-7'})
    lines = [record.getMessage() for record in caplog.records if record.name == 'tremolo.access']
    assert len(lines) == 1
    assert re.fullmatch(r'127\.0\.0\.1:40000 - "GET / HTTP/1\.1" 200 \d+ id=logged-7', lines[0])


async def test_the_access_log_without_the_middleware_is_unchanged(caplog):
    app = Tremolo()

    @app.route('/')
    async def index(**server):
        return 'x'

    caplog.set_level(logging.INFO, logger='tremolo.access')
    async with TestClient(app, access_log=True) as client:
        await client.get('/')
    [line] = [record.getMessage() for record in caplog.records
              if record.name == 'tremolo.access']
    assert line.endswith('"GET / HTTP/1.1" 200 1')


async def test_tasks_started_by_the_request_keep_its_id(app):
    seen = []

    @app.route('/spawn')
    async def spawn(**server):
        async def later():
            await asyncio.sleep(0)
            seen.append(current_request_id())

        await asyncio.ensure_future(later())
        return 'ok'

    async with TestClient(app) as client:
        await client.get('/spawn', headers={'X-Request-ID': 'parent'})
    assert seen == ['parent']


def test_the_record_factory_is_installed_once():
    install_log_record_factory()
    factory = logging.getLogRecordFactory()
    install_log_record_factory()
    assert logging.getLogRecordFactory() is factory


def test_bad_configuration():
    with pytest.raises(ValueError, match='header'):
        RequestID(header='X Request')
    with pytest.raises(ValueError, match='max_length'):
        RequestID(max_length=0)


async def test_over_real_sockets(app):
    async with serve(app) as server:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + '/',
                                   headers={'X-Request-ID': 'from-aiohttp'}) as response:
                assert response.headers['X-Request-ID'] == 'from-aiohttp'
                assert (await response.json())['current'] == 'from-aiohttp'
