"""The request as handlers see it."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Optional,
    TypeVar,
    cast,
)
from urllib.parse import unquote

from .body_stream import insert_filter
from .exceptions import BadRequest, UnsupportedMediaType
from .http.cookies import parse_cookie_header
from .http.fields import Headers, MultiDict, parse_query
from .options import Options

if TYPE_CHECKING:
    from .body_stream import BodyStream, StreamFilter
    from .connection import Address, Connection
    from .forms import FormData, FormLimits
    from .http.forwarded import Forwarding
    from .http.head import RequestHead
    from .types import OptionSource
    from .uploads import Part

#: Option values for requests answered outside an application (no route, no context).
_DEFAULTS = Options().route_defaults()


_T = TypeVar('_T')

class Request:
    """An HTTP request.

    Cheap attributes (`method`, `path`, `version`) are set when the head is
    parsed; everything else (`headers`, `query`, `cookies`) is decoded the
    first time it is asked for. The body is read only when the handler asks for it, through
    `body`, `stream`, `json`, `text`, `form` or `parts`.

    Attributes:
        method: ``'GET'``, ``'POST'``, ...
        path: The percent-decoded path, e.g. ``'/user/42'``.
        raw_path: The path exactly as received, as bytes.
        query_string: The part of the target after ``?``, still percent-encoded.
        version: ``'1.1'`` or ``'1.0'``.
        params: The path parameters of the matched route.
        connection: The `Connection` this request arrived on.
        context: The request's `Context` (its effective options), set by the application
            before any hook runs; ``None`` outside an application.
        id: An identifier of this request for logs and tracing, or ``None``: set by a
            middleware (`tremolo.middleware.request_id.RequestID` sets it), and written at the
            end of its access log line when set.
        route: The template of the route that matched, as registered (with its mount
            prefix), e.g. ``'/users/{id:int}'``; ``None`` when no route matched. Logs and
            metrics group requests by it.
    """

    __slots__ = (
        'head', 'method', 'path', 'raw_path', 'query_string', 'version', 'params',
        'connection', 'context', 'id', 'route', '_stream', '_headers', '_query', '_cookies',
        '_body',
        '_form', '_forwarded', '__weakref__',
    )

    def __init__(
        self, head: RequestHead, connection: Connection, stream: Optional[BodyStream]
    ) -> None:
        self.head = head
        self.method: str = head.method
        self.version: str = head.version
        self.connection: Connection = connection
        self._stream = stream
        target = head.target
        if target[0] != 47:  # absolute-form or '*' (RFC 9112 §3.2.2, §3.2.4)
            target = _origin_form(target)
        raw_path, _, query = target.partition(b'?')
        self.raw_path: bytes = raw_path
        path = raw_path.decode('ascii')
        self.path: str = unquote(path) if '%' in path else path
        self.query_string: str = query.decode('ascii')
        self.params: dict[str, Any] = {}
        self.context: Optional[OptionSource] = None
        self.id: Optional[str] = None
        self.route: Optional[str] = None
        self._headers: Optional[Headers] = None
        self._query: Optional[MultiDict] = None
        self._cookies: Optional[dict[str, str]] = None
        self._body: Optional[bytes] = None
        self._form: Optional[FormData] = None
        self._forwarded: Optional[Forwarding] = None

    # -- head ---------------------------------------------------------------------------------

    @property
    def headers(self) -> Headers:
        """Case-insensitive request headers (values decoded as ISO-8859-1)."""
        if self._headers is None:
            self._headers = Headers(self.head.headers)
        return self._headers

    @property
    def query(self) -> MultiDict:
        """The parsed query string: ``request.query['page']``, ``request.query.getlist('tag')``."""
        if self._query is None:
            self._query = parse_query(self.query_string)
        return self._query

    @property
    def cookies(self) -> dict[str, str]:
        """Cookies sent by the client, by name."""
        if self._cookies is None:
            raw = self.head.headers.get(b'cookie')
            self._cookies = parse_cookie_header(raw.decode('latin-1')) if raw else {}
        return self._cookies

    @property
    def client(self) -> Address:
        """The client's address: ``(host, port)``, or ``None`` on UNIX sockets.

        When the connection comes from a trusted proxy (the ``trusted_proxies`` option), the
        client that the proxy names in ``Forwarded`` or ``X-Forwarded-For``, with port ``0``
        when the proxy gave none; the connection's own peer is `connection.client`.
        """
        if not self.connection.trusted:
            return self.connection.client
        return self._forwarding().client

    @property
    def scheme(self) -> str:
        """``'https'`` or ``'http'``, as the client used it (through trusted proxies, from
        ``Forwarded: proto=`` or ``X-Forwarded-Proto``)."""
        if not self.connection.trusted:
            return self.connection.scheme
        return self._forwarding().scheme

    @property
    def host(self) -> str:
        """The host the request is for, ``host[:port]``: the authority of an absolute-form
        target, else the ``Host`` header (RFC 9112 §3.2.2), checked by the parser; through a
        trusted proxy that states one, ``Forwarded: host=`` or ``X-Forwarded-Host``."""
        if self.connection.trusted:
            forwarded = self._forwarding().host
            if forwarded is not None:
                return forwarded
        return self.head.host.decode('ascii')

    def _forwarding(self) -> Forwarding:
        forwarded = self._forwarded
        if forwarded is None:
            forwarded = self._forwarded = self.connection.forwarding(self.head.headers)
        return forwarded

    @property
    def url(self) -> str:
        """The full URL the client asked for."""
        query = f'?{self.query_string}' if self.query_string else ''
        return f'{self.scheme}://{self.host}{self.raw_path.decode("ascii")}{query}'

    @property
    def content_type(self) -> str:
        """The media type of the body without parameters, lower-cased (``''`` if absent)."""
        value = self.head.headers.get(b'content-type', b'')
        return value.split(b';', 1)[0].strip().lower().decode('latin-1')

    @property
    def content_length(self) -> Optional[int]:
        """The announced body length, or ``None`` for chunked or absent bodies."""
        return self.head.content_length

    @property
    def keep_alive(self) -> bool:
        """Whether the client allows the connection to persist after this exchange."""
        return self.head.keep_alive

    @property
    def trailers(self) -> dict[bytes, bytes]:
        """Trailer fields of a chunked body, available once the body has been read."""
        return self._stream.trailers if self._stream is not None else {}

    @property
    def body_stream(self) -> Optional[BodyStream]:
        """The body as the connection delivers it (`None` without a body): what `stream`
        and `body` read, for code that reads it piece by piece itself (``await
        request.body_stream.read()``, ``b''`` at the end). It applies the body limits and
        filters like the other ways of reading."""
        return self._stream

    @property
    def has_body(self) -> bool:
        """Whether the request carries a body (Content-Length above zero or chunked)."""
        return self._stream is not None

    @property
    def body_complete(self) -> bool:
        """Whether the whole body has arrived from the client (``True`` without a body)."""
        return self._stream is None or self._stream.complete

    @property
    def body_received(self) -> int:
        """Bytes of the body received from the client so far (0 without a body)."""
        return self._stream.received if self._stream is not None else 0

    @property
    def max_body_size(self) -> int:
        """The body limit of this request, in bytes (the route's ``max_body_size`` option;
        0 without a body). Raise or lower it before the first read: a bigger body is refused
        with ``413``."""
        return self._stream.max_size if self._stream is not None else 0

    @max_body_size.setter
    def max_body_size(self, value: int) -> None:
        if self._stream is not None:
            self._stream.max_size = value

    @property
    def body_buffer_size(self) -> int:
        """Bytes of the body held unread before reading the socket pauses (the route's
        ``body_buffer_size`` option; 0 without a body)."""
        return self._stream.high_water if self._stream is not None else 0

    @body_buffer_size.setter
    def body_buffer_size(self, value: int) -> None:
        if self._stream is not None:
            self._stream.high_water = value

    # -- body ---------------------------------------------------------------------------------

    def add_filter(self, stream_filter: StreamFilter) -> None:
        """Pass every piece of the body through ``stream_filter`` before the handler sees it
        (see `StreamFilter`); nothing happens when the request has no body."""
        if self._stream is not None:
            insert_filter(self._stream.filters, stream_filter, wire_last=False)

    @property
    def filters(self) -> list[StreamFilter]:
        """The body's stream filters, in the order they apply (empty without a body)."""
        return self._stream.filters if self._stream is not None else []

    async def stream(self) -> AsyncIterator[bytes]:
        """Yield the body piece by piece as it arrives, in constant memory.

        Raises:
            PayloadTooLarge: The body exceeds `max_body_size`.
            RequestTimeout: The client stopped sending for longer than the body timeout.
            ClientDisconnected: The client went away.
        """
        stream = self._unread_stream()
        if stream is None:
            return
        while True:
            data = await stream.read()
            if not data:
                return
            yield data

    def parts(self) -> AsyncIterator[Part]:
        """Yield the parts of a multipart body (``multipart/form-data`` or another
        ``multipart/*`` type) one by one as they arrive; read each part's content in pieces
        (``async for piece in part``), so that a file of any size goes to disk in constant memory.

        Content a handler does not read is skipped when it asks for the next part. The limits
        are the route options ``max_form_fields`` (parts), ``max_part_size``,
        ``max_part_header_size``, ``max_preamble_size`` and ``max_body_size``.

        Example:
            ```python
            async for part in request.parts():
                if part.filename is not None:
                    await part.save(f'/srv/uploads/{uuid4().hex}')
                else:
                    fields[part.name] = await part.text()
            ```

        Raises:
            UnsupportedMediaType: The body is not multipart.
            BadRequest: The body is malformed (no valid boundary, a delimiter not followed by a
                line end, a part without ``Content-Disposition`` in a form, a body that ends
                before the final boundary).
            PayloadTooLarge: A limit is exceeded.
        """
        from .uploads import PartReader, iterate

        reader = PartReader(self._unread_stream(), self._content_type_value(), self._limits())
        return iterate(reader)

    def body(self) -> Awaitable[bytes]:
        """The whole body (at most `max_body_size` bytes, else 413).

        Await it in async code. Called from a sync handler (which runs in a worker thread),
        it returns the bytes directly, read by the event loop on the handler's behalf.

        Raises:
            PayloadTooLarge: The body exceeds `max_body_size`.
            RequestTimeout: The client stopped sending for longer than the body timeout.
            ClientDisconnected: The client went away.
        """
        return self._bridge(self._read_body())

    def text(self, encoding: Optional[str] = None) -> Awaitable[str]:
        """The body decoded with ``encoding``, else the Content-Type charset, else UTF-8
        (awaitable; direct in sync handlers, like `body`).

        Raises:
            BadRequest: The body is not valid in that encoding.
        """
        return self._bridge(self._read_text(encoding))

    def json(self) -> Awaitable[Any]:
        """The body parsed as JSON (awaitable; direct in sync handlers, like `body`).

        Raises:
            BadRequest: The body is not valid JSON (or not valid UTF-8).
        """
        return self._bridge(self._read_json())

    def form(self, max_fields: Optional[int] = None) -> Awaitable[FormData]:
        """The body parsed as a form (``application/x-www-form-urlencoded`` or
        ``multipart/form-data``), held in memory: use it for forms, and `parts` for big uploads
        (awaitable; direct in sync handlers, like `body`).

        Args:
            max_fields: Most fields; the route option ``max_form_fields`` by default.

        Raises:
            UnsupportedMediaType: The body is of another type.
            BadRequest: The body is malformed.
            PayloadTooLarge: More than ``max_fields`` fields, a text field above
                ``max_form_field_size``, or another limit of `parts`.
        """
        return self._bridge(self._read_form(max_fields))

    def _bridge(self, coroutine: Coroutine[Any, Any, _T]) -> Awaitable[_T]:
        # In a sync handler, the value itself; typed as the awaitable that async code sees.
        stream = self._stream
        if stream is not None and threading.get_ident() != stream.thread:
            # A sync handler in the thread pool: let the event loop read, and wait for it.
            value = asyncio.run_coroutine_threadsafe(coroutine, stream.loop).result()
            return cast('Awaitable[_T]', value)
        return coroutine

    async def _read_body(self) -> bytes:
        if self._body is None:
            stream = self._stream
            if stream is None:
                self._body = b''
            else:
                self._body = await stream.read_all()
        return self._body

    async def _read_text(self, encoding: Optional[str]) -> str:
        charset = encoding or self._charset() or 'utf-8'
        try:
            return (await self._read_body()).decode(charset)
        except (UnicodeDecodeError, LookupError) as exc:
            raise BadRequest(f'body is not valid {charset}') from exc

    async def _read_json(self) -> Any:
        body = await self._read_body()
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
            raise BadRequest('body is not valid JSON') from exc

    async def _read_form(self, max_fields: Optional[int]) -> FormData:
        if self._form is None:
            from .forms import FormBuilder, parse_content_type, parse_form

            content_type = self._content_type_value()
            if not content_type:
                raise UnsupportedMediaType('a form needs a Content-Type')
            limits = self._limits(max_fields)
            if parse_content_type(content_type)[0] == 'multipart/form-data' and (
                    self._body is None):
                # Parsed as it arrives: the raw body is never held whole besides the form.
                from .uploads import PartReader

                builder = FormBuilder(limits)
                reader = PartReader(self._unread_stream(), content_type, limits)
                async for event in reader.events():
                    builder.feed((event,))
                self._form = builder.result()
            else:
                self._form = parse_form(content_type, await self._read_body(), limits=limits)
        return self._form

    def _unread_stream(self) -> Optional[BodyStream]:
        stream = self._stream
        if stream is not None and self._body is not None:
            raise RuntimeError('the body was already read')
        return stream

    def _content_type_value(self) -> str:
        return self.head.headers.get(b'content-type', b'').decode('latin-1')

    def _limits(self, max_fields: Optional[int] = None) -> FormLimits:
        from .forms import FormLimits

        context = self.context
        option: Callable[[str], Any] = (
            context.option if context is not None else _DEFAULTS.__getitem__)
        return FormLimits(
            max_fields if max_fields is not None else option('max_form_fields'),
            option('max_form_field_size'), option('max_part_size'),
            option('max_part_header_size'), option('max_preamble_size'),
        )

    def _charset(self) -> Optional[str]:
        value = self.head.headers.get(b'content-type', b'').decode('latin-1')
        for param in value.split(';')[1:]:
            key, _, val = param.strip().partition('=')
            if key.lower() == 'charset':
                return val.strip('"') or None
        return None

    def __repr__(self) -> str:
        return f'<Request {self.method} {self.path!r}>'


def _origin_form(target: bytes) -> bytes:
    if target == b'*':
        return b'*'
    # absolute-form: scheme "://" authority path-abempty [ "?" query ]
    rest = target.split(b'://', 1)[1]
    slash = rest.find(b'/')
    question = rest.find(b'?')
    if slash == -1 or (question != -1 and question < slash):
        return b'/' + (rest[question:] if question != -1 else b'')
    return rest[slash:]
