"""Errors raised by the sans-IO parser, each carrying the status code to answer with."""

from __future__ import annotations


class ParseError(Exception):
    """A request that cannot be accepted as HTTP/1.1.

    The connection that produced it must be answered with `status` and then closed: after
    a framing error nothing that follows on the wire can be trusted as a new request
    (RFC 9112 §2.2, §6.3).
    """

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ''


class BadRequest(ParseError):
    status = 400


class PayloadTooLarge(ParseError):
    status = 413


class URITooLong(ParseError):
    status = 414


class ExpectationFailed(ParseError):
    """An ``Expect`` value other than ``100-continue`` (RFC 9110 §10.1.1)."""

    status = 417


class HeaderFieldsTooLarge(ParseError):
    status = 431


class NotImplementedByServer(ParseError):
    status = 501


class VersionNotSupported(ParseError):
    status = 505
