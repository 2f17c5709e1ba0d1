"""Status codes: reason phrases and the precomputed status lines written on the wire."""

from __future__ import annotations

from http import HTTPStatus

# RFC 9110 §15 renamed a few phrases that the standard library still spells the old way.
_RFC9110_PHRASES = {
    413: 'Content Too Large',
    414: 'URI Too Long',
    416: 'Range Not Satisfiable',
    422: 'Unprocessable Content',
}

REASONS: dict[int, str] = {s.value: _RFC9110_PHRASES.get(s.value, s.phrase) for s in HTTPStatus}


def reason(status: int) -> str:
    """The reason phrase for ``status`` (empty for codes without a registered phrase)."""
    return REASONS.get(status, '')


def _line(status: int) -> bytes:
    return b'HTTP/1.1 %d %s\r\n' % (status, reason(status).encode('latin-1'))


#: The status line of every registered code. Responses always carry ``HTTP/1.1``, whatever
#: the request's version: a server sends the highest minor version it supports (RFC 9110 §2.5).
STATUS_LINES_11: dict[int, bytes] = {code: _line(code) for code in REASONS}


def status_line(status: int, phrase: str | None = None) -> bytes:
    """The status line for a response, taken from the precomputed table when possible."""
    if phrase is None:
        line = STATUS_LINES_11.get(status)
        if line is not None:
            return line
        phrase = reason(status)
    return b'HTTP/1.1 %d %s\r\n' % (status, phrase.encode('latin-1'))


def body_allowed(status: int) -> bool:
    """Whether a response with ``status`` may carry content (RFC 9110 §6.4.1)."""
    return status >= 200 and status not in (204, 304)
