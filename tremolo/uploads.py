"""Multipart bodies read part by part as they arrive: ``async for part in request.parts()``.

The body stream feeds the sans-IO parser (`tremolo.http.multipart`) one piece at a time and
the handler pulls each part's content in pieces, so a part of any size goes through in constant
memory: reading the socket pauses while ``body_buffer_size`` bytes wait unread (see
`tremolo.body_stream`), and the parser holds at most a delimiter's length of content.
"""

from __future__ import annotations

import os
from collections import deque
from typing import TYPE_CHECKING, AsyncIterator, Optional, Union

from .forms import FormLimits, http_error, parse_content_type, part_info
from .http import multipart
from .http.errors import ParseError

if TYPE_CHECKING:
    from .body_stream import BodyStream


class Part:
    """One part of a multipart body, its content read as it arrives.

    Read the content with ``async for piece in part``, `read`, `text` or `save`. Content
    left unread when the next part is asked for is skipped.

    Attributes:
        name: The form field name (``Content-Disposition: form-data; name=...``).
        filename: The file name the client sent, or ``None`` for a plain field. Never use it
            as a path as it is: it comes from the client.
        content_type: The part's Content-Type (``text/plain`` for fields,
            ``application/octet-stream`` for files when absent).
        headers: The part's header fields, lower-cased names.
        size: Bytes of content read so far.
    """

    __slots__ = ('name', 'filename', 'content_type', 'headers', 'size', '_reader', '_finished',
                 '_leftover')

    def __init__(
        self, reader: PartReader, headers: dict[str, str], name: Optional[str],
        filename: Optional[str], content_type: str,
    ) -> None:
        self._reader = reader
        self.headers = headers
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.size = 0
        self._finished = False
        self._leftover = b''

    @property
    def is_file(self) -> bool:
        """Whether the part is a file (it has a ``filename``)."""
        return self.filename is not None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._pieces()

    async def _pieces(self) -> AsyncIterator[bytes]:
        while True:
            piece = await self._next()
            if not piece:
                return
            yield piece

    async def _next(self) -> bytes:
        if self._leftover:
            piece = self._leftover
            self._leftover = b''
            return piece
        if self._finished:
            return b''
        piece = await self._reader.content(self)
        self.size += len(piece)
        return piece

    async def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes of content (all the rest if ``size`` is negative); ``b''`` at
        the end of the part.

        Reading it all holds the part in memory: the part is bounded by ``max_part_size``
        and the body by ``max_body_size``.
        """
        if size < 0:
            pieces: list[bytes] = []
            while True:
                piece = await self._next()
                if not piece:
                    return b''.join(pieces)
                pieces.append(piece)
        if size == 0:
            return b''
        piece = await self._next()
        if len(piece) > size:
            self._leftover = piece[size:]
            piece = piece[:size]
        return piece

    async def text(self, encoding: Optional[str] = None) -> str:
        """The whole content decoded with ``encoding``, else the part's charset, else UTF-8.

        Raises:
            BadRequest: The content does not decode.
        """
        from .exceptions import BadRequest

        charset = encoding or parse_content_type(self.content_type)[1].get('charset', 'utf-8')
        data = await self.read()
        try:
            return data.decode(charset)
        except (UnicodeDecodeError, LookupError) as exc:
            raise BadRequest(f'part {self.name!r} is not valid {charset}') from exc

    async def save(self, path: Union[str, os.PathLike[str]]) -> int:
        """Write the rest of the content to the file at ``path`` (created or truncated) piece
        by piece, and return the part's size.

        If reading fails (the client goes away, a limit is exceeded), the file is removed.
        The writes are plain blocking writes of at most one socket read each: they land in the
        page cache. Write from a thread instead if the disk can stall.
        """
        try:
            with open(path, 'wb') as file:
                write = file.write
                async for piece in self:
                    write(piece)
        except BaseException:
            try:
                os.unlink(path)
            except OSError:
                pass
            raise
        return self.size

    async def discard(self) -> None:
        """Skip the rest of the content."""
        self._leftover = b''
        while await self._next():
            pass

    def __repr__(self) -> str:
        return f'<Part {self.name!r} filename={self.filename!r} {self.content_type!r}>'


class PartReader:
    """Drives the parser over a body stream and hands out the parts.

    Args:
        stream: The request body.
        content_type: The request's Content-Type (``multipart/...; boundary=...``).
        limits: The limits to apply.
    """

    __slots__ = ('_stream', '_parser', '_events', '_current', '_form_data', '_eof')

    def __init__(self, stream: Optional[BodyStream], content_type: str,
                 limits: FormLimits) -> None:
        self._stream = stream
        self._parser = limits.parser(content_type)
        self._form_data = parse_content_type(content_type)[0] == 'multipart/form-data'
        self._events: deque[multipart.Event] = deque()
        self._current: Optional[Part] = None
        self._eof = False

    async def _event(self) -> multipart.Event:
        events = self._events
        while not events:
            if self._eof:
                return multipart.DONE
            stream = self._stream
            data = await stream.read() if stream is not None else b''
            try:
                if data:
                    events.extend(self._parser.feed(data))
                else:
                    self._eof = True
                    events.extend(self._parser.feed_eof())
            except ParseError as exc:
                raise http_error(exc) from exc
        return events.popleft()

    async def events(self) -> AsyncIterator[multipart.Event]:
        """Every parser event until the end of the body (for `tremolo.forms.FormBuilder`)."""
        while True:
            event = await self._event()
            if event is multipart.DONE:
                await self._drain()
                return
            yield event

    async def next_part(self) -> Optional[Part]:
        """The next part (the rest of the current one is skipped), or ``None`` at the end."""
        current = self._current
        if current is not None and not current._finished:
            await current.discard()
        while True:
            event = await self._event()
            if isinstance(event, multipart.PartStart):
                fields, name, filename, content_type = part_info(event.headers, self._form_data)
                part = self._current = Part(self, fields, name, filename, content_type)
                return part
            if event is multipart.DONE:
                self._current = None
                await self._drain()
                return None

    async def content(self, part: Part) -> bytes:
        """The next piece of ``part``'s content, ``b''`` at its end."""
        if part is not self._current:
            part._finished = True
            return b''
        event = await self._event()
        if type(event) is bytes:
            return event
        # PART_END: the next event (a PartStart or DONE) belongs to the next part.
        part._finished = True
        return b''

    async def _drain(self) -> None:
        # Read the epilogue to the end of the body, so that the connection can be kept alive;
        # the parser bounds it.
        while not self._eof:
            await self._event()


async def iterate(reader: PartReader) -> AsyncIterator[Part]:
    """``async for`` over the parts of ``reader``."""
    while True:
        part = await reader.next_part()
        if part is None:
            return
        yield part
