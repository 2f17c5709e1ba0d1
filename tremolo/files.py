"""Sending a file as the response: `Response.sendfile` delegates here.

The decisions are the sans-IO ones of `tremolo.http.conditional` (304/412) and
`tremolo.http.ranges` (206/416); this module opens the file, sets the headers and sends the
ranges with `Response.write_file`, which moves the bytes in one of two ways:

- **Zero-copy**: ``loop.sendfile()`` (``os.sendfile`` underneath) on a plain TCP or UNIX
  socket: the kernel copies from the page cache to the socket, the file never enters Python.
- **Read and write**: pieces of ``chunk_size`` bytes read from the file and written with the
  response's own backpressure. It is used when zero-copy cannot be: over TLS (the bytes must be
  encrypted in user space), when the response has stream filters (a speed limiter or
  compression must see every piece; only filters that change the length, such as
  compression, make the body chunked), when the event loop has no ``sendfile`` (uvloop), and
  on the in-memory transport of the test client.

The pieces are read with plain blocking reads on the event loop's thread. A regular file
cannot be read without blocking in any case (``O_NONBLOCK`` means nothing to it), and a read of
a few KiB that the page cache serves takes microseconds, less than handing each read to a
thread and back. Files on a slow network disk would stall the loop for the time of one read;
serve those from a handler that reads in a thread.
"""

from __future__ import annotations

import mimetypes
import os
import secrets
import stat
from collections.abc import Mapping
from typing import TYPE_CHECKING, BinaryIO, Optional, Union
from urllib.parse import quote

from .exceptions import Forbidden, HTTPException, NotFound, RangeNotSatisfiable
from .http.conditional import evaluate, make_etag, range_allowed
from .http.dates import http_date
from .http.ranges import MultipartRanges, parse_range, unsatisfied_range
from .types import HeadersLike

if TYPE_CHECKING:
    from .response import Response

PathLike = Union[str, 'os.PathLike[str]']

# A compressed file keeps its own media type: sending it as the type of what it contains
# with Content-Encoding would make clients decompress a download they asked for as is.
_ENCODED_TYPES = {
    'gzip': 'application/gzip', 'bzip2': 'application/x-bzip2', 'xz': 'application/x-xz',
    'compress': 'application/x-compress', 'br': 'application/x-brotli',
}
_TEXT_TYPES = frozenset(('application/javascript', 'application/json', 'application/xml'))


def guess_content_type(path: PathLike) -> str:
    """The Content-Type of a file by its name (`mimetypes`), ``charset=utf-8`` added for text;
    ``application/octet-stream`` when the name says nothing."""
    content_type, encoding = mimetypes.guess_type(os.fspath(path), strict=False)
    if encoding is not None:
        return _ENCODED_TYPES.get(encoding, 'application/octet-stream')
    if content_type is None:
        return 'application/octet-stream'
    if content_type.startswith('text/') or content_type in _TEXT_TYPES:
        return content_type + '; charset=utf-8'
    return content_type


def content_disposition(filename: str, disposition: str = 'attachment') -> str:
    """A ``Content-Disposition`` value that offers ``filename`` to save as (RFC 6266): an ASCII
    ``filename`` for every client and, when the name is not plain ASCII, ``filename*`` in
    UTF-8 (RFC 8187)."""
    plain = ''.join(
        char if ' ' <= char <= '~' and char not in '"\\/' else '_' for char in filename
    )
    value = f'{disposition}; filename="{plain}"'
    if plain != filename:
        value += f"; filename*=UTF-8''{quote(filename.replace('/', '_'), safe='')}"
    return value


def open_file(path: PathLike) -> tuple[BinaryIO, os.stat_result]:
    """Open a regular file for sending and stat it (the stat of what was opened, not of
    whatever the name points to a moment later).

    Raises:
        NotFound: Missing, not a regular file (a directory, a FIFO, a device), or a name no
            file can have.
        Forbidden: The server may not read it.
    """
    # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just after).
    flags = os.O_RDONLY | getattr(os, 'O_NONBLOCK', 0) | getattr(os, 'O_BINARY', 0)
    try:
        fd = os.open(path, flags)
    except PermissionError as exc:
        raise Forbidden() from exc
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        raise NotFound() from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotFound()
        file = open(fd, 'rb', buffering=0)
        file.name = os.fspath(path)  # for messages: it was opened by its descriptor
        return file, info
    except BaseException:
        os.close(fd)
        raise


async def send_file(
    response: Response, path: PathLike, *, content_type: Optional[str] = None,
    filename: Optional[str] = None, headers: Optional[HeadersLike] = None,
    etag: Union[bool, str] = True, last_modified: bool = True, ranges: bool = True,
    chunk_size: Optional[int] = None,
) -> None:
    """Send the file at ``path`` as the response (see `Response.sendfile`)."""
    if response.headers_sent:
        raise RuntimeError('cannot send a file: the response has already started')
    if chunk_size is not None and chunk_size < 1:
        raise ValueError('chunk_size must be at least 1')
    file, info = open_file(path)
    with file:
        size = info.st_size
        tag = make_etag(info.st_mtime_ns, size) if etag is True else (etag or None)
        modified = int(info.st_mtime) if last_modified else None
        request = response.request
        fields = request.head.headers
        response_headers = response.headers
        if tag is not None:
            response_headers['ETag'] = tag
        if modified is not None:
            response_headers['Last-Modified'] = http_date(modified)
        for name, value in (headers.items() if isinstance(headers, Mapping) else headers or ()):
            response_headers[name] = value
        # RFC 9110 §13.2.1: preconditions (and ranges) are for a response that would be 2xx;
        # a file sent as an error page (status 404, ...) is sent as it is.
        success = 200 <= response.status < 300
        status = evaluate(
            request.method, etag=tag, last_modified=modified,
            if_match=fields.get(b'if-match'), if_none_match=fields.get(b'if-none-match'),
            if_modified_since=fields.get(b'if-modified-since'),
            if_unmodified_since=fields.get(b'if-unmodified-since'),
        ) if success else 200
        if status == 412:
            raise HTTPException(status=412)
        if status == 304:
            if tag is not None:
                # RFC 9110 §15.4.5: Last-Modified is for caches only without an ETag.
                del response_headers['Last-Modified']
            response.status = 304
            await response.send(b'')
            return
        if content_type is None:
            content_type = guess_content_type(path)
        response.set_content_type(content_type)
        if filename is not None:
            response_headers['Content-Disposition'] = content_disposition(filename)
        ranges = ranges and success
        if ranges:
            response_headers['Accept-Ranges'] = 'bytes'
        selected = None
        requested = fields.get(b'range')
        # RFC 9110 §14.2: range handling is defined for GET only; HEAD gets the 200 head.
        if (ranges and requested is not None and request.method == 'GET'
                and range_allowed(fields.get(b'if-range'), etag=tag, last_modified=modified)):
            selected = parse_range(requested, size)
            if selected == ():
                raise RangeNotSatisfiable(headers={'Content-Range': unsatisfied_range(size)})
        if selected is None:
            await response.start(size)
            await response.write_file(file, 0, size, chunk_size)
        elif len(selected) == 1:
            response.status = 206
            response_headers['Content-Range'] = selected[0].content_range(size)
            await response.start(selected[0].length)
            await response.write_file(file, selected[0].start, selected[0].length, chunk_size)
        else:
            multipart = MultipartRanges(selected, size, content_type, secrets.token_hex(16))
            response.status = 206
            response.set_content_type(multipart.content_type)
            await response.start(multipart.content_length)
            for head, byte_range in multipart.parts():
                await response.write(head)
                await response.write_file(file, byte_range.start, byte_range.length, chunk_size,
                                          zero_copy=False)
            await response.write(multipart.closing)
        await response.end()
