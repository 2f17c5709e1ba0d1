"""Read-only views over parsed fields: request headers, query strings and form fields."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeVar, overload
from urllib.parse import parse_qsl

_T = TypeVar('_T')


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only request headers.

    Values are decoded as ISO-8859-1, which maps every byte to one character (RFC 9110 §5.5
    gives field values no other charset). The bytes as received stay available in `raw`.

    Example:
        ``request.headers['content-type']`` and ``request.headers['Content-Type']`` are the
        same value.
    """

    __slots__ = ('_raw',)

    def __init__(self, raw: dict[bytes, bytes]) -> None:
        self._raw = raw

    @property
    def raw(self) -> dict[bytes, bytes]:
        """The parsed fields: lower-cased names to values, as bytes."""
        return self._raw

    def __getitem__(self, name: str) -> str:
        key = _key(name)
        value = self._raw.get(key) if key is not None else None
        if value is None:
            raise KeyError(name)
        return value.decode('latin-1')

    @overload
    def get(self, name: str) -> str | None: ...

    @overload
    def get(self, name: str, default: str | _T) -> str | _T: ...

    def get(self, name: str, default: Any = None) -> Any:
        key = _key(name)
        value = None if key is None else self._raw.get(key)
        return default if value is None else value.decode('latin-1')

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _key(name) in self._raw

    def __iter__(self) -> Iterator[str]:
        return (name.decode('latin-1') for name in self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:
        return f'Headers({dict(self.items())!r})'


def _key(name: str) -> bytes | None:
    # A name outside latin-1 cannot be a field name (names are tokens, RFC 9110 §5.1): it is
    # simply absent, rather than a UnicodeEncodeError out of ``in`` or ``get()``.
    try:
        return name.lower().encode('latin-1')
    except UnicodeEncodeError:
        return None


class MultiDict(Mapping[str, str]):
    """An ordered mapping that can hold several values per key (query strings, form fields).

    Indexing and `get` return the first value; `getlist` returns all of them.
    """

    __slots__ = ('_items', '_map')

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items = items or []
        self._map: dict[str, list[str]] = {}
        for key, value in self._items:
            self._map.setdefault(key, []).append(value)

    def __getitem__(self, key: str) -> str:
        return self._map[key][0]

    def getlist(self, key: str) -> list[str]:
        """Every value of ``key`` in order of appearance (empty when absent)."""
        return list(self._map.get(key, ()))

    def multi_items(self) -> list[tuple[str, str]]:
        """All ``(key, value)`` pairs in order, repeated keys included."""
        return list(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def __repr__(self) -> str:
        return f'MultiDict({self._items!r})'


def parse_query(query: str, max_fields: int | None = None) -> MultiDict:
    """Parse an ``application/x-www-form-urlencoded`` string (also used for query strings).

    Raises:
        ValueError: More than ``max_fields`` fields.
    """
    if not query:
        return MultiDict()
    return MultiDict(
        parse_qsl(query, keep_blank_values=True, max_num_fields=max_fields, errors='replace')
    )
