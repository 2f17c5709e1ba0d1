"""The ``Date`` header value, formatted once per second rather than once per response."""

from __future__ import annotations

import time

_DAYS = ('Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun')
_MONTHS = ('Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec')


def http_date(timestamp: float) -> str:
    """The IMF-fixdate of a POSIX timestamp, e.g. ``'Sun, 06 Nov 1994 08:49:37 GMT'``
    (RFC 9110 §5.6.7; the names are fixed English, whatever the locale)."""
    t = time.gmtime(timestamp)
    return (f'{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} '
            f'{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT')


class DateCache:
    """Holds the IMF-fixdate of the current second (RFC 9110 §5.6.7).

    ``value()`` costs one clock read and one comparison on the hot path; the string is rebuilt
    only when the second changes.
    """

    __slots__ = ('_second', '_value', '_header', '_clock')

    def __init__(self, clock=time.time) -> None:
        self._clock = clock
        self._second = -1
        self._value = b''
        self._header = b''

    def value(self) -> bytes:
        """The date, e.g. ``b'Tue, 24 Nov 2026 02:02:01 GMT'``."""
        second = int(self._clock())
        if second != self._second:
            self._refresh(second)
        return self._value

    def header(self) -> bytes:
        """The whole field line, e.g. ``b'Date: Tue, 24 Nov 2026 02:02:01 GMT\\r\\n'``."""
        second = int(self._clock())
        if second != self._second:
            self._refresh(second)
        return self._header

    def _refresh(self, second: int) -> None:
        self._second = second
        self._value = http_date(second).encode('ascii')
        self._header = b'Date: %s\r\n' % self._value


dates = DateCache()
