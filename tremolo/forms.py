"""Forms read whole into memory: ``application/x-www-form-urlencoded`` and
``multipart/form-data`` (RFC 7578). Big uploads should be streamed instead."""

from __future__ import annotations

import re
from typing import Optional

from .exceptions import BadRequest, UnsupportedMediaType
from .http.fields import MultiDict, parse_query

_MAX_PART_HEADER = 8192
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


def parse_form(content_type: str, body: bytes, max_fields: int = 1000) -> FormData:
    """Parse a form body according to its Content-Type.

    Raises:
        UnsupportedMediaType: Neither urlencoded nor multipart.
        BadRequest: Malformed body, or more than ``max_fields`` fields.
    """
    media_type, params = parse_content_type(content_type)
    if media_type == 'application/x-www-form-urlencoded':
        try:
            text = body.decode(params.get('charset', 'utf-8'))
            return FormData(parse_query(text, max_fields).multi_items())
        except (UnicodeDecodeError, LookupError) as exc:
            raise BadRequest('form is not valid text') from exc
        except ValueError as exc:
            raise BadRequest('too many form fields') from exc
    if media_type == 'multipart/form-data':
        boundary = params.get('boundary')
        if not boundary or len(boundary) > 70:
            raise BadRequest('multipart form without a valid boundary')
        return _parse_multipart(body, boundary.encode('latin-1'), max_fields)
    raise UnsupportedMediaType(f'cannot read a form from {media_type or "no content type"}')


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type value into its lower-cased media type and its parameters."""
    media_type, _, rest = value.partition(';')
    params = {}
    for match in _PARAM.finditer(';' + rest):
        val = match.group(2).strip()
        if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
            val = re.sub(r'\\(.)', r'\1', val[1:-1])
        params[match.group(1).lower()] = val
    return media_type.strip().lower(), params


def _parse_multipart(body: bytes, boundary: bytes, max_fields: int) -> FormData:
    delimiter = b'--' + boundary
    start = body.find(delimiter)
    if start == -1:
        raise BadRequest('multipart form without its boundary')
    items: list[tuple[str, str]] = []
    files: dict[str, list[UploadedFile]] = {}
    pos = start + len(delimiter)
    count = 0
    separator = b'\r\n' + delimiter
    while True:
        if body.startswith(b'--', pos):
            return FormData(items, files)  # the close delimiter; the epilogue is ignored
        # transport-padding (RFC 2046 §5.1.1) then CRLF
        line_end = body.find(b'\r\n', pos)
        if line_end == -1 or body[pos:line_end].strip(b' \t'):
            raise BadRequest('malformed multipart delimiter')
        head_end = body.find(b'\r\n\r\n', line_end)
        if head_end == -1 and body.startswith(b'\r\n', line_end + 2):
            head_end = line_end
        if head_end == -1 or head_end - line_end > _MAX_PART_HEADER:
            raise BadRequest('malformed multipart part headers')
        headers = _part_headers(body[line_end + 2:head_end])
        content_start = head_end + 4
        content_end = body.find(separator, content_start)
        if content_end == -1:
            raise BadRequest('multipart form without its final boundary')
        count += 1
        if count > max_fields:
            raise BadRequest('too many form fields')
        _add_part(headers, body[content_start:content_end], items, files)
        pos = content_end + len(separator)


def _part_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    if not block:
        return headers
    for line in block.split(b'\r\n'):
        name, sep, value = line.partition(b':')
        if not sep or not name.strip():
            raise BadRequest('malformed multipart part header')
        headers[name.strip().lower().decode('latin-1')] = value.strip().decode('utf-8', 'replace')
    return headers


def _add_part(
    headers: dict[str, str], content: bytes, items: list[tuple[str, str]],
    files: dict[str, list[UploadedFile]],
) -> None:
    disposition = headers.get('content-disposition')
    if disposition is None:
        raise BadRequest('multipart part without Content-Disposition')
    kind, params = parse_content_type(disposition)
    name = params.get('name')
    if kind != 'form-data' or name is None:
        raise BadRequest('multipart part without a form-data name')
    filename = params.get('filename')
    if filename is not None:
        content_type = headers.get('content-type', 'application/octet-stream')
        files.setdefault(name, []).append(
            UploadedFile(name, filename, content_type, headers, content)
        )
        return
    _, part_params = parse_content_type(headers.get('content-type', 'text/plain'))
    try:
        items.append((name, content.decode(part_params.get('charset', 'utf-8'))))
    except (UnicodeDecodeError, LookupError) as exc:
        raise BadRequest(f'form field {name!r} is not valid text') from exc
