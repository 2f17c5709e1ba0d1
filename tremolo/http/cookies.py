"""The ``Cookie`` request header and the ``Set-Cookie`` response header (RFC 6265)."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from .dates import http_date

# RFC 6265 §4.1.1: cookie-name is a token; cookie-octet excludes CTLs, whitespace, DQUOTE,
# comma, semicolon and backslash.
_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_COOKIE_OCTETS = r'[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*'
_VALUE = re.compile(rf'(?:"{_COOKIE_OCTETS}"|{_COOKIE_OCTETS})')
# Path and Domain attribute values: any CHAR except CTLs or ";" (RFC 6265 §4.1.1 av-octet).
_ATTRIBUTE = re.compile(r'[\x20-\x3a\x3c-\x7e]*')
_SAMESITE = {'strict': 'Strict', 'lax': 'Lax', 'none': 'None'}


def parse_cookie_header(value: str) -> dict[str, str]:
    """Parse a ``Cookie`` header into a dict, leniently as browsers send it.

    Pairs without ``=`` and pairs with an invalid name are skipped rather than failing the
    whole header; the first occurrence of a name wins (RFC 6265 §5.4 orders more specific
    paths first). Surrounding double quotes are removed from values.
    """
    cookies: dict[str, str] = {}
    for pair in value.split(';'):
        name, sep, val = pair.partition('=')
        if not sep:
            continue
        name = name.strip()
        if not name or name in cookies or _NAME.fullmatch(name) is None:
            continue
        val = val.strip()
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1]
        cookies[name] = val
    return cookies


def format_set_cookie(
    name: str,
    value: str = '',
    *,
    max_age: int | None = None,
    expires: datetime | int | float | str | None = None,
    path: str | None = '/',
    domain: str | None = None,
    secure: bool = False,
    httponly: bool = True,
    samesite: str | None = 'Lax',
    partitioned: bool = False,
) -> str:
    """Build a ``Set-Cookie`` field value.

    Raises:
        ValueError: A name, value or attribute that would corrupt the header, or
            ``samesite='None'`` without ``secure`` (browsers reject that combination).
    """
    if _NAME.fullmatch(name) is None:
        raise ValueError(f'invalid cookie name: {name!r}')
    if _VALUE.fullmatch(value) is None:
        raise ValueError(f'invalid cookie value for {name!r}; encode it first (e.g. base64)')
    parts = [f'{name}={value}']
    if expires is not None:
        parts.append(f'Expires={_http_date(expires)}')
    if max_age is not None:
        parts.append(f'Max-Age={int(max_age)}')
    if domain is not None:
        parts.append(f'Domain={_attribute("domain", domain)}')
    if path is not None:
        parts.append(f'Path={_attribute("path", path)}')
    if secure:
        parts.append('Secure')
    if httponly:
        parts.append('HttpOnly')
    if samesite is not None:
        canonical = _SAMESITE.get(samesite.lower())
        if canonical is None:
            raise ValueError(f'samesite must be Strict, Lax or None, not {samesite!r}')
        if canonical == 'None' and not secure:
            raise ValueError('samesite=None requires secure=True')
        parts.append(f'SameSite={canonical}')
    if partitioned:
        if not secure:
            raise ValueError('partitioned cookies require secure=True')
        parts.append('Partitioned')
    return '; '.join(parts)


def _attribute(label: str, value: str) -> str:
    if _ATTRIBUTE.fullmatch(value) is None:
        raise ValueError(f'invalid cookie {label}: {value!r}')
    return value


def _http_date(value: datetime | int | float | str) -> str:
    if isinstance(value, str):
        return _attribute('expires', value)
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, timezone.utc)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return http_date(value.timestamp())
