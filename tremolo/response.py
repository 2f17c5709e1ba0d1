"""The response: status, headers and cookies, written whole or streamed."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Awaitable, BinaryIO, Callable, Optional, Union

from .body_stream import insert_filter
from .exceptions import ClientDisconnected
from .http.cookies import format_set_cookie
from .http.dates import dates
from .http.status import STATUS_LINES_11, body_allowed, status_line
from .types import HeadersLike

if TYPE_CHECKING:
    from . import files
    from .body_stream import StreamFilter
    from .default_headers import DefaultHeaders
    from .request import Request
    from .types import WriteChannel
    from .upgrade import UpgradedStream

logger = logging.getLogger('tremolo')

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.5: no CR, LF or NUL in a field value (they would split or end the header).
_UNSAFE_VALUE = re.compile(r'[\x00-\x08\x0a-\x1f\x7f]')
_FRAMING = frozenset(('content-length', 'transfer-encoding'))

BodyLike = Union[bytes, bytearray, memoryview, str]

# A file sent by reads yields to the event loop at least this often even when the client keeps
# up, so that one fast download does not starve the other connections of the worker.
_YIELD_EVERY = 256 * 1024

# Content-Type header lines by value: a handful of distinct values serve every response. An
# empty value sends no Content-Type at all (a response whose headers come whole from elsewhere).
_CONTENT_TYPES: dict[str, bytes] = {'': b''}


def _content_type_line(content_type: str) -> bytes:
    line = b'Content-Type: %s\r\n' % content_type.encode('latin-1')
    if len(_CONTENT_TYPES) < 256:
        _CONTENT_TYPES[content_type] = line
    return line


def _split_lines(lines: bytes) -> list[tuple[str, str]]:
    """Encoded header ``lines`` (each ending in CRLF, already checked) as (name, value)."""
    fields = []
    for line in lines.decode('latin-1').split('\r\n'):
        if line:
            name, _, value = line.partition(':')
            fields.append((name, value.strip()))
    return fields


def _trailer_lines(trailers: HeadersLike) -> bytes:
    lines = []
    for name, value in trailers.items() if isinstance(trailers, Mapping) else trailers:
        check_header(name, value)
        lines.append(b'%s: %s\r\n' % (name.encode('latin-1'), value.encode('latin-1')))
    return b''.join(lines)


def check_header(name: str, value: str) -> None:
    """Refuse a header that could corrupt the response (header injection).

    Raises:
        ValueError: ``name`` is not a token, or ``value`` holds control characters.
    """
    if _TOKEN.fullmatch(name) is None:
        raise ValueError(f'invalid header name: {name!r}')
    if _UNSAFE_VALUE.search(value) is not None:
        raise ValueError(f'invalid characters in the value of header {name!r}')


# Header names already checked (valid tokens, not framing fields): a response sets the same
# few names every time, so each is checked once. Bounded: names past it are checked each time.
_CHECKED_NAMES: set[str] = set()


class ResponseHeaders:
    """The response headers: a case-insensitive multi-mapping backed by a list.

    ``headers['X-A'] = 'b'`` replaces every ``X-A``; `add` appends another one.
    ``Content-Length`` and ``Transfer-Encoding`` are computed by the server and cannot be set.
    """

    __slots__ = ('_items',)

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items

    def __setitem__(self, name: str, value: str) -> None:
        self._check(name, value)
        lower = name.lower()
        items = self._items
        for key, _ in items:
            if key.lower() == lower:
                items[:] = [item for item in items if item[0].lower() != lower]
                break
        items.append((name, value))

    def add(self, name: str, value: str) -> None:
        """Add a header, keeping any existing one of the same name."""
        if name not in _CHECKED_NAMES or _UNSAFE_VALUE.search(value) is not None:
            self._check(name, value)  # raises, or checks a new name once
        self._items.append((name, value))

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        lower = name.lower()
        for key, value in self._items:
            if key.lower() == lower:
                return value
        return default

    def getlist(self, name: str) -> list[str]:
        lower = name.lower()
        return [value for key, value in self._items if key.lower() == lower]

    def __delitem__(self, name: str) -> None:
        lower = name.lower()
        self._items[:] = [item for item in self._items if item[0].lower() != lower]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    @staticmethod
    def _check(name: str, value: str) -> None:
        if name in _CHECKED_NAMES:
            if _UNSAFE_VALUE.search(value) is not None:
                raise ValueError(f'invalid characters in the value of header {name!r}')
            return
        if name.lower() in _FRAMING:
            raise ValueError(f'{name} is set by the server from the body')
        check_header(name, value)
        if len(_CHECKED_NAMES) < 512:
            _CHECKED_NAMES.add(name)

    def __repr__(self) -> str:
        return f'ResponseHeaders({self._items!r})'


class Response:
    """The response to one request.

    Set `status`, headers and cookies, then either let the handler's result be sent whole
    (with ``Content-Length``) or stream with `write` (chunked on HTTP/1.1, delimited by
    closing the connection on HTTP/1.0) and finish with `end`. A body whose length is known
    in advance can be streamed with ``Content-Length`` too: `start` it with the length.

    Attributes:
        request: The request this response answers.
        status: The status code (defaults to the route's ``status`` option).
        reason: A custom reason phrase, or ``None`` for the standard one.
        content_type: The Content-Type header value.
        filters: Stream filters applied to every piece of the body (see `add_filter`).
        headers_sent: Whether the head has been sent (the status and headers are final).
        finished: Whether the whole response has been sent.
        keep_alive: Whether the connection stays open after this response.
        body_size: Bytes of body sent so far (after the filters).
        body_length: The length of the body about to be sent, before the filters, as the
            ``on_response`` hooks see it: the length of a body sent whole (a returned result,
            `send`) or the one given to `start`; ``None`` for a streamed body, whose length is
            not known in advance. Compression reads it to leave small bodies alone.
        before_send: Called once just before the head is sent (the ``on_response`` hooks);
            what it returns, unless ``None``, is awaited (hooks that need not wait run
            without a coroutine). Not ``None`` while something is to run before the head
            (see `prepare_head`).
        channel: The writing side of the connection (a `tremolo.types.WriteChannel`), for
            what streams over this response (event streams, upgrades).
        default_headers: The route's default headers (see
            `tremolo.Tremolo.add_default_header`), appended to the head unless `headers` has
            the same name; not part of `headers`. Interim (1xx) responses carry none.
    """

    __slots__ = (
        'request', 'status', 'reason', 'content_type', 'filters', 'headers_sent', 'finished',
        'keep_alive', 'body_size', 'body_length', 'before_send', 'channel', 'default_headers',
        '_headers', '_chunked', '_length', '_head_only', '_header_view', '_callbacks', '_raw',
    )

    def __init__(self, channel: WriteChannel, request: Request) -> None:
        self.channel = channel
        self.request = request
        self.status = 200
        self.reason: Optional[str] = None
        self.content_type = 'text/html; charset=utf-8'
        self._headers: list[tuple[str, str]] = []
        self.filters: list[StreamFilter] = []
        self.headers_sent = False
        self.finished = False
        self.keep_alive = request.head.keep_alive
        self.body_size = 0
        self.body_length: Optional[int] = None
        self.before_send: Optional[Callable[[], Optional[Awaitable[None]]]] = None
        self.default_headers: Optional[DefaultHeaders] = None
        self._chunked = False
        # The Content-Length of a body sent in pieces (`start` with a length), else None.
        self._length: Optional[int] = None
        # No body byte goes out: a response to HEAD, or a status without content.
        self._head_only = request.method == 'HEAD'
        self._header_view: Optional[ResponseHeaders] = None
        # The callbacks of `before_head` not run yet.
        self._callbacks: Optional[list[Callable[[], Optional[Awaitable[None]]]]] = None
        # Header lines given already encoded (`add_raw_headers`), sent after the others, and
        # which of the server's own Date (1) and Server (2) lines they replace.
        self._raw: Optional[tuple[bytes, int]] = None

    # -- status and headers -------------------------------------------------------------------

    def set_status(self, status: int, reason: Optional[str] = None) -> None:
        """Set the status code and, optionally, a custom reason phrase."""
        if not 100 <= status <= 999:
            raise ValueError(f'invalid status code: {status}')
        if reason is not None and _UNSAFE_VALUE.search(reason):
            raise ValueError('invalid characters in the reason phrase')
        self.status = status
        self.reason = reason

    @property
    def headers(self) -> ResponseHeaders:
        """The response headers (case-insensitive, several values per name allowed)."""
        if self._header_view is None:
            self._header_view = ResponseHeaders(self._headers)
        return self._header_view

    def set_header(self, name: str, value: str) -> None:
        """Set a header, replacing any existing one of the same name."""
        self.headers[name] = value

    def append_header(self, name: str, value: str) -> None:
        """Add a header, keeping any existing one of the same name."""
        self.headers.add(name, value)

    def add_vary(self, *names: str) -> None:
        """Add ``names`` to the ``Vary`` header (RFC 9110 §12.5.5): the request fields the
        response depends on, so that caches keep one copy per value.

        Names already listed (in any case) are not repeated, the values stay in one field, and
        ``*`` (varies on more than fields) absorbs every other name.
        """
        headers = self.headers
        existing = headers.getlist('Vary')
        if not existing and len(names) == 1 and names[0] != '*':
            check_header(names[0], names[0])
            headers.add('Vary', names[0])  # the common case: the first name
            return
        listed: list[str] = []
        for value in existing:
            listed.extend(item.strip() for item in value.split(',') if item.strip())
        seen = {item.lower() for item in listed}
        if '*' in seen:
            return
        added = False
        for name in names:
            check_header(name, name)
            if name == '*':
                self.headers['Vary'] = '*'
                return
            if name.lower() not in seen:
                seen.add(name.lower())
                listed.append(name)
                added = True
        if added:
            self.headers['Vary'] = ', '.join(listed)

    def set_content_type(self, content_type: str) -> None:
        """Set the Content-Type of this response (``''``: send no Content-Type)."""
        check_header('Content-Type', content_type)
        self.content_type = content_type

    def add_raw_headers(self, lines: bytes, *, date: bool = False,
                        server: bool = False) -> None:
        """Add header lines already encoded, ``b'Name: value\\r\\n'`` each, sent after the
        other headers as they are.

        For headers that arrive encoded from elsewhere (the ASGI mode passes an application's
        headers on this way): the caller guarantees that each line is a valid field and that
        none of them is ``Content-Length``, ``Transfer-Encoding`` or ``Connection``, which the
        server writes itself. `headers` does not show them.

        Args:
            lines: The header lines.
            date: They hold a ``Date`` field: the server's own is not sent.
            server: They hold a ``Server`` field: the server's own is not sent.

        Raises:
            RuntimeError: The head has been sent already.
        """
        if self.headers_sent:
            raise RuntimeError('cannot add headers: the response has already started')
        flags = (1 if date else 0) | (2 if server else 0)
        raw = self._raw
        self._raw = (lines, flags) if raw is None else (raw[0] + lines, raw[1] | flags)

    def set_cookie(self, name: str, value: str = '', **attributes: Any) -> None:
        """Add a ``Set-Cookie`` header.

        Defaults are the safe ones: ``Path=/``, ``HttpOnly``, ``SameSite=Lax``. Keyword
        arguments: ``max_age``, ``expires``, ``path``, ``domain``, ``secure``, ``httponly``,
        ``samesite``, ``partitioned`` (see `tremolo.http.cookies.format_set_cookie`).
        """
        self._headers.append(('Set-Cookie', format_set_cookie(name, value, **attributes)))

    def delete_cookie(
        self, name: str, *, path: Optional[str] = '/', domain: Optional[str] = None
    ) -> None:
        """Tell the client to forget a cookie (same ``path`` and ``domain`` as when set)."""
        self.set_cookie(name, '', max_age=0, expires=0, path=path, domain=domain)

    def redirect(self, location: str, status: int = 302) -> bytes:
        """Answer with a redirect to ``location``; return the result to send (empty body).

        Example:
            ``return response.redirect('/login')``
        """
        if not 300 <= status < 400:
            raise ValueError(f'redirect status must be 3xx, not {status}')
        self.set_status(status)
        self.set_header('Location', location)
        return b''

    def reset(self, status: int, headers: HeadersLike = ()) -> None:
        """Start the head over, to answer with an error instead: ``status`` with its standard
        reason phrase, a plain-text Content-Type, and only ``headers`` (the headers and cookies
        set so far are dropped). The stream filters stay.

        Raises:
            RuntimeError: The head has been sent already.
        """
        if self.headers_sent:
            raise RuntimeError('cannot reset a response whose head has been sent')
        self.status = status
        self.reason = None
        self.content_type = 'text/plain; charset=utf-8'
        del self._headers[:]
        self._raw = None
        for name, value in headers.items() if isinstance(headers, Mapping) else headers:
            self.headers.add(name, value)

    def before_head(self, callback: Callable[[], Optional[Awaitable[None]]]) -> None:
        """Call ``callback()`` just before the head of this response is sent, after the
        ``on_response`` hooks and the callbacks registered before it.

        For work that only some requests need, decided while they run: a middleware whose
        ``on_response`` hook would do nothing for most requests registers a callback for
        those that need it instead (sessions are saved this way, only when they changed), so
        the others pay nothing. The callback may change the status, the headers and the
        cookies, like a hook; if it returns an awaitable, that is awaited before the head is
        sent. Callbacks run for error responses too, but not for an interim ``101``
        (`upgrade`).

        Raises:
            RuntimeError: The head has been sent already.
        """
        if self.headers_sent:
            raise RuntimeError('the head of the response has been sent already')
        if self._callbacks is None:
            self._callbacks = [callback]
        else:
            self._callbacks.append(callback)
        if self.before_send is None:
            self.before_send = self._run_callbacks

    def prepare_head(self) -> Optional[Awaitable[None]]:
        """Run what is to run before the head is sent, if it has not run yet: the
        ``on_response`` hooks (`before_send`), then the callbacks of `before_head`, those
        added meanwhile included.

        Sending the head does it; a framework that sends the head itself (`send_whole`)
        calls it first, until it returns ``None``.

        Returns:
            ``None`` once all of it has run; else an awaitable that runs some of it (await
            it, then call `prepare_head` again).
        """
        while True:
            hook = self.before_send
            if hook is not None:
                self.before_send = None
            elif self._callbacks:
                hook = self._run_callbacks
            else:
                return None
            pending = hook()
            if pending is not None:
                return pending

    @property
    def omits_body(self) -> bool:
        """Whether no body is sent: a response to ``HEAD`` (RFC 9110 §9.3.2) or a status
        without content (1xx, 204, 304). A stream can stop producing once the head is out."""
        return self._head_only or not body_allowed(self.status)

    async def upgrade(
        self, protocol: str, headers: Optional[list[tuple[str, str]]] = None
    ) -> UpgradedStream:
        """Switch the connection to another protocol (RFC 9110 §7.8): send
        ``101 Switching Protocols`` and return the raw byte stream of the connection.

        HTTP stops on this connection; it closes when the handler returns.

        Args:
            protocol: The ``Upgrade`` value, e.g. ``'websocket'``.
            headers: Extra headers for the 101 response.
        """
        if self.headers_sent:
            raise RuntimeError('cannot upgrade: the response has already started')
        self.status = 101
        self.reason = None
        self.headers['Upgrade'] = protocol
        self.headers['Connection'] = 'Upgrade'
        for name, value in headers or ():
            self.headers.add(name, value)
        self.headers_sent = self.finished = True
        self.keep_alive = True  # the connection goes on, in the new protocol
        self.channel.write(self._head(None))
        self.channel.response_finished(self)
        return self.channel.upgrade()

    def send_interim(self, status: int, headers: HeadersLike = ()) -> None:
        """Send an interim response before the final one: ``103 Early Hints`` (RFC 8297) with
        ``Link`` headers the client may preload while the final response is prepared, or
        another 1xx status.

        HTTP/1.0 clients get no interim response (RFC 9110 §15.2): nothing is sent to them.

        Args:
            status: A 1xx status other than 101 (`upgrade` switches protocols).
            headers: Its header fields.

        Raises:
            ValueError: Another status, or an invalid header.
            RuntimeError: The final response has started.
        """
        if not 100 <= status < 200 or status == 101:
            raise ValueError(f'an interim response has a 1xx status other than 101, not {status}')
        if self.headers_sent:
            raise RuntimeError('cannot send an interim response after the final one started')
        lines = []
        for name, value in headers.items() if isinstance(headers, Mapping) else headers:
            check_header(name, value)
            lines.append(b'%s: %s\r\n' % (name.encode('latin-1'), value.encode('latin-1')))
        if self.request.version == '1.0':
            return
        self.channel.write(status_line(status) + b''.join(lines) + b'\r\n')

    async def sendfile(
        self, path: files.PathLike, *, content_type: Optional[str] = None,
        filename: Optional[str] = None, headers: Optional[HeadersLike] = None,
        etag: Union[bool, str] = True, last_modified: bool = True, ranges: bool = True,
        chunk_size: Optional[int] = None,
    ) -> None:
        """Send the file at ``path`` as the whole response, with ranges (206, 416) and
        conditional requests (304, 412) handled.

        Zero-copy (``loop.sendfile``) where the connection allows it, else read and written
        in pieces of ``chunk_size`` bytes through the stream filters (see `write_file`). Use
        it as ``return await response.sendfile(path)`` (or await it and return ``None``).

        Args:
            path: The file.
            content_type: The Content-Type (default: guessed from the name, with
                ``charset=utf-8`` for text).
            filename: Offer the file as a download saved under this name
                (``Content-Disposition: attachment``).
            headers: More response headers (e.g. ``Cache-Control``).
            etag: Send an ETag made of the modification time and size (``True``), none
                (``False``), or this one (a quoted string, e.g. ``'"v2"'``).
            last_modified: Send ``Last-Modified`` (and honour ``If-Modified-Since``).
            ranges: Honour ``Range`` requests (and send ``Accept-Ranges: bytes``).
            chunk_size: Bytes per read when the file cannot go zero-copy (default: the
                ``buffer_size`` option).

        Raises:
            NotFound: No such regular file (a directory or a FIFO is not one).
            Forbidden: The file cannot be read by the server.
            HTTPException: 412 when a precondition fails; `RangeNotSatisfiable` (416).
            ClientDisconnected: The client went away, or the file shrank while it was sent
                (the connection is then aborted).
        """
        from . import files  # loaded by the first file sent

        await files.send_file(
            self, path, content_type=content_type, filename=filename, headers=headers,
            etag=etag, last_modified=last_modified, ranges=ranges, chunk_size=chunk_size,
        )

    def add_filter(self, stream_filter: StreamFilter) -> None:
        """Pass every piece of the body through ``stream_filter`` before it is sent.

        The filter is called as ``stream_filter(data, final)`` and returns the bytes to send
        (or an awaitable of them); it is called one last time with ``final=True`` so that it can
        flush what it holds. With a filter, whole bodies are filtered before Content-Length is
        computed, unless every filter has ``preserves_length`` (see `StreamFilter`): then the
        body keeps its Content-Length and goes through the filters in pieces.
        """
        if self.headers_sent:
            raise RuntimeError('cannot add a filter after the response has started')
        insert_filter(self.filters, stream_filter, wire_last=True)

    # -- the head -------------------------------------------------------------------------------

    def _head(self, length: Optional[int]) -> bytes:
        status = self.status
        line = STATUS_LINES_11.get(status) if self.reason is None else None
        if line is None:
            line = status_line(status, phrase=self.reason)
        channel = self.channel
        if status >= 200 and status != 204 and status != 304:  # content allowed
            content_type = _CONTENT_TYPES.get(self.content_type)
            if content_type is None:
                content_type = _content_type_line(self.content_type)
            if length is not None:
                framing = b'%sContent-Length: %d\r\n' % (content_type, length)
            elif self._chunked:
                framing = content_type + b'Transfer-Encoding: chunked\r\n'
            else:
                framing = content_type
        else:
            framing = b''
        defaults = self.default_headers
        raw = self._raw
        if defaults is not None and status >= 200:
            own = self._headers
            if raw is not None and raw[0]:
                # Lines given encoded (a mounted ASGI application's) override the defaults
                # like any other header the response sets.
                own = own + _split_lines(raw[0])
                raw = (b'', raw[1])
            framing += defaults.head_lines(own, self.request)
        elif self._headers:
            framing += ''.join([
                f'{name}: {value}\r\n' for name, value in self._headers
            ]).encode('latin-1')
        if raw is not None:
            framing += raw[0]
        if channel.closing or (length is not None and not self.request.body_complete):
            # A whole response while the request body is still arriving: that body will not
            # be read, and unread body bytes cannot be told apart from a next request.
            self.keep_alive = False
        if not self.keep_alive:
            end = b'Connection: close\r\n\r\n'
        elif self.request.version == '1.0':
            end = b'Connection: keep-alive\r\n\r\n'
        else:
            end = b'\r\n'
        if raw is not None and raw[1]:
            omitted = raw[1]
            return b'%s%s%s%s%s' % (line, b'' if omitted & 1 else dates.header(),
                                    b'' if omitted & 2 else channel.server_header, framing, end)
        return b'%s%s%s%s%s' % (line, dates.header(), channel.server_header, framing, end)

    async def start(self, length: Optional[int] = None) -> None:
        """Run the ``on_response`` hooks and send the head now; the body follows with `write`
        or `write_file`, and `end`.

        Args:
            length: The length of the body, when it is known: the head carries
                ``Content-Length`` and exactly that many bytes must follow (fewer make `end`
                abort the connection, more are refused). When a stream filter may change the
                length (compression), the length is dropped and the body streamed.

        Raises:
            RuntimeError: The head has been sent already.
        """
        if self.headers_sent:
            raise RuntimeError('the response has already started')
        if self.before_send is not None:
            self.body_length = length
            await self._run_before_send()
        self._start(length)

    def _start(self, length: Optional[int]) -> None:
        self.headers_sent = True
        if not body_allowed(self.status):
            self._head_only = True
        elif length is not None and (not self.filters or self._preserves_length()):
            self._length = length  # else (compression) the length of what goes out is unknown
        elif self.request.version == '1.1':
            self._chunked = True
        else:
            # RFC 9112 §6.3 (8): without chunked, only closing the connection ends the body.
            self.keep_alive = False
        self.channel.write_soon(self._head(self._length))  # goes out with the first piece

    # -- sending --------------------------------------------------------------------------------

    def send_whole(self, body: bytes) -> None:
        """Send the head and ``body`` as one write (no filters, no hooks: the fast path)."""
        if self.headers_sent:
            raise RuntimeError('the response has already started')
        self.headers_sent = self.finished = True
        size = len(body)
        head = self._head(size)  # no Content-Length where the status allows no content
        channel = self.channel
        if self._head_only or not body_allowed(self.status):
            channel.write(head)
        elif size < 65536:
            self.body_size = size
            channel.write(head + body)
        else:
            # A big body is not copied into the head's buffer: two writes instead.
            self.body_size = size
            channel.write(head)
            channel.write(body)
        channel.response_finished(self)

    async def send(self, body: BodyLike = b'') -> None:
        """Send ``body`` as the whole response, after the ``on_response`` hooks and filters."""
        if isinstance(body, str):
            body = body.encode()
        if self.before_send is not None:
            self.body_length = len(body)
            await self._run_before_send()
        if self.filters:
            body = bytes(body)
            if len(body) > self._piece_size() and self._preserves_length():
                # Through a speed limiter: the Content-Length is kept, the body paced in pieces.
                self._start(len(body))
                await self._write_pieces(body)
                await self.end()
                return
            body = await self._filter(body, True)
        self.send_whole(bytes(body) if not isinstance(body, bytes) else body)

    async def write(self, data: BodyLike) -> None:
        """Stream ``data`` to the client; the first call sends the head.

        Waits while the client is slower than the handler (the transport's buffer is above its
        high-water mark), so a producer never fills memory.

        Raises:
            ClientDisconnected: The client went away; stop producing.
        """
        if self.finished:
            raise RuntimeError('the response is already finished')
        if type(data) is not bytes:
            data = data.encode() if isinstance(data, str) else bytes(data)
        if not self.headers_sent:
            if self.before_send is not None:
                await self._run_before_send()
            self._start(None)
        if self.filters:
            if len(data) > self._piece_size() and self._preserves_length():
                # A speed limiter paces pieces, not whole megabytes at once.
                await self._write_pieces(data)
                return
            data = await self._filter(data, False)
        if data and self._send_piece(data):
            await self.channel.drain()

    def write_nowait(self, data: bytes) -> bool:
        """Queue ``data`` as the next piece of a started body without waiting, and return
        whether the client is behind: then ``await response.drain()`` before writing more.

        The quick way to stream many pieces, for a response whose head is out (a first
        `write` or `start` sent it) and that has no filters (a filter may have to wait).

        Raises:
            RuntimeError: The head is not sent yet, the response has filters, or it is
                finished.
            ClientDisconnected: The client went away; stop producing.
        """
        if not self.headers_sent or self.filters or self.finished:
            raise RuntimeError('write_nowait() needs a started response without filters; '
                               'use await write()')
        if data:
            return self._send_piece(data)
        return self.channel.writing_paused

    async def drain(self) -> None:
        """Wait until the client has taken enough of what was written.

        Raises:
            ClientDisconnected: The client went away.
        """
        await self.channel.drain()

    async def write_file(self, file: BinaryIO, offset: int, count: int,
                         chunk_size: Optional[int] = None, *, zero_copy: bool = True) -> None:
        """Send ``count`` bytes of the open ``file`` from ``offset`` as the next piece of the
        body (`start` is called first if the head is not out).

        Zero-copy (``loop.sendfile``: the kernel copies from the page cache to the socket, the
        bytes never enter Python) where it can be: a body with a known length and no filters,
        over plain TCP or a UNIX socket, on an event loop that has it (uvloop has not).
        Otherwise the file is read in pieces of ``chunk_size`` bytes (default: the
        ``buffer_size`` option), each written with the response's backpressure and filters.
        The reads block the event loop's thread, as every regular file read does
        (``O_NONBLOCK`` means nothing to it): a few KiB served by the page cache take
        microseconds, less than handing each read to a thread.

        Args:
            file: A file open for reading in binary mode.
            offset: Where to start in the file.
            count: How many bytes to send.
            chunk_size: Bytes per read when the file is read.
            zero_copy: ``False`` reads the file even where zero-copy is possible: many small
                pieces (the ranges of a ``multipart/byteranges`` body) go out faster together.

        Raises:
            ClientDisconnected: The client went away, or the file ended before ``count`` bytes
                (the connection is then aborted, so that the client sees the body is short).
            ValueError: ``chunk_size`` below 1.
        """
        if chunk_size is None:
            chunk_size = self.channel.options.buffer_size
        elif chunk_size < 1:
            raise ValueError('chunk_size must be at least 1')
        if not self.headers_sent:
            await self.start()
        if self._head_only or count <= 0:
            return
        if zero_copy and not self.filters and not self._chunked:
            sent = await self.channel.sendfile(file, offset, count)
            if sent is not None:
                self.body_size += sent
                if sent < count:
                    self._file_shrunk(file, offset + sent)
                return
        file.seek(offset)
        channel = self.channel
        unyielded = 0
        while count > 0:
            data = file.read(min(chunk_size, count))
            if not data:
                self._file_shrunk(file, file.tell())
            count -= len(data)
            if self.filters:
                data = await self._filter(data, False)  # each read is one piece for them
            if data and self._send_piece(data):
                await channel.drain()
                unyielded = 0
                continue
            unyielded += len(data)
            if unyielded >= _YIELD_EVERY:
                unyielded = 0
                await asyncio.sleep(0)

    def _file_shrunk(self, file: BinaryIO, position: int) -> None:
        # The head promised more bytes than the file now has: only cutting the connection
        # tells the client that the body is incomplete (RFC 9112 §6.3, §8).
        logger.warning('%s ended at byte %d while it was sent (the file changed): '
                       'connection aborted', getattr(file, 'name', file), position)
        self.abort()
        raise ClientDisconnected('the file ended before its announced length')

    def abort(self) -> None:
        """Cut the response short: what was written goes out, then the connection is closed at
        once, so that the client sees an incomplete body fail rather than take it for whole
        (RFC 9112 §8). For a failure after the head was sent, when no status can tell it.

        A response already finished (sent whole, or cut short before) is left alone: its
        connection may be serving the next request already (`WriteChannel.detach`)."""
        if self.finished:
            return
        self.channel.flush()  # what was written goes out: the client sees a short body
        self.channel.abort()  # which records the exchange as cut short
        self.finished = True

    async def _write_pieces(self, data: bytes) -> None:
        piece = self._piece_size()
        view = memoryview(data)
        drain = self.channel.drain
        for start in range(0, len(data), piece):
            filtered = await self._filter(bytes(view[start:start + piece]), False)
            if filtered and self._send_piece(filtered):
                await drain()

    def _piece_size(self) -> int:
        return self.channel.options.buffer_size

    def _preserves_length(self) -> bool:
        for stream_filter in self.filters:
            if not getattr(stream_filter, 'preserves_length', False):
                return False
        return True

    def _send_piece(self, data: bytes) -> bool:
        """Queue one piece of a started body (after filters); return whether the client is
        behind and the producer must wait (`WriteChannel.drain`)."""
        if self._head_only:
            return False
        channel = self.channel
        if channel.disconnected():
            # Written data would be dropped: stop the producer (it may never await otherwise).
            raise ClientDisconnected('the client closed the connection')
        self.body_size += len(data)
        if self._chunked:
            channel.write_chunk_soon(data)
        else:
            if self._length is not None and self.body_size > self._length:
                self.abort()
                raise RuntimeError(f'the body is longer than the {self._length} bytes its '
                                   'head announced: connection aborted')
            channel.write_soon(data)
        return channel.writing_paused

    async def end(self, data: BodyLike = b'', *,
                  trailers: Optional[HeadersLike] = None) -> None:
        """Finish the response; ``data``, if any, is its last piece.

        If nothing was streamed yet, ``data`` is sent whole with a Content-Length.

        Args:
            data: The last piece of the body.
            trailers: Trailer fields sent after a chunked body (RFC 9110 §6.5), e.g. a
                checksum computed while streaming. Only a chunked body can carry them: with a
                Content-Length, or to an HTTP/1.0 client, they are dropped.

        Raises:
            RuntimeError: The body is shorter than the length given to `start` (the
                connection is aborted, so that the client sees it).
            ValueError: An invalid trailer field.
        """
        if self.finished:
            return
        if not self.headers_sent:
            if trailers is not None:
                await self.start()  # chunked, so that the trailers have a place
                await self.end(data, trailers=trailers)
                return
            await self.send(data)
            return
        if data:
            await self.write(data)
        if self.filters:
            tail = await self._filter(b'', True)
            if tail:
                self._send_piece(tail)
        if trailers:
            # The last chunk, with the trailer section (RFC 9112 §7.1.2); checked before the
            # response counts as finished.
            last = b'0\r\n%s\r\n' % _trailer_lines(trailers)
        if self._chunked:
            if not self._head_only:
                self.channel.write_soon(last if trailers else b'0\r\n\r\n')
        elif (self._length is not None and self.body_size != self._length
              and not self._head_only):
            self.abort()
            raise RuntimeError(f'the body ended after {self.body_size} of the {self._length} '
                               'bytes its head announced: connection aborted')
        self.finished = True
        self.channel.response_finished(self)

    async def _run_before_send(self) -> None:
        pending = self.prepare_head()
        while pending is not None:
            await pending
            pending = self.prepare_head()

    def _run_callbacks(self) -> Optional[Awaitable[None]]:
        callbacks = self._callbacks
        while callbacks:
            callback = callbacks.pop(0)
            pending = callback()
            if pending is not None:
                return pending  # `prepare_head` awaits it, then comes back for the others
        return None


    async def _filter(self, data: bytes, final: bool) -> bytes:
        for stream_filter in self.filters:
            result = stream_filter(data, final)
            data = await result if inspect.isawaitable(result) else result
        return data

    def __repr__(self) -> str:
        return f'<Response {self.status}>'
