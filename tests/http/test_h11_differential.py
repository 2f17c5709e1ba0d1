"""Property tests: the parser against h11 on generated requests, and against the grammar.

Requests are generated from the RFC 9112 grammar (valid ones), then varied where parsers are
known to disagree (versions, target forms, Host values, CL/TE combinations, obfuscated
Transfer-Encoding, chunk lines, trailers, whitespace and line endings) and sometimes mutated at
one byte. Each one goes through Tremolo's HeadReader and body decoders (whole and cut at random
places, which must agree) and through h11 on the same bytes. Both verdicts (accepted with the
parsed method, target, version, fields, body and trailers; rejected; incomplete) must be equal,
or the difference must be one of `KNOWN_DIFFERENCES`: the one place where every deliberate
difference is listed, each with the rule it follows.

Examples per property: 400 under ``make test``; ``make fuzz`` runs the ``fuzz`` profile
(``TREMOLO_HYPOTHESIS_PROFILE=fuzz``, 20,000 examples).
"""

from __future__ import annotations

import os
import re
from typing import Callable, NamedTuple, Optional

import h11
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tremolo.http.head import FORBIDDEN_TRAILERS

from ..fuzz.fuzz_parser import drive

settings.register_profile(
    'default', max_examples=400, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    'fuzz', max_examples=20_000, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get('TREMOLO_HYPOTHESIS_PROFILE', 'default'))


# -- the two verdicts -----------------------------------------------------------------------------

class Verdict(NamedTuple):
    """What a parser made of the first request in the bytes."""

    kind: str  # 'accepted', 'rejected' or 'incomplete'
    request: Optional[tuple] = None  # (method, target, version, fields, length, chunked)
    body: bytes = b''
    trailers: tuple = ()
    reason: str = ''  # the rejection message
    status: int = 0


def _fields(pairs: list[tuple[bytes, bytes]], trailers: bool = False) -> tuple:
    """Fields combined as Tremolo combines them, without the framing fields (compared through
    the framing they decide) and, in trailers, without the fields Tremolo drops."""
    combined: dict[bytes, bytes] = {}
    for name, value in pairs:
        name = name.lower()
        if name in (b'content-length', b'transfer-encoding'):
            continue
        if trailers and name in FORBIDDEN_TRAILERS:
            continue
        if name in combined:
            value = combined[name] + (b'; ' if name == b'cookie' else b', ') + value
        combined[name] = value
    return tuple(sorted(combined.items()))


def tremolo_verdict(data: bytes, cuts: list[int]) -> Verdict:
    events = drive(data, cuts)
    assert events == drive(data, []), 'the verdict depends on how the bytes were cut'
    first = events[0]
    if first[0] == 'error':
        return Verdict('rejected', status=first[1], reason=first[2])
    if first[0] == 'waiting':
        return Verdict('incomplete')
    _, method, target, version, headers, length, chunked, *_ = first
    request = (method.encode(), target, version.encode(), _fields(list(headers.items())),
               length or 0, chunked)
    if not (length or chunked):
        return Verdict('accepted', request)
    second = events[1]
    if second[0] == 'error':
        return Verdict('rejected', status=second[1], reason=second[2])
    if second[0] == 'waiting':
        return Verdict('incomplete')
    return Verdict('accepted', request, second[1], _fields(list(second[2].items()), True))


def h11_verdict(data: bytes) -> Verdict:
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(data)
    request = None
    body = []
    try:
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                return Verdict('incomplete')
            if isinstance(event, h11.Request):
                framing = dict(event.headers)
                request = (event.method, event.target, event.http_version,
                           _fields(list(event.headers)),
                           int(framing.get(b'content-length', b'0')),
                           b'transfer-encoding' in framing)
            elif isinstance(event, h11.Data):
                body.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return Verdict('accepted', request, b''.join(body),
                               _fields(list(event.headers), True))
    except h11.RemoteProtocolError as exc:
        return Verdict('rejected', status=exc.error_status_hint, reason=str(exc))


# -- the deliberate differences -------------------------------------------------------------------

_BARE_LF = re.compile(rb'(?<!\r)\n')
_CONTROL = re.compile(rb'[\x01-\x08\x0e-\x1f\x7f]')


def _in_trailers(data: bytes) -> bool:
    """Whether a framing field follows a last chunk (a trailer section)."""
    return bool(re.search(rb'(?i)\n0+[^\n]*\n(?:[^\n]*\n)*(?:content-length|transfer-encoding)',
                          data))


class Case(NamedTuple):
    data: bytes
    ours: Verdict
    theirs: Verdict

    def we_reject(self, *reasons: str) -> bool:
        return self.ours.kind == 'rejected' and self.theirs.kind != 'rejected' and any(
            self.ours.reason.startswith(reason) for reason in reasons)

    def they_reject(self, *reasons: str) -> bool:
        return self.theirs.kind == 'rejected' and self.ours.kind != 'rejected' and any(
            reason in self.theirs.reason for reason in reasons)

    @property
    def their_version(self) -> bytes:
        return self.theirs.request[2] if self.theirs.request else b''


def known_difference(case: Case) -> Optional[str]:
    """The name of the deliberate difference that explains ``case``, or ``None``."""
    for name, applies in KNOWN_DIFFERENCES:
        if applies(case):
            return name
    return None


KNOWN_DIFFERENCES: list[tuple[str, Callable[[Case], bool]]] = [
    # RFC 9112 §2.2: a recipient MAY accept a bare LF as a line terminator; Tremolo rejects it
    # (400) everywhere (request line, fields, chunk lines, trailers): parsers that disagree on
    # line ends are how requests get smuggled past a proxy. h11 accepts it in heads and trailers.
    ('bare LF', lambda c: c.we_reject('bare LF', 'bare CR or LF')
     and bool(_BARE_LF.search(c.data))),
    # RFC 9112 §5.2: obs-fold in a request is rejected with 400 (allowed); h11 unfolds it.
    ('obs-fold', lambda c: c.we_reject('obsolete line folding')
     and bool(re.search(rb'\n[ \t]', c.data))),
    # RFC 9110 §5.5: field-vchar = VCHAR / obs-text; control bytes other than HTAB are outside
    # the grammar. h11 admits every byte but NUL and whitespace.
    ('control byte in a field value', lambda c: c.we_reject('invalid byte in field value')
     and bool(_CONTROL.search(c.data))),
    # RFC 9110 §15.6.6: 505 for a major version other than 1; h11 accepts any DIGIT.DIGIT.
    ('HTTP major version other than 1', lambda c: c.we_reject('HTTP version not supported')
     and c.their_version[:2] != b'1.'),
    # RFC 9112 §2.3: HTTP/1.2+ is served as HTTP/1.1 (h11 reports the minor as received, and
    # therefore does not ask such a request for the Host that HTTP/1.1 requires, §3.2).
    ('HTTP/1.x minor above 1 served as 1.1', lambda c: c.their_version[:2] == b'1.'
     and c.their_version > b'1.1' and (
         c.we_reject('missing Host header') or (
             c.ours.kind == 'accepted' and c.ours.request[2] == b'1.1'
             and c.ours._replace(request=c.ours.request[:2] + c.ours.request[3:])
             == c.theirs._replace(request=c.theirs.request[:2] + c.theirs.request[3:])))),
    # RFC 9112 §3.2: origin-form, absolute-form (http/https, RFC 9110 §4.2: no userinfo, a
    # non-empty host), asterisk-form for OPTIONS only, none with a fragment; h11 accepts any
    # run of VCHARs.
    ('request-target form', lambda c: c.we_reject(
        'malformed request target', 'asterisk-form', 'userinfo', 'empty host in the request',
        'fragment in the request target')
     or (c.we_reject('invalid Host', 'invalid IPv6') and c.theirs.request is not None
         and c.theirs.request[1][:1] not in (b'/', b'*'))),
    # RFC 9112 §3.2: 400 for an invalid Host value (RFC 3986 §3.2.2 syntax); h11 does not
    # look at it.
    ('Host syntax', lambda c: c.we_reject('invalid Host', 'invalid IPv6')),
    # RFC 9110 §9.3.6: CONNECT (tunnelling) is not implemented: 501. h11 hands it over.
    ('CONNECT', lambda c: c.ours.status == 501 and c.we_reject('CONNECT')),
    # RFC 9110 §10.1.1: an expectation other than 100-continue gets 417.
    ('Expect', lambda c: c.we_reject('unsupported expectation')),
    # RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing: 400 (h11 accepts).
    ('Transfer-Encoding in HTTP/1.0', lambda c: c.we_reject('Transfer-Encoding in an HTTP/1.0')),
    # RFC 9112 §6.3 (3), §11.2: both Content-Length and Transfer-Encoding "ought to be handled
    # as an error": 400 and close. h11 lets Transfer-Encoding win.
    ('Content-Length with Transfer-Encoding', lambda c: c.we_reject('both Transfer-Encoding')),
    # Content-Length above 18 significant digits (2**63 cannot be represented by every peer):
    # 413; h11 allows 20 digits, leading zeros included...
    ('Content-Length digits', lambda c: c.we_reject('Content-Length too large')
     or c.they_reject('bad Content-Length')),
    # RFC 9112 §7.1.1: BWS only around ';' and '=' of a chunk extension, and extensions must
    # follow their grammar; h11 allows trailing OWS and takes anything after ';'.
    ('chunk size line grammar', lambda c: c.we_reject('malformed chunk size line')),
    # Chunk sizes: at most 16 significant hex digits (2**64 - 1), any number of leading zeros
    # (RFC 9112 §7.1: 1*HEXDIG); h11 allows 20 digits, leading zeros included.
    ('chunk size digits', lambda c: c.we_reject('chunk size too large')
     or (c.they_reject('illegal chunk header')
         and bool(re.search(rb'\n[0-9A-Fa-f]{21}', c.data)))),
    # RFC 9112 §7.1.1: BWS is allowed before the ';' of a chunk extension; h11 refuses it.
    ('BWS before a chunk extension', lambda c: c.they_reject('illegal chunk header')
     and bool(re.search(rb'\n[0-9A-Fa-f]+[ \t]+;', c.data))),
    # RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line
    # (Tremolo ignores four); h11 rejects the first one.
    ('empty lines before the request line', lambda c: c.they_reject('no request line')
     and c.data.startswith(b'\r\n')),
    # RFC 9110 §5.6.1: empty list elements are ignored, so "chunked," is chunked, and several
    # Transfer-Encoding lines form one list (§5.3); h11 wants exactly one "chunked" line.
    ('Transfer-Encoding list', lambda c: c.they_reject(
        'multiple Transfer-Encoding', 'Only Transfer-Encoding: chunked')),
    # h11 rejects some heads before their end (a request line that cannot be one, a leading
    # empty line); Tremolo parses a head once it is complete, and the wait is bounded by
    # max_header_size (431) and header_timeout (408). Only bare LFs are rejected early, since a
    # client that ends lines with LF alone would otherwise wait for a CRLFCRLF it never sends.
    ('h11 rejects an incomplete head early', lambda c: c.ours.kind == 'incomplete'
     and c.theirs.kind == 'rejected' and c.theirs.reason in (
         'illegal request line', 'no request line received')),
    # RFC 9110 §6.5.1: framing fields in a trailer section are dropped, not validated; h11
    # validates a trailer Content-Length or Transfer-Encoding like a header one.
    ('framing fields in trailers', lambda c: c.they_reject(
        'Content-Length', 'Transfer-Encoding') and _in_trailers(c.data)),
]


# -- generated requests ---------------------------------------------------------------------------

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _bytes(alphabet: str, min_size: int = 0, max_size: int = 12) -> st.SearchStrategy[bytes]:
    return st.text(alphabet, min_size=min_size, max_size=max_size).map(str.encode)


tokens = _bytes(TCHAR, 1, 10)
# Each variation point is a pair: what the grammar produces, and the odd inputs parsers
# disagree on. `Maker.pick` takes the odd side only in "wild" requests, and then rarely, so most
# requests stay close enough to valid to reach the framing and body checks.
METHOD = (st.one_of(st.sampled_from([b'GET', b'POST', b'PUT', b'DELETE', b'PATCH']), tokens),
          st.sampled_from([b'CONNECT', b'G@T', b'', b'G\xc3\x89T', b'OPTIONS']))
PATH = _bytes("abcXYZ019-._~%!$&'()*+,;=:@/?", max_size=16)
REG_NAME = _bytes("abcz09-._~!$&'()*+,;=", max_size=10)
HOST = (st.one_of(REG_NAME, st.sampled_from([b'a.test', b'127.0.0.1', b'[::1]', b'[v1.x]'])),
        st.sampled_from([b'[1::2::3]', b'a b', b'a/b', b'u@a', b'a:1:2', b'\xe9', b'%zz',
                         b'[::1']))
PORT = (st.sampled_from([b'', b':8080', b':', b':0080']), st.sampled_from([b':x', b'::1']))
TARGET_ODD = st.one_of(
    st.sampled_from([b'*', b'a.test:443', b'a/b', b'/a b', b'/\x00', b'/|^`{}"<>[]\\',
                     b'http:///x', b'http://:80/', b'http://a#f', b'/a#f', b'/?q#']),
    st.tuples(st.sampled_from([b'ftp://', b'http://user@']), REG_NAME).map(b''.join),
)
VERSION = (st.sampled_from([b'HTTP/1.1', b'HTTP/1.1', b'HTTP/1.0']),
           st.sampled_from([b'HTTP/1.2', b'HTTP/1.9', b'HTTP/2.0', b'HTTP/0.9', b'http/1.1',
                            b'HTTP/1', b'HTTP/1.1x']))
SP = (st.just(b' '), st.sampled_from([b'  ', b'\t']))
COLON = (st.sampled_from([b':', b': ', b':\t', b': \t']), st.sampled_from([b' :', b'\t:']))
EOL = (st.just(b'\r\n'), st.sampled_from([b'\n', b'\r', b'\r\r\n']))
NAME = (tokens, st.sampled_from([b'X Y', b'', b'X\xe9', b'X(y)', b' X', b'X:']))
VALUE = (
    st.one_of(_bytes(''.join(chr(c) for c in range(0x20, 0x7f)), max_size=16),
              st.sampled_from([b'caf\xc3\xa9', b'a\tb', b'  padded  ', b'\x80\xff'])),
    st.sampled_from([b'\x7f', b'\x01', b'a\x00b', b'\x1b[0m', b'a\x0bb']),
)
TE = (st.sampled_from([b'chunked', b'Chunked', b' chunked', b'chunked ', b'CHUNKED']),
      st.sampled_from([b'chunked, chunked', b'gzip, chunked', b'chunked, gzip', b'gzip',
                       b'xchunked', b', chunked', b'chunked,', b'"chunked"', b'chunked;q=1',
                       b'identity', b'', b'\x0bchunked']))
CL = (st.sampled_from(['%d', '00%d', '%d, %d']),
      st.sampled_from(['+%d', '%d.0', '%d,', '-%d', '0x%d', '%d %d', '1%d', '']))
CHUNK_EXT = (st.sampled_from([b'', b'', b';a', b';a=b', b';a="q;\\"x"', b' ; a = b', b'\t;a']),
             st.sampled_from([b' ', b'\t', b';', b';a=', b';a b', b';a=b ', b';\x01']))
LAST_CHUNK = (st.sampled_from([b'0', b'000', b'0;e=1']), st.sampled_from([b'0 ', b'00x', b'']))
TRAILER_NAME = (st.one_of(tokens, st.just(b'Server-Timing')),
                st.sampled_from([b'Content-Length', b'Transfer-Encoding', b'Host', b'X Y']))


class Maker:
    """Draws the parts of one request; ``wild`` requests take odd variants now and then."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw
        self.wild = draw(st.booleans())

    def pick(self, pair: tuple[st.SearchStrategy, st.SearchStrategy]):
        odd = self.wild and self.draw(st.integers(0, 24)) == 0
        return self.draw(pair[1] if odd else pair[0])

    def chance(self, one_in: int) -> bool:
        return self.draw(st.integers(1, one_in)) == 1

    def target(self) -> bytes:
        if self.wild and self.chance(10):
            return self.draw(TARGET_ODD)
        if self.chance(6):  # absolute-form
            scheme = self.draw(st.sampled_from([b'http://', b'https://', b'HTTP://']))
            return scheme + self.host() + b'/' + self.draw(PATH)
        return b'/' + self.draw(PATH)

    def host(self) -> bytes:
        host = self.pick(HOST)
        return (host or b'h') + self.pick(PORT)

    def field(self, name: bytes, value: bytes) -> bytes:
        return name + self.pick(COLON) + value + self.pick(EOL)

    def chunked(self) -> tuple[bytes, bytes]:
        """A chunked coding of a random body, random chunking, extensions and trailers."""
        draw = self.draw
        body = draw(st.binary(max_size=64))
        wire = b''
        position = 0
        while position < len(body):
            size = draw(st.integers(1, len(body) - position))
            digits = draw(st.sampled_from(['%x', '%X', '%04x', '0%x'])) % size
            wire += digits.encode() + self.pick(CHUNK_EXT) + self.pick(EOL)
            wire += body[position:position + size] + self.pick(EOL)
            position += size
        wire += self.pick(LAST_CHUNK) + self.pick(CHUNK_EXT) + self.pick(EOL)
        for _ in range(draw(st.integers(0, 2))):
            wire += self.field(self.pick(TRAILER_NAME), self.pick(VALUE))
        return wire + self.pick(EOL), body


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """A request built from the grammar with random variations, sometimes mutated."""
    make = Maker(draw)
    leading = draw(st.sampled_from([b'\r\n', b'\n', b'\r\n\r\n'])) if make.chance(12) else b''
    head = leading + make.pick(METHOD) + make.pick(SP) + make.target() + make.pick(SP)
    head += make.pick(VERSION) + make.pick(EOL)
    fields = []
    hosts = 1 if not make.wild or not make.chance(8) else draw(st.sampled_from([0, 2]))
    fields += [make.field(b'Host', make.host()) for _ in range(hosts)]
    for _ in range(draw(st.integers(0, 3))):
        fields.append(make.field(make.pick(NAME), make.pick(VALUE)))
        if make.wild and make.chance(20):
            fields.append(b' folded' + make.pick(EOL))
    framing = draw(st.sampled_from(['none', 'length', 'chunked']))
    if make.wild and make.chance(10):
        framing = 'both'
    body = b''
    if framing in ('length', 'both'):
        body = draw(st.binary(max_size=32))
        fields.append(make.field(b'Content-Length', make.pick(CL).replace(
            '%d', str(len(body))).encode()))
        if make.wild and make.chance(10):
            fields.append(make.field(b'Content-Length', b'%d' % draw(st.integers(0, 40))))
    if framing in ('chunked', 'both'):
        body = make.chunked()[0]
        for _ in range(2 if make.wild and make.chance(8) else 1):
            fields.append(make.field(b'Transfer-Encoding', make.pick(TE)))
    if make.chance(8):
        fields.append(make.field(*draw(st.sampled_from([
            (b'Expect', b'100-continue'), (b'Expect', b'nope'), (b'Connection', b'close'),
            (b'Connection', b'keep-alive'), (b'Cookie', b'a=1'), (b'Cookie', b'b=2')]))))
    data = head + b''.join(draw(st.permutations(fields))) + make.pick(EOL) + body
    data += draw(st.sampled_from([b'', b'GET /next HTTP/1.1\r\nHost: a\r\n\r\n', b'X']))
    if make.wild and make.chance(5):
        position = draw(st.integers(0, len(data) - 1))
        byte = bytes([draw(st.integers(0, 255))])
        data = draw(st.sampled_from([
            data[:position] + byte + data[position + 1:],  # replace
            data[:position] + byte + data[position:],  # insert
            data[:position] + data[position + 1:],  # delete
        ]))
    return data


def _cuts(data: bytes) -> st.SearchStrategy[list[int]]:
    if len(data) < 2:
        return st.just([])
    return st.lists(st.integers(1, len(data) - 1), max_size=5, unique=True).map(sorted)


# -- the properties -------------------------------------------------------------------------------

@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.data())
def test_same_verdict_as_h11_or_a_known_difference(data):
    raw = data.draw(requests(), label='request')
    cuts = data.draw(_cuts(raw), label='cuts')
    case = Case(raw, tremolo_verdict(raw, cuts), h11_verdict(raw))
    if case.ours == case.theirs._replace(status=case.ours.status, reason=case.ours.reason):
        return
    if case.ours.kind == case.theirs.kind == 'rejected':
        return  # both refuse; the status may differ (e.g. 400 and 501 for an unknown coding)
    assert known_difference(case), f'unexplained difference:\n{raw!r}\n{case.ours}\n{case.theirs}'
