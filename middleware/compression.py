"""Compression: responses in gzip, brotli or zstd as the client accepts, request bodies decoded.

```python
from tremolo import Tremolo
from tremolo.middleware.compression import Compression

app = Tremolo()
app.install(Compression(minimum_size=500))
```

Responses. The content coding is negotiated from ``Accept-Encoding`` (RFC 9110 §12.5.3, with
its q-values, ``identity;q=0`` and ``*``) among the codings available here, in a configurable
order of preference: ``zstd`` (the standard library's ``compression.zstd`` on Python 3.14+,
else the optional ``backports.zstd``), ``br`` (the optional ``brotli``, or ``brotlicffi`` on
PyPy) and ``gzip`` (always). A compressed response gets ``Content-Encoding``, ``Vary:
Accept-Encoding``, its strong ``ETag`` weakened (the bytes differ from the identity
representation's, RFC 9110 §8.8.1) and no ``Accept-Ranges`` (its ranges would be of the
identity bytes). A streamed body is compressed and *flushed* at every piece the handler writes
or yields (every server-sent event), so the client sees each piece when it is produced.

Left alone: responses whose whole body is shorter than ``minimum_size`` (unless the client
refuses ``identity``), responses already encoded, ``206``, ``304``, ``204`` and ``1xx``
responses, answers to ``HEAD``, ``Cache-Control: no-transform``, and media types outside
``content_types``.

Request bodies sent with ``Content-Encoding: gzip``, ``deflate``, ``br`` or ``zstd`` are decoded
as the handler reads them, and ``max_body_size`` applies to the decoded bytes: a decompression
bomb stops at the limit with ``413``. Another coding is answered ``415`` (RFC 9110 §15.5.16),
a body that is not valid in its coding ``400``.

The compression filter sits before the bandwidth limiter's (`tremolo.middleware.bandwidth`):
the bytes that are paced are the compressed ones.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from typing import Any, Callable, Optional

from tremolo import (
    BadRequest,
    Extension,
    PayloadTooLarge,
    Request,
    Response,
    Tremolo,
    UnsupportedMediaType,
)

__all__ = ['Compression', 'DEFAULT_CONTENT_TYPES', 'available_encodings', 'negotiate']

#: The media types compressed by default: text, and the structured formats that are text.
#: ``type/*`` matches a whole type, ``*/*+suffix`` a structured syntax suffix (RFC 6838 §4.2.8).
DEFAULT_CONTENT_TYPES = (
    'text/*', '*/*+json', '*/*+xml', 'application/json', 'application/javascript',
    'application/xml', 'application/x-ndjson', 'application/wasm', 'image/svg+xml',
    'image/x-icon', 'image/bmp', 'font/ttf', 'font/otf', 'application/vnd.ms-fontobject',
)

#: Request-body codings, by the name in ``Content-Encoding`` (``x-gzip`` is ``gzip``, RFC 9110
#: §8.4.1.3).
_REQUEST_ALIASES = {'gzip': 'gzip', 'x-gzip': 'gzip', 'deflate': 'deflate', 'br': 'br',
                    'zstd': 'zstd'}

#: RFC 9659 §3: a zstd window above 8 MiB need not be decoded by an HTTP recipient.
_ZSTD_WINDOW_LOG_MAX = 23

#: Accept-Encoding values and media types seen lately, with what they decided: browsers send a
#: handful of distinct values, so each is parsed once.
_CACHE_SIZE = 256


# -- the codecs --------------------------------------------------------------------------------

def _brotli_module() -> Any:
    for name in ('brotli', 'brotlicffi'):
        try:
            return __import__(name)
        except ImportError:
            continue
    return None


def _zstd_module() -> Any:
    try:
        from compression import zstd  # Python 3.14+
    except ImportError:
        try:
            from backports import zstd
        except ImportError:
            return None
    return zstd


_brotli = _brotli_module()
_zstd = _zstd_module()


def _brotli_decodes_in_bounds() -> bool:
    # Decoding with a bounded output (brotli >= 1.2) is what keeps a brotli bomb from filling
    # memory: without it, br request bodies are refused (415) rather than decoded unbounded.
    if _brotli is None:
        return False
    try:
        decompressor = _brotli.Decompressor()
        decompressor.process(b'', output_buffer_limit=1)
        return callable(getattr(decompressor, 'can_accept_more_data', None))
    except TypeError:
        return False


_BROTLI_DECODES = _brotli_decodes_in_bounds()


def available_encodings() -> tuple[str, ...]:
    """The response codings this installation can produce, best first: ``zstd`` and ``br``
    when their library is installed, ``gzip`` always."""
    found = []
    if _zstd is not None:
        found.append('zstd')
    if _brotli is not None:
        found.append('br')
    found.append('gzip')
    return tuple(found)


_PACKAGES = {'zstd': 'backports.zstd (or Python 3.14+)', 'br': 'brotli (brotlicffi on PyPy)'}

Encoder = Callable[[bytes, bool], bytes]


def _gzip_encoder(level: int) -> Encoder:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: the gzip format
    compress = compressor.compress
    flush = compressor.flush

    def encode(data: bytes, final: bool) -> bytes:
        # A sync flush ends each piece on a byte boundary: the client can decode all of it now.
        return compress(data) + flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)

    return encode


def _brotli_encoder(quality: int) -> Encoder:
    compressor = _brotli.Compressor(quality=quality)

    def encode(data: bytes, final: bool) -> bytes:
        out: bytes = compressor.process(data) if data else b''
        tail: bytes = compressor.finish() if final else compressor.flush()
        return out + tail

    return encode


def _zstd_encoder(level: int) -> Encoder:
    compressor = _zstd.ZstdCompressor(level=level)
    block = compressor.FLUSH_BLOCK
    frame = compressor.FLUSH_FRAME

    def encode(data: bytes, final: bool) -> bytes:
        out: bytes = compressor.compress(data, frame if final else block)
        return out

    return encode


# -- request bodies: decoders that stop at the body limit ---------------------------------------

class _Decoder:
    """A stream filter decoding one content coding of a request body, with the decoded size
    held to ``limit`` (the request's ``max_body_size``, read at the first piece)."""

    __slots__ = ('name', 'request', 'limit', 'produced', 'state')

    def __init__(self, name: str, request: Request) -> None:
        self.name = name
        self.request = request
        self.limit = -1
        self.produced = 0
        self.state: Any = None

    def __call__(self, data: bytes, final: bool) -> bytes:
        if self.limit < 0:
            # Read now, not when the filter was added: the handler may change the limit first.
            self.limit = self.request.max_body_size
            self.state = self._new()
        try:
            out = self._decode(data) if data else b''
            if final:
                out += self._finish()
        except (zlib.error, ValueError, EOFError) as exc:
            raise BadRequest(f'the request body is not valid {self.name}') from exc
        except Exception as exc:
            if _is_codec_error(exc):
                raise BadRequest(f'the request body is not valid {self.name}') from exc
            raise
        return out

    def _room(self) -> int:
        """The most bytes one call may produce: one past the limit, so that going over shows."""
        return self.limit - self.produced + 1

    def _count(self, out: bytes) -> bytes:
        self.produced += len(out)
        if self.produced > self.limit:
            raise PayloadTooLarge('request body too large once decoded')
        return out

    def _new(self) -> Any:
        name = self.name
        if name == 'gzip':
            return zlib.decompressobj(31)
        if name == 'deflate':
            return zlib.decompressobj(15)
        if name == 'br':
            return _brotli.Decompressor()
        options = {_zstd.DecompressionParameter.window_log_max: _ZSTD_WINDOW_LOG_MAX}
        return _zstd.ZstdDecompressor(options=options)

    def _decode(self, data: bytes) -> bytes:
        name = self.name
        parts = []
        if name in ('gzip', 'deflate'):
            while data:
                state = self.state
                if state.eof:
                    if name == 'deflate':
                        raise ValueError('data after the end of the stream')
                    self.state = state = zlib.decompressobj(31)  # another gzip member
                parts.append(self._count(state.decompress(data, self._room())))
                # Below the room, everything was consumed; at the end of a member, what
                # follows it is the next one.
                data = state.unused_data if state.eof else state.unconsumed_tail
            return b''.join(parts)
        if name == 'br':
            state = self.state
            out = self._count(state.process(data, output_buffer_limit=self._room()))
            parts.append(out)
            while not state.can_accept_more_data():
                parts.append(self._count(state.process(b'', output_buffer_limit=self._room())))
            return b''.join(parts)
        # zstd: frames may follow each other.
        while data:
            state = self.state
            parts.append(self._count(state.decompress(data, self._room())))
            data = b''
            while not state.eof and not state.needs_input:
                parts.append(self._count(state.decompress(b'', self._room())))
            if state.eof:
                data = state.unused_data
                if data:
                    self.state = self._new()
        return b''.join(parts)

    def _finish(self) -> bytes:
        state = self.state
        if self.name in ('gzip', 'deflate'):
            out = self._count(state.flush())
            if not state.eof:
                raise ValueError('the stream is truncated')
            return out
        if self.name == 'br':
            if not state.is_finished():
                raise ValueError('the stream is truncated')
            return b''
        if not state.eof:
            raise ValueError('the stream is truncated')
        return b''

    def __repr__(self) -> str:
        return f'<{self.name} decoder>'


def _is_codec_error(exc: Exception) -> bool:
    error = getattr(_brotli, 'error', None)
    if error is not None and isinstance(exc, error):
        return True
    zstd_error = getattr(_zstd, 'ZstdError', None)
    return zstd_error is not None and isinstance(exc, zstd_error)


# -- negotiation ---------------------------------------------------------------------------------

def _qvalue(text: str) -> Optional[float]:
    """The weight of a ``q=`` parameter, or ``None`` when it is not a valid qvalue."""
    text = text.strip()
    if _QVALUE.fullmatch(text) is None:
        return None
    return float(text)


# RFC 9110 §12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
_QVALUE = re.compile(r'0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?')


def parse_accept_encoding(value: str) -> dict[str, float]:
    """The codings of an ``Accept-Encoding`` value with their q-values, lower-cased (``x-gzip``
    counted as ``gzip``); items with an invalid q-value are left out."""
    found: dict[str, float] = {}
    for item in value.split(','):
        coding, _, params = item.partition(';')
        coding = coding.strip().lower()
        if not coding:
            continue
        weight: Optional[float] = 1.0
        for param in params.split(';'):
            key, _, text = param.partition('=')
            if key.strip().lower() == 'q':
                weight = _qvalue(text)
        if weight is None:
            continue
        if coding == 'x-gzip':
            coding = 'gzip'
        found[coding] = max(weight, found.get(coding, weight))
    return found


def negotiate(value: Optional[str], preference: Iterable[str]) -> tuple[Optional[str], bool]:
    """Choose the coding of a response from the request's ``Accept-Encoding`` (RFC 9110
    §12.5.3).

    Args:
        value: The ``Accept-Encoding`` value, or ``None`` when the request has none (then
            nothing is chosen: a client that says nothing gets the identity coding).
        preference: The codings available, best first: the order breaks ties between equal
            q-values.

    Returns:
        The coding chosen (``None`` for none) and whether the identity coding is acceptable.
    """
    if value is None:
        return None, True
    accepted = parse_accept_encoding(value)
    star = accepted.get('*')
    best: Optional[str] = None
    best_q = 0.0
    for coding in preference:
        weight = accepted.get(coding, star if star is not None else 0.0)
        if weight > best_q:
            best, best_q = coding, weight
    identity = accepted.get('identity', star if star is not None else 1.0)
    return best, identity > 0


# -- the middleware ------------------------------------------------------------------------------

class Compression(Extension):
    """Compress responses and decode compressed request bodies.

    Install it with ``app.install(Compression())``. Its ``on_response`` hook decides at the
    last moment, once the other hooks have set the headers (a low priority runs late on the
    way out).

    Args:
        minimum_size: Whole bodies shorter than this many bytes are sent as they are
            (compressing them saves nothing); streamed bodies are always compressed.
        encodings: The codings offered, best first (``'zstd'``, ``'br'``, ``'gzip'``); by
            default every one that is installed, in that order.
        gzip_level: The gzip level, 1 (fastest) to 9 (smallest).
        brotli_quality: The brotli quality, 0 to 11.
        zstd_level: The zstd level, 1 to 19.
        content_types: The media types compressed: ``'type/subtype'``, ``'type/*'`` or
            ``'*/*+suffix'``.
        decode_requests: Decode request bodies sent with ``Content-Encoding``.
        priority: The priority of its hooks (see the table of the middleware library).
        prefix: Only paths under this prefix are compressed.

    Raises:
        ValueError: An unknown or unavailable coding (naming the package to install), a level
            out of range, or a negative ``minimum_size``.
    """

    name = 'compression'

    def __init__(
        self, minimum_size: int = 500, *, encodings: Optional[Iterable[str]] = None,
        gzip_level: int = 6, brotli_quality: int = 4, zstd_level: int = 3,
        content_types: Iterable[str] = DEFAULT_CONTENT_TYPES, decode_requests: bool = True,
        priority: int = 40, prefix: Optional[str] = None,
    ) -> None:
        if isinstance(minimum_size, bool) or not isinstance(minimum_size, int) or (
                minimum_size < 0):
            raise ValueError(f'minimum_size must be an integer of at least 0, not '
                             f'{minimum_size!r}')
        _check_level('gzip_level', gzip_level, 1, 9)
        _check_level('brotli_quality', brotli_quality, 0, 11)
        _check_level('zstd_level', zstd_level, 1, 19)
        available = available_encodings()
        if encodings is None:
            chosen = available
        else:
            chosen = tuple(encodings) if not isinstance(encodings, str) else (encodings,)
            for coding in chosen:
                if coding not in ('zstd', 'br', 'gzip'):
                    raise ValueError(f"encodings: unknown coding {coding!r}; known: 'zstd', "
                                     f"'br', 'gzip'")
                if coding not in available:
                    raise ValueError(f'encodings: {coding!r} needs the {_PACKAGES[coding]} '
                                     f'package (pip install tremolo[compression])')
            if not chosen:
                raise ValueError('encodings: name at least one coding')
        self.minimum_size = minimum_size
        self.encodings = chosen
        self.gzip_level = gzip_level
        self.brotli_quality = brotli_quality
        self.zstd_level = zstd_level
        self.content_types = tuple(content_types)
        exact, prefixes, suffixes = set(), [], []
        for media in self.content_types:
            media = media.strip().lower()
            if media.startswith('*/*+'):
                suffixes.append(media[3:])
            elif media.endswith('/*'):
                prefixes.append(media[:-1])
            elif '/' in media and '*' not in media:
                exact.add(media)
            else:
                raise ValueError(f'content_types: {media!r} is not type/subtype, type/* or '
                                 f'*/*+suffix')
        self._exact = frozenset(exact)
        self._prefixes = tuple(prefixes)
        self._suffixes = frozenset(suffixes)
        self.decode_requests = decode_requests
        self.priority = priority
        self.prefix = prefix
        self._negotiated: dict[bytes, tuple[Optional[str], bool]] = {}
        self._compressible: dict[str, bool] = {}

    def setup(self, app: Tremolo) -> None:
        if self.decode_requests:
            app.on_request(priority=self.priority, prefix=self.prefix)(self.on_request)
        app.on_response(priority=self.priority, prefix=self.prefix)(self.on_response)

    # -- requests --------------------------------------------------------------------------------

    def on_request(self, request: Request) -> None:
        """Decode the request body as the handler reads it, if it has a content coding."""
        if not request.has_body:
            return
        raw = request.head.headers.get(b'content-encoding')
        if raw is None:
            return
        codings = [item.strip().lower() for item in raw.decode('latin-1').split(',')]
        codings = [item for item in codings if item and item != 'identity']
        if len(codings) > 2:
            raise UnsupportedMediaType('at most two content codings are decoded')
        decoders = []
        for coding in codings:
            name = _REQUEST_ALIASES.get(coding)
            if name is None or (name == 'br' and not _BROTLI_DECODES) or (
                    name == 'zstd' and _zstd is None):
                raise UnsupportedMediaType(
                    f'unsupported Content-Encoding {coding!r}; this server decodes '
                    f'{", ".join(_decodable())}', headers={'Accept-Encoding': ', '.join(
                        _decodable())})
            decoders.append(_Decoder(name, request))
        # The codings are listed in the order they were applied: undo the last one first.
        for decoder in reversed(decoders):
            request.add_filter(decoder)

    # -- responses -------------------------------------------------------------------------------

    def on_response(self, request: Request, response: Response) -> None:
        """Choose a coding for the response and add the filter that applies it."""
        status = response.status
        if status < 200 or status == 204 or status == 206 or status == 304:
            return
        headers = response.headers
        if 'content-encoding' in headers:
            return  # already encoded (a precompressed file, a proxied body)
        if not self._is_compressible(response.content_type):
            return
        cache_control = headers.get('cache-control')
        if cache_control is not None and 'no-transform' in cache_control.lower():
            return  # RFC 9111 §5.2.2.6: intermediaries (and we) must not transform it
        # From here on the representation depends on Accept-Encoding, sent compressed or not.
        response.add_vary('Accept-Encoding')
        if request.method == 'HEAD':
            return  # no body to compress (the identity representation's head is sent)
        coding, identity = self._negotiate(request.head.headers.get(b'accept-encoding'))
        if coding is None:
            return
        length = response.body_length
        if length is not None and (length == 0 or length < self.minimum_size and identity):
            return
        headers['Content-Encoding'] = coding
        etag = headers.get('etag')
        if etag is not None and not etag.startswith('W/'):
            headers['ETag'] = 'W/' + etag
        if 'accept-ranges' in headers:
            del headers['Accept-Ranges']
        response.add_filter(self._encoder(coding))

    def _encoder(self, coding: str) -> Encoder:
        if coding == 'gzip':
            return _gzip_encoder(self.gzip_level)
        if coding == 'br':
            return _brotli_encoder(self.brotli_quality)
        return _zstd_encoder(self.zstd_level)

    def _negotiate(self, raw: Optional[bytes]) -> tuple[Optional[str], bool]:
        if raw is None:
            return None, True
        decided = self._negotiated.get(raw)
        if decided is None:
            decided = negotiate(raw.decode('latin-1'), self.encodings)
            if len(self._negotiated) >= _CACHE_SIZE:
                self._negotiated.clear()
            self._negotiated[raw] = decided
        return decided

    def _is_compressible(self, content_type: str) -> bool:
        decided = self._compressible.get(content_type)
        if decided is None:
            media = content_type.split(';', 1)[0].strip().lower()
            plus = media.rfind('+')
            decided = media in self._exact or media.startswith(self._prefixes) or (
                plus > 0 and media[plus:] in self._suffixes)
            if len(self._compressible) >= _CACHE_SIZE:
                self._compressible.clear()
            self._compressible[content_type] = decided
        return decided

    def __repr__(self) -> str:
        return f'<Compression {"/".join(self.encodings)} minimum_size={self.minimum_size}>'


def _decodable() -> list[str]:
    names = ['gzip', 'deflate']
    if _BROTLI_DECODES:
        names.append('br')
    if _zstd is not None:
        names.append('zstd')
    return names


def _check_level(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f'{name} must be an integer from {low} to {high}, not {value!r}')
