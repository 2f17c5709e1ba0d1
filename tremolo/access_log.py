"""The access log's line: a preset, a template of named fields, or one JSON object per line.

A format is parsed and checked once, when the options are made (an unknown field is an error
naming the option), and compiled into one function of an `tremolo.telemetry.ExchangeRecord`
that the server calls as each exchange ends.

Templates use ``{field}`` for a field, ``{request_header:Name}`` and
``{response_header:Name}`` for any header, and ``{{``/``}}`` for literal braces. Values a
client chose (the target, headers, the user name) are escaped in text lines: a double quote, a
backslash and control characters become ``\\xHH``, so that a line can neither be split nor
forged. A missing value is ``-``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import string
import time
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    from .telemetry import ExchangeRecord

#: The named formats.
PRESETS = {
    'default': '{client} - "{request_line}" {status} {response_bytes}',
    # Apache's Common Log Format and its combined variant.
    'common': '{client_host} - {user} [{time}] "{request_line}" {status} {response_bytes}',
    'combined': '{client_host} - {user} [{time}] "{request_line}" {status} {response_bytes} '
                '"{referer}" "{user_agent}"',
}
JSON = 'json'

_UNSAFE = re.compile(r'["\\\x00-\x1f\x7f]')


def _escape(text: str) -> str:
    """A client's value, safe inside a log line (quotes, backslashes, control bytes)."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(lambda match: f'\\x{ord(match.group()):02x}', text)


def _address(value: Any) -> Optional[str]:
    if isinstance(value, tuple):
        return f'{value[0]}:{value[1]}'
    return str(value) if value else None


def _host(value: Any) -> Optional[str]:
    if isinstance(value, tuple):
        return str(value[0])
    return str(value) if value else None


def _request_header(record: ExchangeRecord, name: bytes) -> Optional[str]:
    value = record.request.head.headers.get(name)
    return value.decode('latin-1') if value is not None else None


def _user(record: ExchangeRecord) -> Optional[str]:
    """``context.user`` if a middleware set it, else the user of Basic credentials."""
    context = record.request.context
    user = getattr(context, 'user', None) if context is not None else None
    if user is not None:
        return str(user)
    authorization = record.request.head.headers.get(b'authorization')
    if authorization is None or authorization[:6].lower() != b'basic ':
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded.partition(b':')[0].decode('utf-8', 'replace') or None


def _request_id(record: ExchangeRecord) -> Optional[str]:
    value = record.request.id  # set by a middleware (RequestID)
    if value is None:
        value = record.response.headers.get('X-Request-ID')
    return value if value is not None else _request_header(record, b'x-request-id')


def _clf_time(record: ExchangeRecord) -> str:
    return time.strftime('%d/%b/%Y:%H:%M:%S %z', time.localtime(record.started))


def _iso_time(record: ExchangeRecord) -> str:
    started = record.started
    stamp = time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(started))
    zone = time.strftime('%z', time.localtime(started))
    return f'{stamp}.{int(started % 1 * 1000):03d}{zone[:3]}:{zone[3:]}'


def _target(record: ExchangeRecord) -> str:
    return record.request.head.target.decode('ascii', 'replace')


def _pid(record: ExchangeRecord) -> int:
    return os.getpid()


#: Every field: ``name: (getter, client_chosen, help)``. A getter returns the value (``None``
#: when missing); client-chosen values are escaped in text lines.
FIELDS: dict[str, tuple[Callable[[ExchangeRecord], Any], bool, str]] = {
    'client': (lambda r: _address(r.request.client), False,
               "the client's address, host:port (through trusted proxies: the client they "
               'name); - on a UNIX socket'),
    'client_host': (lambda r: _host(r.request.client), False, "the client's host alone"),
    'remote_addr': (lambda r: _host(r.request.connection.peer), False,
                    'the address at the other end of the socket (a proxy, behind one)'),
    'user': (_user, True, 'context.user if a middleware set it, else the user name of Basic '
                          'credentials'),
    'time': (_clf_time, False, 'when the request arrived, as 10/Oct/2025:13:55:36 +0200'),
    'time_iso': (_iso_time, False, 'the same in ISO 8601, 2025-10-10T13:55:36.123+02:00'),
    'method': (lambda r: r.request.method, False, 'GET, POST...'),
    'target': (_target, True, 'the request target as received, query included'),
    'path': (lambda r: r.request.path, True, 'the decoded path'),
    'query': (lambda r: r.request.query_string or None, True,
              'the query string, still percent-encoded'),
    'protocol': (lambda r: f'HTTP/{r.request.version}', False, 'HTTP/1.1 or HTTP/1.0'),
    'request_line': (lambda r: f'{r.request.method} {_target(r)} HTTP/{r.request.version}',
                     True, 'method, target and protocol'),
    'route': (lambda r: r.request.route, False, 'the template of the route that matched'),
    'status': (lambda r: r.status, False,
               'the status sent; 499 when the client left before any answer'),
    'response_bytes': (lambda r: r.response_bytes, False, 'bytes of the response body sent'),
    'request_bytes': (lambda r: r.request_bytes, False, 'bytes of the request body received'),
    'duration': (lambda r: round(r.duration, 6), False,
                 'seconds from the request head to the end of the response'),
    'duration_ms': (lambda r: round(r.duration * 1000, 3), False, 'the same in milliseconds'),
    'duration_us': (lambda r: int(r.duration * 1_000_000), False,
                    'the same in microseconds'),
    'complete': (lambda r: r.complete, False,
                 'whether the whole response was sent (false: cut short)'),
    'referer': (lambda r: _request_header(r, b'referer'), True, 'the Referer header'),
    'user_agent': (lambda r: _request_header(r, b'user-agent'), True,
                   'the User-Agent header'),
    'request_id': (_request_id, True,
                   "the request's id (request.id, set by RequestID), else the X-Request-ID "
                   'of the response, else of the request'),
    'pid': (_pid, False, "the worker's process id"),
}

#: The keys of a JSON line, in order: every field that is not a header.
JSON_FIELDS = (
    'time_iso', 'client', 'remote_addr', 'user', 'method', 'target', 'path', 'query',
    'protocol', 'route', 'status', 'request_bytes', 'response_bytes', 'duration_ms', 'complete',
    'referer', 'user_agent', 'request_id', 'pid',
)

_HEADER_FIELDS = ('request_header', 'response_header')

Piece = Callable[['ExchangeRecord'], str]


def _text(value: Any, client_chosen: bool) -> str:
    if value is None or value == '':
        return '-'
    if value is True or value is False:
        return 'true' if value else 'false'
    text = str(value)
    return _escape(text) if client_chosen else text


def _field_piece(name: str, spec: str, where: str) -> Piece:
    if name in _HEADER_FIELDS:
        if not spec or _UNSAFE.search(spec) or ' ' in spec:
            raise ValueError(f'{where}: {{{name}:NAME}} needs a header name, e.g. '
                             f'{{{name}:X-Request-ID}}')
        if name == 'request_header':
            key = spec.lower().encode('latin-1')
            return lambda record: _text(_request_header(record, key), True)
        return lambda record: _text(record.response.headers.get(spec), True)
    entry = FIELDS.get(name)
    if entry is None:
        raise ValueError(f'{where}: unknown field {{{name}}}; the fields are '
                         f'{", ".join(sorted(FIELDS))}, request_header:NAME and '
                         'response_header:NAME')
    if spec:
        raise ValueError(f'{where}: field {{{name}}} takes no format ({spec!r})')
    getter, client_chosen, _ = entry
    return lambda record: _text(getter(record), client_chosen)


def _literal(text: str) -> Piece:
    return lambda record: text


def compile_format(spec: str, option: str = 'access_log_format'
                   ) -> Callable[[ExchangeRecord], str]:
    """The function that writes the line of one exchange in the format ``spec``: a preset
    name, ``'json'``, or a template.

    Raises:
        ValueError: An unknown preset or field, or a malformed template, naming ``option``.
    """
    if not isinstance(spec, str):
        raise TypeError(f'option {option!r} must be a string, not {spec!r}')
    if spec == JSON:
        return _json_line
    where = f'option {option!r}'
    template = PRESETS.get(spec, spec)
    if '{' not in template:
        raise ValueError(f'{where}: {spec!r} is neither a preset ({", ".join(PRESETS)}, '
                         f'{JSON}) nor a template of {{fields}}')
    pieces: list[Piece] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f'{where}: {exc} in {template!r}') from None
    for literal, name, spec_, conversion in parsed:
        if literal:
            pieces.append(_literal(literal))
        if name is None:
            continue
        if conversion:
            raise ValueError(f'{where}: {{{name}!{conversion}}}: conversions are not '
                             'supported')
        pieces.append(_field_piece(name, spec_ or '', where))
    line = pieces[0] if len(pieces) == 1 else (
        lambda record: ''.join([piece(record) for piece in pieces]))
    if spec == 'default':
        return _with_request_id(line)
    return line


def _with_request_id(line: Callable[[ExchangeRecord], str]) -> Callable[[ExchangeRecord], str]:
    """The default line, ended by `` id=...`` when a middleware gave the request an id."""

    def write(record: ExchangeRecord) -> str:
        request_id = record.request.id
        if request_id is None:
            return line(record)
        return f'{line(record)} id={_text(request_id, True)}'

    return write


def _json_line(record: ExchangeRecord) -> str:
    values: dict[str, Any] = {}
    for name in JSON_FIELDS:
        value = FIELDS[name][0](record)
        values['time' if name == 'time_iso' else name] = None if value == '' else value
    return json.dumps(values, separators=(',', ':'), ensure_ascii=False)
