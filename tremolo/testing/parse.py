"""A small sans-IO HTTP/1.1 response reader for the test client."""

from __future__ import annotations

from typing import Optional

from ..http.body import ChunkedDecoder


class ResponseHead:
    __slots__ = ('version', 'status', 'reason', 'headers')

    def __init__(self, version: str, status: int, reason: str,
                 headers: list[tuple[str, str]]) -> None:
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers

    def get(self, name: str) -> Optional[str]:
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return None


class ResponseReader:
    """Reads one response at a time from the bytes a server wrote.

    Args:
        head_request: Whether the request was ``HEAD`` (the response then has no body).
    """

    def __init__(self, head_request: bool = False) -> None:
        self.head_request = head_request
        self.buffer = b''
        self.head: Optional[ResponseHead] = None
        self.interim: list[ResponseHead] = []
        self.chunks: list[bytes] = []
        self.complete = False
        self.close_delimited = False
        self._remaining: Optional[int] = None
        self._chunked: Optional[ChunkedDecoder] = None

    @property
    def trailers(self) -> dict[bytes, bytes]:
        return self._chunked.trailers if self._chunked is not None else {}

    def feed(self, data: bytes) -> None:
        """Consume bytes; sets `complete` when the response is whole."""
        self.buffer += data
        while not self.complete:
            if self.head is None:
                end = self.buffer.find(b'\r\n\r\n')
                if end == -1:
                    return
                head = _parse_head(self.buffer[:end])
                self.buffer = self.buffer[end + 4:]
                if 100 <= head.status < 200 and head.status != 101:
                    self.interim.append(head)
                    continue
                self.head = head
                self._framing(head)
                continue
            if self._chunked is not None:
                if not self.buffer:
                    return
                self.chunks.extend(self._chunked.feed(self.buffer))
                self.buffer = b''
                if self._chunked.done:
                    self.buffer = self._chunked.rest
                    self.complete = True
                return
            if self._remaining is not None:
                take = self.buffer[:self._remaining]
                if take:
                    self.chunks.append(take)
                self.buffer = self.buffer[len(take):]
                self._remaining -= len(take)
                if self._remaining == 0:
                    self.complete = True
                return
            if self.buffer:  # delimited by the connection closing
                self.chunks.append(self.buffer)
                self.buffer = b''
            return

    def feed_eof(self) -> None:
        """The server closed the connection."""
        if self.head is not None and self.close_delimited:
            self.complete = True

    def _framing(self, head: ResponseHead) -> None:
        if self.head_request or head.status in (101, 204, 304):
            self.complete = True
            return
        if (head.get('transfer-encoding') or '').lower().endswith('chunked'):
            self._chunked = ChunkedDecoder()
        elif head.get('content-length') is not None:
            self._remaining = int(head.get('content-length') or 0)
            if self._remaining == 0:
                self.complete = True
        else:
            self.close_delimited = True


def _parse_head(block: bytes) -> ResponseHead:
    lines = block.decode('latin-1').split('\r\n')
    version, status, reason = (lines[0].split(' ', 2) + [''])[:3]
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(':')
        headers.append((name.strip(), value.strip()))
    return ResponseHead(version, int(status), reason, headers)
