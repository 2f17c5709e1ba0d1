"""Conditional requests (RFC 9110 §13): entity tags and the evaluation of preconditions.

`evaluate` applies ``If-Match``, ``If-Unmodified-Since``, ``If-None-Match`` and
``If-Modified-Since`` in the order of RFC 9110 §13.2.2 and answers with the status to send:
200 (go on), 304 or 412. `range_allowed` is step 5 of the same order: whether ``If-Range``
lets a ``Range`` be honoured.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Optional, Union

from .dates import parse_http_date

Value = Union[str, bytes, None]

# RFC 9110 §8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E / obs-text
# (a comma may appear inside the quotes, so a list is scanned, not split).
_ETAG = re.compile(r'[ \t]*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"[ \t]*(?:,|\Z)')
_LIST_SEPARATORS = re.compile(r'[ \t]*,')


class EntityTag(NamedTuple):
    """An entity tag: its opaque value (without quotes) and whether it is weak."""

    tag: str
    weak: bool = False

    def __str__(self) -> str:
        return f'{"W/" if self.weak else ""}"{self.tag}"'


def make_etag(mtime_ns: int, size: int) -> str:
    """The strong ETag of a file, from its modification time and size:
    ``'"<mtime_ns hex>-<size hex>"'``.

    A file rewritten within the same nanosecond with the same size keeps its tag; every other
    change gives a new one.
    """
    return f'"{mtime_ns:x}-{size:x}"'


def parse_etag(value: str) -> Optional[EntityTag]:
    """Parse one entity tag (``'"abc"'`` or ``'W/"abc"'``); ``None`` if malformed."""
    tags = parse_etag_list(value)
    return tags[0] if tags is not None and len(tags) == 1 else None


def parse_etag_list(value: Value) -> Optional[list[EntityTag]]:
    """Parse ``1#entity-tag`` (RFC 9110 §13.1.1-2); ``None`` if the value is malformed.

    ``*`` is not an entity tag: callers check for it first.
    """
    if isinstance(value, bytes):
        value = value.decode('latin-1')
    if value is None:
        return None
    tags = []
    position = 0
    end = len(value)
    while position < end:
        separators = _LIST_SEPARATORS.match(value, position)
        if separators is not None:  # empty list elements (RFC 9110 §5.6.1)
            position = separators.end()
            continue
        match = _ETAG.match(value, position)
        if match is None:
            if value[position:].strip(' \t'):
                return None
            break
        tags.append(EntityTag(match.group(2), match.group(1) is not None))
        position = match.end()
    return tags


def _text(value: Value) -> Optional[str]:
    if isinstance(value, bytes):
        return value.decode('latin-1')
    return value


def _matches(field: str, etag: Optional[EntityTag], weak: bool) -> bool:
    """Whether an If-Match/If-None-Match value matches the current entity tag."""
    if field.strip(' \t') == '*':
        # "*" matches any current representation; a file being served always has one.
        return True
    if etag is None:
        return False
    tags = parse_etag_list(field)
    if not tags:
        return False
    if weak:  # RFC 9110 §8.8.3.2: weak comparison ignores the W/ of both sides
        return any(tag.tag == etag.tag for tag in tags)
    # Strong comparison: neither is weak and the opaque tags are identical.
    return not etag.weak and any(not tag.weak and tag.tag == etag.tag for tag in tags)


def evaluate(
    method: str, *, etag: Optional[str] = None, last_modified: Optional[int] = None,
    if_match: Value = None, if_none_match: Value = None, if_modified_since: Value = None,
    if_unmodified_since: Value = None,
) -> int:
    """Evaluate the preconditions of a request, in the order of RFC 9110 §13.2.2.

    Args:
        method: The request method.
        etag: The current ETag of the representation (``'"abc"'`` or ``'W/"abc"'``), or
            ``None`` if it has none.
        last_modified: Its modification time as a POSIX timestamp (whole seconds), or
            ``None``.
        if_match: The ``If-Match`` value, if present (and the other headers likewise).

    Returns:
        200 to go on with the request, 304 (Not Modified) or 412 (Precondition Failed).
    """
    current = parse_etag(etag) if etag is not None else None
    if_match = _text(if_match)
    if_none_match = _text(if_none_match)
    # Step 1: If-Match, strong comparison (§13.1.1).
    if if_match is not None:
        if not _matches(if_match, current, weak=False):
            return 412
    # Step 2: If-Unmodified-Since, only without If-Match (§13.1.4); an invalid date, or a
    # resource without a modification date, makes it ignored.
    elif if_unmodified_since is not None and last_modified is not None:
        date = parse_http_date(if_unmodified_since)
        if date is not None and last_modified > date:
            return 412
    safe = method in ('GET', 'HEAD')
    # Step 3: If-None-Match, weak comparison (§13.1.2).
    if if_none_match is not None:
        if _matches(if_none_match, current, weak=True):
            return 304 if safe else 412
    # Step 4: If-Modified-Since, only without If-None-Match and only for GET and HEAD
    # (§13.1.3); an invalid date is ignored.
    elif safe and if_modified_since is not None and last_modified is not None:
        date = parse_http_date(if_modified_since)
        if date is not None and last_modified <= date:
            return 304
    return 200


def range_allowed(
    if_range: Value, *, etag: Optional[str] = None, last_modified: Optional[int] = None
) -> bool:
    """Whether a ``Range`` may be honoured given ``If-Range`` (RFC 9110 §13.1.5, step 5 of
    §13.2.2).

    Without ``If-Range`` the range is honoured. With one, it is honoured only if the
    validator still holds: an entity tag that matches the current one by strong comparison
    (a weak tag never does), or a date that is exactly the current Last-Modified. Otherwise
    the whole representation is sent (200), which is what the client asked for when its
    copy is stale.
    """
    if if_range is None:
        return True
    value = (_text(if_range) or '').strip(' \t')
    if value.startswith(('"', 'W/"')):
        tag = parse_etag(value)
        current = parse_etag(etag) if etag is not None else None
        return (tag is not None and current is not None and not tag.weak and not current.weak
                and tag.tag == current.tag)
    date = parse_http_date(value)
    return date is not None and last_modified is not None and date == last_modified
