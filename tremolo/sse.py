"""Server-sent events: a streamed ``text/event-stream`` response (the HTML Living Standard,
"Server-sent events", §9.2).

A handler that names the ``sse`` parameter gets an `EventStream` and sends events with
``await sse.send(...)``. The stream lives until the handler returns or the client goes away;
when the client goes away the handler is cancelled at once (its ``finally`` blocks run), since an
event-stream handler typically waits on something else than the client (a queue, a pub/sub
channel) and would otherwise only notice at its next write.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Optional

from .exceptions import ClientDisconnected

if TYPE_CHECKING:
    import asyncio

    from .request import Request
    from .response import Response

CONTENT_TYPE = 'text/event-stream; charset=utf-8'
# §9.2.5: lines end with CRLF, LF or CR; a data value over several lines becomes several fields.
_LINE_BREAK = re.compile(r'\r\n|\r|\n')
_KEEPALIVE = b': keep-alive\n\n'


def format_event(
    data: Any = None, *, event: Optional[str] = None, id: Optional[str] = None,
    retry: Optional[int] = None,
) -> bytes:
    """One event in the ``text/event-stream`` format, as bytes.

    Args:
        data: ``str`` (or UTF-8 ``bytes``), one ``data:`` line per line of it (CRLF, CR and LF
            all count as line ends); any other value is sent as compact JSON. ``None`` sends no
            data (an event with only ``id`` or ``retry``).
        event: The event type (the client's ``addEventListener`` name); ``message`` if omitted.
        id: The event id: the client sends it back as ``Last-Event-ID`` when it reconnects.
        retry: The reconnection delay the client should use, in milliseconds.

    Raises:
        ValueError: A line break in ``event`` or ``id`` (it would end the field and let the
            value inject other fields), a NUL in ``id``, a negative ``retry``, or nothing to
            send.
    """
    lines = []
    if event is not None:
        _check_field('event', event)
        lines.append(f'event: {event}')
    if id is not None:
        _check_field('id', id)
        if '\x00' in id:
            raise ValueError('an event id cannot contain NUL (clients ignore it)')
        lines.append(f'id: {id}')
    if retry is not None:
        if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
            raise ValueError(f'retry must be a non-negative number of milliseconds: {retry!r}')
        lines.append(f'retry: {retry}')
    if data is not None:
        if isinstance(data, (bytes, bytearray, memoryview)):
            data = bytes(data).decode('utf-8')
        elif not isinstance(data, str):
            data = json.dumps(data, separators=(',', ':'), ensure_ascii=False)
        # "data: " with its space: the client removes one leading space, so data that itself
        # starts with a space keeps it.
        lines.extend(f'data: {line}' for line in _LINE_BREAK.split(data))
    if not lines:
        raise ValueError('an event needs data, event, id or retry')
    lines.append('\n')
    return '\n'.join(lines).encode()


def format_comment(text: str = '') -> bytes:
    """A comment line (``: text``) per line of ``text``: clients ignore it."""
    return ''.join(f': {line}\n' if line else ':\n'
                   for line in _LINE_BREAK.split(text)).encode()


def _check_field(name: str, value: str) -> None:
    if not isinstance(value, str):
        raise ValueError(f'{name} must be a str, not {type(value).__name__}')
    if '\r' in value or '\n' in value:
        raise ValueError(f'{name} cannot contain a line break: {value!r}')


class EventStream:
    """A ``text/event-stream`` response, injected as ``sse``.

    Created when the handler is called: it sets the response's headers
    (``Content-Type: text/event-stream; charset=utf-8``, ``Cache-Control: no-cache``,
    ``X-Accel-Buffering: no`` so that a proxy such as nginx passes each event on at once). The
    head is sent with the first event, comment or `start`, so a handler can still answer with
    an error status before that. The body is streamed (chunked on HTTP/1.1), without a
    Content-Length.

    When the client goes away (closes the connection or its sending side) the handler is
    cancelled; `send` never queues data for a gone client, and waits while a slow client is
    behind, so writes cannot pile up in memory. When the server stops, event streams are ended
    the same way (clients reconnect, to another worker or instance).

    Attributes:
        last_event_id: The ``Last-Event-ID`` header of a reconnecting client (the ``id`` of the
            last event it received), else ``None``.
        response: The response it streams.
    """

    __slots__ = ('response', 'last_event_id', '_channel', '_loop', '_keepalive', '_timer',
                 '_seen', '_filtered')

    def __init__(self, request: Request, response: Response, keepalive: float = 15.0) -> None:
        self.response = response
        raw = request.head.headers.get(b'last-event-id')
        self.last_event_id = raw.decode('utf-8', 'replace') if raw is not None else None
        response.content_type = CONTENT_TYPE
        headers = response.headers
        headers['Cache-Control'] = 'no-cache'
        headers['X-Accel-Buffering'] = 'no'
        channel = self._channel = response.channel
        channel.cancel_on_disconnect()
        self._loop: asyncio.AbstractEventLoop = channel.loop
        self._keepalive = keepalive
        self._seen = 0
        #: The keep-alive comment written through the response's filters, while it is.
        self._filtered: Optional[asyncio.Task[None]] = None
        self._timer: Optional[asyncio.TimerHandle] = None
        if keepalive > 0:
            self._timer = self._loop.call_later(keepalive, self._tick)

    @property
    def closed(self) -> bool:
        """Whether the stream is over: the client went away or the response was finished."""
        return self._channel.disconnected() or self.response.finished

    async def start(self) -> None:
        """Send the head now, before any event (a browser's ``EventSource`` fires ``open``)."""
        if not self.response.headers_sent:
            await self._write(b'')

    async def send(
        self, data: Any = None, *, event: Optional[str] = None, id: Optional[str] = None,
        retry: Optional[int] = None,
    ) -> None:
        """Send one event (see `format_event` for the arguments).

        Waits while the client is behind (its connection's buffer is full).

        Raises:
            ClientDisconnected: The client is gone (the handler is also being cancelled).
            ValueError: An invalid ``event``, ``id`` or ``retry``.
        """
        await self._write(format_event(data, event=event, id=id, retry=retry))

    async def comment(self, text: str = '') -> None:
        """Send a comment (clients ignore it; proxies see traffic)."""
        await self._write(format_comment(text))

    #: Format an event as bytes, for handlers that ``yield`` their events.
    event = staticmethod(format_event)

    async def _write(self, data: bytes) -> None:
        if self.closed:
            raise ClientDisconnected('the client closed the event stream')
        response = self.response
        await response.write(data)
        if response.omits_body:
            # HEAD: the head is out and no event is wanted; end the handler.
            await response.end()
            raise ClientDisconnected('HEAD request: no events are sent')

    def _tick(self) -> None:
        self._timer = None
        if self.closed:
            return
        response = self.response
        if (response.headers_sent and response.body_size == self._seen
                and not self._channel.writing_paused and not response.omits_body):
            # Silence for a whole interval: a comment keeps proxies from timing the stream out
            # and makes a vanished client show up as a failed write. Skipped while the client is
            # behind: what is queued already keeps the connection busy.
            if not response.filters:
                response.write_nowait(_KEEPALIVE)
            elif self._filtered is None:
                # Filters (compression) may have to wait: the comment goes through them in a
                # task of its own, after what the handler wrote.
                self._filtered = self._loop.create_task(self._write_filtered())
        self._seen = response.body_size
        self._timer = self._loop.call_later(self._keepalive, self._tick)

    async def _write_filtered(self) -> None:
        try:
            if not self.closed:
                await self.response.write(_KEEPALIVE)
                self._seen = self.response.body_size  # the comment is not the handler's
        except (ClientDisconnected, RuntimeError):
            pass  # the client left, or the handler finished the response meanwhile
        finally:
            self._filtered = None

    def stop(self) -> None:
        """Stop the keep-alive timer (called when the handler is done)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        # A comment being written through the filters is left to finish: cut short, it would
        # leave a compressed stream without bytes the client needs.

    def __repr__(self) -> str:
        return f'<EventStream {"closed" if self.closed else "open"}>'
