"""HTTP dates: the ``Date`` header value, formatted once per second rather than once per
response, and the parsing of dates received in requests (``If-Modified-Since``, ...)."""

from __future__ import annotations

import calendar
import re
import time
from typing import Callable, Optional, Union

_DAYS = ('Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun')
_MONTHS = ('Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec')


def http_date(timestamp: float) -> str:
    """The IMF-fixdate of a POSIX timestamp, e.g. ``'Sun, 06 Nov 1994 08:49:37 GMT'``
    (RFC 9110 §5.6.7; the names are fixed English, whatever the locale)."""
    t = time.gmtime(timestamp)
    return (f'{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} '
            f'{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT')


# RFC 9110 §5.6.7: IMF-fixdate, and the two obsolete formats a recipient MUST accept.
_IMF_FIXDATE = re.compile(
    r'(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) ([A-Z][a-z]{2}) ([0-9]{4}) '
    r'([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT'
)
_RFC850 = re.compile(
    r'(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), ([0-9]{2})-([A-Z][a-z]{2})-'
    r'([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT'
)
_ASCTIME = re.compile(
    r'(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2}) ([0-9 ][0-9]) '
    r'([0-9]{2}):([0-9]{2}):([0-9]{2}) ([0-9]{4})'
)
_MONTH_NUMBERS = {name: number for number, name in enumerate(_MONTHS, 1)}


def parse_http_date(value: Union[str, bytes], now: Optional[float] = None) -> Optional[int]:
    """The POSIX timestamp of an HTTP-date, or ``None`` if ``value`` is not one.

    All three formats of RFC 9110 §5.6.7 are accepted: ``Sun, 06 Nov 1994 08:49:37 GMT``
    (IMF-fixdate), ``Sunday, 06-Nov-94 08:49:37 GMT`` (RFC 850) and
    ``Sun Nov  6 08:49:37 1994`` (asctime). Case matters, as in the grammar.

    Args:
        value: The field value.
        now: The current time, for the two-digit years of the RFC 850 format (default: now).
    """
    if isinstance(value, bytes):
        value = value.decode('latin-1')
    value = value.strip(' \t')
    match = _IMF_FIXDATE.fullmatch(value)
    if match is not None:
        day, month, year, hour, minute, second = match.groups()
    else:
        match = _RFC850.fullmatch(value)
        if match is not None:
            day, month, year, hour, minute, second = match.groups()
            year = str(_full_year(int(year), now))
        else:
            match = _ASCTIME.fullmatch(value)
            if match is None:
                return None
            month, day, hour, minute, second, year = match.groups()
    month_number = _MONTH_NUMBERS.get(month)
    if month_number is None:
        return None
    fields = (int(year), month_number, int(day), int(hour), int(minute), int(second))
    # Out-of-range fields (31 Feb, 25:00) make no date: timegm would silently roll them over.
    if not (fields[0] >= 1 and 1 <= fields[2] <= calendar.monthrange(fields[0], month_number)[1]
            and fields[3] < 24 and fields[4] < 60 and fields[5] < 61):
        return None
    return calendar.timegm(fields + (0, 0, 0))


def _full_year(two_digits: int, now: Optional[float]) -> int:
    # RFC 9110 §5.6.7: a two-digit year that appears to be more than 50 years in the future is
    # the most recent year in the past that had the same last two digits.
    current = time.gmtime(time.time() if now is None else now).tm_year
    year = current - current % 100 + two_digits
    if year > current + 50:
        year -= 100
    return year


class DateCache:
    """Holds the IMF-fixdate of the current second (RFC 9110 §5.6.7).

    ``value()`` costs one clock read and one comparison on the hot path; the string is rebuilt
    only when the second changes.
    """

    __slots__ = ('_second', '_value', '_header', '_clock')

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
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
