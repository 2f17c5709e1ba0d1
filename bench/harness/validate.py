"""Check each endpoint's answer (status, body, framing, keep-alive) with a real HTTP client
(http.client) before it is measured, and again after the load."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Callable, Optional

CHUNK = b'0123456789abcdef' * 1024  # what every app streams: 64 chunks of 16 KiB
STREAM_BODY = CHUNK * 64
UPLOAD_SIZE = 1024 * 1024
UPLOAD_BODY = b'u' * UPLOAD_SIZE
TIMEOUT = 15.0


@dataclass(frozen=True)
class Endpoint:
    """One endpoint every server serves, and how to tell its answer is right."""

    method: str
    path: str
    check: Callable[[http.client.HTTPResponse, bytes], Optional[str]]
    body: Optional[bytes] = None


def _expect_body(expected: bytes) -> Callable[[http.client.HTTPResponse, bytes], Optional[str]]:
    def check(response: http.client.HTTPResponse, body: bytes) -> Optional[str]:
        if body != expected:
            return f'body {_preview(body)}, expected {_preview(expected)}'
        return None

    return check


def _check_json(response: http.client.HTTPResponse, body: bytes) -> Optional[str]:
    content_type = response.getheader('Content-Type', '')
    if not content_type.startswith('application/json'):
        return f'Content-Type {content_type!r}, expected application/json'
    try:
        value = json.loads(body)
    except ValueError:
        return f'body {_preview(body)} is not JSON'
    if value != {'message': 'Hello, World!'}:
        return f'JSON {value!r}, expected {{"message": "Hello, World!"}}'
    return None


def _check_stream(response: http.client.HTTPResponse, body: bytes) -> Optional[str]:
    if 'chunked' not in response.getheader('Transfer-Encoding', '').lower():
        return 'not streamed: no Transfer-Encoding: chunked'
    if body != STREAM_BODY:
        return f'{len(body)} bytes of body, not the expected {len(STREAM_BODY)} (64 x 16 KiB)'
    return None


ENDPOINTS: dict[str, Endpoint] = {
    'hello': Endpoint('GET', '/', _expect_body(b'Hello, World!')),
    'json': Endpoint('GET', '/json', _check_json),
    'user': Endpoint('GET', '/user/42', _expect_body(b'User 42')),
    'stream': Endpoint('GET', '/stream', _check_stream),
    'upload': Endpoint('POST', '/upload', _expect_body(str(UPLOAD_SIZE).encode()), UPLOAD_BODY),
    'ws': Endpoint('GET', '/ws', _expect_body(b'')),  # checked by wsecho.validate_ws
}


def validate(port: int, endpoint_name: str, repeat: int = 2) -> Optional[str]:
    """None when ``repeat`` requests on one connection are answered right, else what is wrong."""
    if endpoint_name == 'ws':
        from .wsecho import validate_ws

        return validate_ws(port, ENDPOINTS['ws'].path)
    endpoint = ENDPOINTS[endpoint_name]
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=TIMEOUT)
    try:
        for attempt in range(repeat):
            headers = {'Content-Type': 'application/octet-stream'} if endpoint.body else {}
            connection.request(endpoint.method, endpoint.path, body=endpoint.body,
                               headers=headers)
            response = connection.getresponse()
            body = response.read()
            where = f'{endpoint.method} {endpoint.path}'
            if response.status != 200:
                return f'{where}: status {response.status} {_preview(body)}'
            problem = endpoint.check(response, body)
            if problem:
                return f'{where}: {problem}'
            if response.will_close and attempt < repeat - 1:
                return f'{where}: the server closed the connection (no keep-alive)'
    except (OSError, http.client.HTTPException) as exc:
        return f'{endpoint.method} {endpoint.path}: {type(exc).__name__}: {exc}'
    finally:
        connection.close()
    return None


def _preview(body: bytes, limit: int = 60) -> str:
    return repr(body[:limit]) + ('...' if len(body) > limit else '')
