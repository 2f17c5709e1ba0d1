"""Forms read whole into memory: ``application/x-www-form-urlencoded`` and
``multipart/form-data`` (RFC 7578). Big uploads should be streamed instead (`tremolo.uploads`).

Multipart forms go through the same sans-IO parser as streamed parts
(`tremolo.http.multipart`); `FormBuilder` turns its events into a `FormData`, whether the
events come from a whole body (`parse_form`) or from the socket as the body arrives
(``request.form()``).
"""

from __future__ import annotations

import re
from typing import Iterable, Optional
from urllib.parse import unquote

from .exceptions import BadRequest, HTTPException, PayloadTooLarge, UnsupportedMediaType
from .http import multipart
from .http.errors import ParseError
from .http.fields import MultiDict, parse_query

KiB = 1024
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


class UploadedFile:
    """A file part of a multipart form.

    Attributes:
        name: The form field name.
        filename: The file name the client sent (never trust it as a path).
        content_type: The part's Content-Type (``application/octet-stream`` when absent).
        headers: The part's headers, lower-cased names.
        data: The content.
    """

    __slots__ = ('name', 'filename', 'content_type', 'headers', 'data')

    def __init__(
        self, name: str, filename: str, content_type: str, headers: dict[str, str], data: bytes
    ) -> None:
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.headers = headers
        self.data = data

    @property
    def size(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f'<UploadedFile {self.name!r} {self.filename!r} {self.size} bytes>'


class FormData(MultiDict):
    """Form fields (as strings) plus `files`, the file parts by field name."""

    __slots__ = ('files',)

    def __init__(
        self, items: Optional[list[tuple[str, str]]] = None,
        files: Optional[dict[str, list[UploadedFile]]] = None,
    ) -> None:
        super().__init__(items)
        self.files: dict[str, list[UploadedFile]] = files or {}


class FormLimits:
    """The limits that apply while reading a form or streamed parts (the route options of the
    same names; see the configuration page)."""

    __slots__ = ('max_fields', 'max_field_size', 'max_part_size', 'max_part_header_size',
                 'max_preamble_size')

    def __init__(
        self, max_fields: int = 1000, max_field_size: int = 1024 * KiB, max_part_size: int = 0,
        max_part_header_size: int = 8 * KiB, max_preamble_size: int = 16 * KiB,
    ) -> None:
        self.max_fields = max_fields
        self.max_field_size = max_field_size
        self.max_part_size = max_part_size
        self.max_part_header_size = max_part_header_size
        self.max_preamble_size = max_preamble_size

    def parser(self, content_type: str) -> multipart.MultipartParser:
        """A multipart parser for a body of this Content-Type.

        Raises:
            UnsupportedMediaType: Not a ``multipart/*`` type.
            BadRequest: No valid boundary.
        """
        media_type, params = parse_content_type(content_type)
        if not media_type.startswith('multipart/'):
            raise UnsupportedMediaType(
                f'expected a multipart body, not {media_type or "no content type"}')
        boundary = params.get('boundary', '').encode('latin-1', 'replace')
        if not multipart.valid_boundary(boundary):
            raise BadRequest('multipart body without a valid boundary')
        return multipart.MultipartParser(
            boundary, max_parts=self.max_fields, max_header_size=self.max_part_header_size,
            max_preamble_size=self.max_preamble_size, max_part_size=self.max_part_size,
        )


def http_error(exc: ParseError) -> HTTPException:
    """The response error for a parser error (413 for limits, else its status)."""
    if exc.status == 413:
        return PayloadTooLarge(exc.message)
    return BadRequest(exc.message, status=exc.status)


def part_info(
    headers: list[tuple[str, str]], form_data: bool = True
) -> tuple[dict[str, str], Optional[str], Optional[str], str]:
    """``(headers, name, filename, content_type)`` of a part from its header fields.

    Raises:
        BadRequest: In a ``multipart/form-data`` body, a part without
            ``Content-Disposition: form-data; name=...`` (RFC 7578 §4.2).
    """
    fields = dict(headers)
    name = filename = None
    disposition = fields.get('content-disposition')
    if disposition is not None:
        kind, params = parse_content_type(disposition)
        name = params.get('name')
        filename = params.get('filename')
        extended = params.get('filename*')
        if extended is not None and "''" in extended:
            # RFC 8187 ext-value (charset'language'pct-encoded); RFC 7578 §4.2 discourages it,
            # but some clients send it alongside filename.
            charset, _, encoded = extended.partition("'")
            encoded = encoded.partition("'")[2]
            try:
                filename = unquote(encoded, encoding=charset or 'utf-8', errors='strict')
            except (LookupError, UnicodeDecodeError):
                pass
        if form_data and (kind != 'form-data' or name is None):
            raise BadRequest('multipart part without a form-data name')
    elif form_data:
        raise BadRequest('multipart part without Content-Disposition')
    default_type = 'application/octet-stream' if filename is not None else 'text/plain'
    return fields, name, filename, fields.get('content-type', default_type)


class FormBuilder:
    """Builds a `FormData` from the events of a multipart parser."""

    __slots__ = ('limits', 'items', 'files', '_part', '_pieces', '_size')

    def __init__(self, limits: FormLimits) -> None:
        self.limits = limits
        self.items: list[tuple[str, str]] = []
        self.files: dict[str, list[UploadedFile]] = {}
        self._part: Optional[tuple[dict[str, str], Optional[str], Optional[str], str]] = None
        self._pieces: list[bytes] = []
        self._size = 0

    def feed(self, events: Iterable[multipart.Event]) -> None:
        for event in events:
            if type(event) is bytes:
                self._size += len(event)
                part = self._part
                if part is not None and part[2] is None and (
                        self._size > self.limits.max_field_size):
                    raise PayloadTooLarge(f'form field {part[1]!r} too large')
                self._pieces.append(event)
            elif isinstance(event, multipart.PartStart):
                self._part = part_info(event.headers)
                self._pieces = []
                self._size = 0
            elif event is multipart.PART_END:
                self._add()

    def _add(self) -> None:
        assert self._part is not None
        headers, name, filename, content_type = self._part
        assert name is not None
        content = b''.join(self._pieces)
        self._part = None
        self._pieces = []
        if filename is not None:
            self.files.setdefault(name, []).append(
                UploadedFile(name, filename, content_type, headers, content))
            return
        _, params = parse_content_type(content_type)
        try:
            self.items.append((name, content.decode(params.get('charset', 'utf-8'))))
        except (UnicodeDecodeError, LookupError) as exc:
            raise BadRequest(f'form field {name!r} is not valid text') from exc

    def result(self) -> FormData:
        return FormData(self.items, self.files)


def parse_urlencoded(content_type: str, body: bytes, limits: FormLimits) -> FormData:
    """Parse an ``application/x-www-form-urlencoded`` body.

    Raises:
        BadRequest: It does not decode.
        PayloadTooLarge: More than ``max_fields`` fields, or one above ``max_field_size``.
    """
    _, params = parse_content_type(content_type)
    try:
        text = body.decode(params.get('charset', 'utf-8'))
    except (UnicodeDecodeError, LookupError) as exc:
        raise BadRequest('form is not valid text') from exc
    try:
        items = parse_query(text, limits.max_fields).multi_items()
    except ValueError as exc:
        raise PayloadTooLarge('too many form fields') from exc
    for name, value in items:
        if len(value) > limits.max_field_size:
            raise PayloadTooLarge(f'form field {name!r} too large')
    return FormData(items)


def parse_form(
    content_type: str, body: bytes, max_fields: int = 1000, limits: Optional[FormLimits] = None,
) -> FormData:
    """Parse a whole form body according to its Content-Type.

    Args:
        content_type: The Content-Type value.
        body: The body.
        max_fields: Most fields (when ``limits`` is not given).
        limits: The limits to apply.

    Raises:
        UnsupportedMediaType: Neither urlencoded nor multipart/form-data.
        BadRequest: A malformed body.
        PayloadTooLarge: A limit was exceeded.
    """
    limits = limits or FormLimits(max_fields=max_fields)
    media_type, _ = parse_content_type(content_type)
    if media_type == 'application/x-www-form-urlencoded':
        return parse_urlencoded(content_type, body, limits)
    if media_type != 'multipart/form-data':
        raise UnsupportedMediaType(
            f'cannot read a form from {media_type or "no content type"}')
    parser = limits.parser(content_type)
    builder = FormBuilder(limits)
    try:
        builder.feed(parser.feed(body))
        parser.feed_eof()
    except ParseError as exc:
        raise http_error(exc) from exc
    return builder.result()


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type (or Content-Disposition) value into its lower-cased type and its
    parameters."""
    media_type, _, rest = value.partition(';')
    params = {}
    for match in _PARAM.finditer(';' + rest):
        val = match.group(2).strip()
        if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
            val = re.sub(r'\\(.)', r'\1', val[1:-1])
        params[match.group(1).lower()] = val
    return media_type.strip().lower(), params
