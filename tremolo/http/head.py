"""The request head: request line and header fields (RFC 9112 §2, §3, §5).

A `HeadReader` looks for a complete head in a buffer that its caller owns and turns it into
a `RequestHead`, or raises a `ParseError` naming the status to
answer with. It never consumes body bytes: the framing it decides (`RequestHead.chunked`,
`RequestHead.content_length`) tells the caller which body decoder to use next.
"""

from __future__ import annotations

import re

from .errors import (
    BadRequest,
    ExpectationFailed,
    HeaderFieldsTooLarge,
    NotImplementedByServer,
    ParseError,
    PayloadTooLarge,
    URITooLong,
    VersionNotSupported,
)
from .target import absolute_form_authority, check_host

# RFC 9110 §5.6.2: token = 1*tchar.
_TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
_METHOD = re.compile(rb'[%s]+' % _TCHAR)
# RFC 9112 §3.2: the request target holds no whitespace or control bytes; we also refuse bytes
# above 0x7e, which RFC 3986 only allows percent-encoded.
_TARGET = re.compile(rb'[\x21-\x7e]+')
# RFC 9112 §2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT, HTTP-name case-sensitive.
_VERSION = re.compile(rb'HTTP/([0-9])\.([0-9])')
# RFC 9112 §3.2: a request-target carries no fragment (a client strips it, RFC 9110 §7.1), so
# the fast path stops at '#' (0x23) and the long way answers 400 for it.
_ORIGIN_FORM_LINE = re.compile(rb'([%s]+) (/[\x21\x22\x24-\x7e]*) HTTP/1\.([0-9])' % _TCHAR)
_METHOD_NAMES = {
    name.encode(): name
    for name in ('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE')
}
# RFC 9110 §5.5: field-value = *( field-vchar / SP / HTAB ), field-vchar = VCHAR / obs-text.
# One header line is ``name ":" OWS value OWS CRLF``. The whole header block is checked by one
# fullmatch: the classes are disjoint (no ':' in a name, no CR/LF in a value) so the match is
# linear and rejects obs-fold (a line starting with whitespace), whitespace before the colon,
# bare CR or LF, NUL and other control bytes in one pass.
_FIELD_VALUE = rb'[\t\x20-\x7e\x80-\xff]*'
HEADER_BLOCK = re.compile(rb'(?:[%s]+:%s\r\n)*' % (_TCHAR, _FIELD_VALUE))
_CONTENT_LENGTH = re.compile(rb'[0-9]+')
# 18 digits keep the value below 2**63, which every peer and every seek() can represent.
_MAX_CONTENT_LENGTH_DIGITS = 18

_HTTP11 = '1.1'
_HTTP10 = '1.0'


class RequestHead:
    """A parsed request line and header section.

    Attributes:
        method: The request method, e.g. ``'GET'`` (case-sensitive, RFC 9110 §9.1).
        target: The request target exactly as received, e.g. ``b'/a?b=1'``.
        version: ``'1.1'`` or ``'1.0'``.
        headers: Field values keyed by lower-cased field name. Repeated fields are combined with
            ``', '`` as RFC 9110 §5.3 allows (``cookie`` with ``'; '``, RFC 6265 §5.4).
        content_length: The body length when framed by Content-Length, else ``None``.
        chunked: Whether the body uses the chunked transfer coding.
        keep_alive: Whether the client allows the connection to persist after this exchange.
        expect_continue: Whether the client waits for ``100 Continue`` before sending the body.
        upgrade: The ``Upgrade`` field value (lower-cased) when the client asks for one.
        host: The host the request is for, ``host[:port]``: the authority of an absolute-form
            target, else the ``Host`` field (RFC 9112 §3.2.2); ``b''`` when an HTTP/1.0
            request names none. Its syntax has been checked (RFC 3986 §3.2.2).
    """

    __slots__ = (
        'method', 'target', 'version', 'headers', 'content_length', 'chunked', 'keep_alive',
        'expect_continue', 'upgrade', 'host',
    )

    def __init__(
        self, method: str, target: bytes, version: str, headers: dict[bytes, bytes]
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.content_length: int | None = None
        self.chunked = False
        self.keep_alive = version == _HTTP11
        self.expect_continue = False
        self.upgrade: bytes | None = None
        self.host = b''

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    def __repr__(self) -> str:
        return f'<RequestHead {self.method} {self.target!r} HTTP/{self.version}>'


class HeadReader:
    """Finds and parses request heads in a caller-owned buffer.

    Args:
        max_request_line: Longest request line accepted, in bytes (414 above it).
        max_head_size: Longest head (request line and all fields) accepted, in bytes (431).
        max_header_count: Most header fields accepted (431 above it).
    """

    __slots__ = ('max_request_line', 'max_head_size', 'max_header_count', '_scanned')

    def __init__(
        self, max_request_line: int = 8190, max_head_size: int = 16384,
        max_header_count: int = 100,
    ) -> None:
        self.max_request_line = max_request_line
        self.max_head_size = max_head_size
        self.max_header_count = max_header_count
        # Where the next search for the end of the head starts: re-scanning the whole buffer on
        # every read would make a head sent byte by byte cost O(n**2).
        self._scanned = 0

    def read(self, buffer: bytes) -> tuple[RequestHead, int] | None:
        """Parse the head at the start of ``buffer``.

        Returns:
            ``(head, consumed)`` where ``consumed`` counts the bytes of the head (including any
            empty lines before it), or ``None`` while the head is incomplete.

        Raises:
            ParseError: The head is malformed or exceeds a limit.
        """
        # RFC 9112 §2.2: a server SHOULD ignore at least one empty line received before the
        # request line. They are skipped before looking for the end of the head: searching from
        # 0 took the CRLFCRLF of two empty lines for that end, and the offsets of the recursive
        # call that handled it then misled the next search into reporting a bare LF.
        start = 0
        while buffer.startswith(b'\r\n', start):
            start += 2
            if start > 8:
                raise BadRequest('too many empty lines before the request line')
        scanned = max(self._scanned, start)
        end = buffer.find(b'\r\n\r\n', scanned)
        if end == -1:
            self._check_incomplete(buffer, start, scanned)
            return None
        self._scanned = 0
        line_end = buffer.find(b'\r\n', start, end + 2)
        # The request line is checked first so that an overlong one gets the same 414 whether the
        # head arrives whole or in pieces (_check_incomplete sees the line before the head ends).
        if line_end - start > self.max_request_line:
            raise URITooLong('request line too long')
        if end - start > self.max_head_size:
            raise HeaderFieldsTooLarge('request head too large')
        try:
            head = parse_request_line(buffer[start:line_end], self.max_request_line)
            if line_end < end:
                parse_fields(buffer[line_end + 2:end + 2], head, self.max_header_count)
        except ParseError:
            # A bare LF anywhere in the head is the error, whatever else is wrong: a head that
            # arrives in pieces is rejected for it by _check_incomplete before its end is seen,
            # and the answer must not depend on how the bytes were segmented (a CONNECT line
            # followed by a bare LF would otherwise get 501 whole and 400 in pieces). Only
            # looked for on this error path: the grammars of a parsed head exclude a bare LF.
            if buffer.count(b'\n', start, end) != buffer.count(b'\r\n', start, end):
                raise BadRequest('bare LF in request head') from None
            raise
        check_framing(head)
        return head, end + 4

    def _check_incomplete(self, buffer: bytes, start: int, scanned: int) -> None:
        size = len(buffer)
        self._scanned = max(0, size - 3)
        # Limits are measured as read() measures them on a complete head, which may still be
        # missing its last bytes here: the request line its CR, the head up to 3 bytes of its
        # final CRLFCRLF. Otherwise a head exactly at a limit would be accepted whole but
        # rejected when it arrives in pieces.
        line_end = buffer.find(b'\n', start)
        if line_end == -1:
            if size - start > self.max_request_line + 1:
                raise URITooLong('request line too long')
            if size - start > self.max_head_size + 3:
                raise HeaderFieldsTooLarge('request head too large')
            return
        # RFC 9112 §2.2 lets a server reject a bare LF; we do, in the request line and in any
        # field line, rather than waiting for a CRLFCRLF that such a client never sends. LF LF
        # and LF CRLF both end a head for a client that sends bare LFs; only the bytes not
        # searched by the previous call are searched again, so the scan stays O(n) overall.
        if (
            buffer[line_end - 1:line_end] != b'\r'
            or buffer.find(b'\n\n', scanned) != -1
            or buffer.find(b'\n\r\n', scanned) != -1
        ):
            raise BadRequest('bare LF in request head')
        if line_end - 1 - start > self.max_request_line:
            raise URITooLong('request line too long')
        if size - start > self.max_head_size + 3:
            raise HeaderFieldsTooLarge('request head too large')


def parse_request_line(line: bytes, max_length: int = 8190) -> RequestHead:
    """Parse ``method SP request-target SP HTTP-version`` (RFC 9112 §3)."""
    if len(line) > max_length:
        raise URITooLong('request line too long')
    # The common case (origin-form, HTTP/1.x) in one match; anything else takes the long way,
    # which finds the precise error.
    match = _ORIGIN_FORM_LINE.fullmatch(line)
    if match is not None:
        method, target, minor = match.groups()
        if method != b'CONNECT':
            name = _METHOD_NAMES.get(method) or method.decode('ascii')
            # RFC 9112 §2.3: a higher minor version is served as the highest we implement.
            return RequestHead(name, target, _HTTP10 if minor == b'0' else _HTTP11, {})
    parts = line.split(b' ')
    if len(parts) != 3:
        raise BadRequest('malformed request line')
    method, target, version = parts
    version_str = _parse_version(version)
    if _METHOD.fullmatch(method) is None:
        raise BadRequest('malformed method')
    if method == b'CONNECT':
        # Checked before the target: CONNECT is refused whatever its target looks like, instead
        # of an origin-form CONNECT reaching the handlers as an ordinary request (RFC 9110
        # §9.3.6 gives it a tunnel semantics this server does not implement).
        raise NotImplementedByServer('CONNECT is not supported')
    if _TARGET.fullmatch(target) is None:
        raise BadRequest('malformed request target')
    if b'#' in target:
        # RFC 9112 §3.2: no form of request-target has a fragment; answering the path before
        # the '#' would serve a resource the client never named.
        raise BadRequest('fragment in the request target')
    head = RequestHead(method.decode('ascii'), target, version_str, {})
    if target[0] != 47:  # '/': not origin-form
        if target == b'*':
            # RFC 9112 §3.2.4: asterisk-form is only used for a server-wide OPTIONS.
            if method != b'OPTIONS':
                raise BadRequest('asterisk-form is only allowed for OPTIONS')
        else:
            # RFC 9112 §3.2.2: the authority of the target wins over the Host field.
            head.host = absolute_form_authority(target)
    return head


def _parse_version(version: bytes) -> str:
    match = _VERSION.fullmatch(version)
    if match is None:
        # Not HTTP-version at all (lower-case name, two digits, garbage): not a request line.
        raise BadRequest('malformed HTTP version')
    major, minor = match.groups()
    if major != b'1':
        # RFC 9110 §15.6.6: 505 for a major version the server does not implement. HTTP/2 and
        # HTTP/3 are not carried in this text form (an HTTP/2 client with prior knowledge sends
        # "PRI * HTTP/2.0", which lands here), and "HTTP/0.x" names a version that never had
        # a version field: both are well-formed versions this server does not speak.
        raise VersionNotSupported('HTTP version not supported')
    # RFC 9112 §2.3: a recipient SHOULD treat a message with a higher minor version of a major
    # version it implements as if it were the highest minor version it implements (1.1).
    return _HTTP10 if minor == b'0' else _HTTP11


def parse_fields(block: bytes, head: RequestHead, max_count: int = 100) -> None:
    """Parse a header block whose every line ends with CRLF into ``head.headers``."""
    if HEADER_BLOCK.fullmatch(block) is None:
        raise BadRequest(_field_error(block))
    lines = block[:-2].split(b'\r\n')
    if len(lines) > max_count:
        raise HeaderFieldsTooLarge('too many header fields')
    headers = head.headers
    for line in lines:
        name, _, value = line.partition(b':')
        name = name.lower()
        # OWS around the value is not part of it (RFC 9110 §5.5).
        value = value.strip(b' \t')
        if name in headers:
            headers[name] = _combine(name, headers[name], value)
        else:
            headers[name] = value


# RFC 9110 §6.5.1: a field "necessary prior to receiving the content" cannot be sent as a
# trailer, and §6.5.2 forbids merging a trailer into the header section unless its definition
# says how. RFC 9110 has no closed list; these are the categories that RFC 7230 §4.1.2 named:
# framing, routing, request modifiers (controls and conditionals, RFC 9110 §10.1, §13),
# authentication (RFC 9110 §11, RFC 6265), response controls (RFC 9110 §10.2) and how to process
# the content, plus the connection-specific fields (RFC 9110 §7.6.1). They are dropped, so that a
# handler reading ``request.trailers`` never sees a second Content-Length or Host arriving after
# the body, where no one checked it.
FORBIDDEN_TRAILERS = frozenset((
    b'content-length', b'transfer-encoding', b'trailer', b'te', b'connection', b'keep-alive',
    b'proxy-connection', b'upgrade', b'host', b'cache-control', b'expect', b'max-forwards',
    b'pragma', b'range', b'if-match', b'if-none-match', b'if-modified-since',
    b'if-unmodified-since', b'if-range', b'authorization', b'proxy-authorization', b'cookie',
    b'set-cookie', b'www-authenticate', b'proxy-authenticate', b'age', b'date', b'expires',
    b'location', b'retry-after', b'vary', b'warning', b'content-encoding', b'content-type',
    b'content-range',
))


def parse_trailers(block: bytes, max_count: int = 100) -> dict[bytes, bytes]:
    """Parse a trailer section (RFC 9112 §7.1.2), same grammar as the header block.

    Fields of `FORBIDDEN_TRAILERS` are left out (RFC 9110 §6.5.1: a recipient MAY discard them).
    """
    if HEADER_BLOCK.fullmatch(block) is None:
        raise BadRequest(_field_error(block))
    lines = block[:-2].split(b'\r\n')
    if len(lines) > max_count:
        raise HeaderFieldsTooLarge('too many header fields')
    trailers: dict[bytes, bytes] = {}
    for line in lines:
        name, _, value = line.partition(b':')
        name = name.lower()
        # Dropped before they are combined: a repeated Host is no error in a trailer section.
        if name in FORBIDDEN_TRAILERS:
            continue
        value = value.strip(b' \t')
        trailers[name] = _combine(name, trailers[name], value) if name in trailers else value
    return trailers


_NAME = re.compile(rb'[%s]+' % _TCHAR)
_VALUE = re.compile(_FIELD_VALUE)


def _field_error(block: bytes) -> str:
    """Say which rule a rejected field section breaks (only run on the error path)."""
    if not block.endswith(b'\r\n'):
        return 'field line not ended by CRLF'
    for line in block[:-2].split(b'\r\n'):
        if b'\r' in line or b'\n' in line:
            return 'bare CR or LF in a field line'  # RFC 9112 §2.2
        if line[:1] in (b' ', b'\t'):
            # RFC 9112 §5.2: a server MUST reject obs-fold in a request with 400 (or unfold it).
            return 'obsolete line folding'
        name, colon, value = line.partition(b':')
        if not colon:
            return 'field line without a colon'
        if name[-1:] in (b' ', b'\t'):
            return 'whitespace between field name and colon'  # RFC 9112 §5.1: MUST reject
        if _NAME.fullmatch(name) is None:
            return 'invalid field name'  # RFC 9110 §5.1: field-name = token
        if _VALUE.fullmatch(value) is None:
            # RFC 9110 §5.5: field-vchar = VCHAR / obs-text; NUL, CR and LF MUST be rejected
            # (or replaced), other control bytes are outside the grammar.
            return 'invalid byte in field value'
    return 'malformed header field'


def _combine(name: bytes, first: bytes, value: bytes) -> bytes:
    if name == b'host':
        # RFC 9112 §3.2: more than one Host field is a 400.
        raise BadRequest('repeated Host header')
    if name == b'cookie':
        return first + b'; ' + value
    return first + b', ' + value


#: Host values found valid lately (a cache of `check_host`, bounded).
_VALID_HOSTS: dict[bytes, bool] = {}


def check_framing(head: RequestHead) -> None:
    """Decide the body framing and connection options (RFC 9112 §6.3, §9.3, RFC 9110 §10.1.1)."""
    headers = head.headers
    if not headers:
        if head.version == _HTTP11:
            raise BadRequest('missing Host header')
        return
    host = headers.get(b'host')
    if host is not None:
        # RFC 9112 §3.2: 400 for a Host field with an invalid value, even when an absolute-form
        # target (whose authority was checked already) makes it irrelevant. A server sees the
        # same few values again and again: the valid ones are remembered.
        if host not in _VALID_HOSTS:
            check_host(host)
            if len(_VALID_HOSTS) >= 256:
                _VALID_HOSTS.clear()
            _VALID_HOSTS[host] = True
        if not head.host:
            head.host = host
    transfer_encoding = headers.get(b'transfer-encoding')
    content_length = headers.get(b'content-length')
    if transfer_encoding is not None:
        if content_length is not None:
            # RFC 9112 §6.3 (3): both together are how requests are smuggled; refuse.
            raise BadRequest('both Transfer-Encoding and Content-Length')
        if head.version != _HTTP11:
            # RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message is a framing fault.
            raise BadRequest('Transfer-Encoding in an HTTP/1.0 request')
        # RFC 9110 §5.6.1: empty list elements ("chunked," or ", chunked") are ignored, as h11
        # does; otherwise a trailing comma would turn a chunked body into a 400 or a 501.
        codings = [c for c in _tokens(transfer_encoding.lower()) if c]
        if not codings or codings[-1] != b'chunked':
            raise BadRequest('chunked is not the final transfer coding')
        if len(codings) > 1:
            if b'chunked' in codings[:-1]:
                raise BadRequest('chunked applied more than once')
            raise NotImplementedByServer('unsupported transfer coding')
        head.chunked = True
    elif content_length is not None:
        head.content_length = parse_content_length(content_length)
    if head.version == _HTTP11 and host is None:
        # RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host.
        raise BadRequest('missing Host header')
    connection = headers.get(b'connection')
    if connection is not None:
        tokens = connection.lower()
        if head.version == _HTTP11:
            if b'close' in tokens and b'close' in _tokens(tokens):
                head.keep_alive = False
        else:
            # RFC 9112 §9.3: "close" wins in any version, even next to "keep-alive".
            options = _tokens(tokens)
            head.keep_alive = b'keep-alive' in options and b'close' not in options
        # RFC 9110 §7.8: a server MUST ignore Upgrade in an HTTP/1.0 request.
        if head.version == _HTTP11 and b'upgrade' in tokens and b'upgrade' in _tokens(tokens):
            upgrade = headers.get(b'upgrade')
            if upgrade:
                head.upgrade = upgrade.lower()
    expect = headers.get(b'expect')
    if expect is not None:
        if expect.lower() != b'100-continue':
            raise ExpectationFailed('unsupported expectation')
        if head.version == _HTTP11:
            head.expect_continue = True


def parse_content_length(value: bytes) -> int:
    """Parse a Content-Length value; a list of identical values counts as one (RFC 9112 §6.3)."""
    if b',' in value:
        values = {v.strip(b' \t') for v in value.split(b',')}
        if len(values) != 1:
            raise BadRequest('conflicting Content-Length values')
        value = values.pop()
    if _CONTENT_LENGTH.fullmatch(value) is None:
        raise BadRequest('malformed Content-Length')
    if len(value.lstrip(b'0')) > _MAX_CONTENT_LENGTH_DIGITS:
        raise PayloadTooLarge('Content-Length too large')
    return int(value)


def _tokens(value: bytes) -> list[bytes]:
    return [t.strip(b' \t') for t in value.split(b',')]

