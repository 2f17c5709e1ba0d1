"""Signed values: what sessions and CSRF tokens put in cookies, tamper-proof.

A signed value is ``payload.signature``: the payload in URL-safe base64 and an HMAC-SHA256 of
it, both without padding, so that it fits in a cookie as it is. The key used is derived from
the secret key and a *salt* naming the use (``'session'``, ``'csrf'``), so that a value signed
for one use is never accepted for another.

Keys rotate: give a list, newest first. Values are signed with the first and accepted with any
of them; drop an old key once the values signed with it have expired.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from typing import Optional, Union

__all__ = ['SecretKeys', 'Signer', 'b64decode', 'b64encode']

#: A secret key (``str`` or ``bytes``), or several, newest first.
SecretKeys = Union[str, bytes, Sequence[Union[str, bytes]]]


def b64encode(data: bytes) -> str:
    """URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def b64decode(text: str) -> bytes:
    """The bytes of URL-safe base64 text, with or without padding.

    Raises:
        ValueError: Text that is not base64.
    """
    try:
        return base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError('invalid base64') from exc


def _key_bytes(key: object, argument: str) -> bytes:
    if isinstance(key, str):
        key = key.encode('utf-8')
    if not isinstance(key, bytes):
        raise TypeError(f'{argument}: a secret key is a str or bytes, not {type(key).__name__}')
    if not key:
        raise ValueError(f'{argument}: a secret key cannot be empty (make one with '
                         f'secrets.token_urlsafe(32))')
    return key


class Signer:
    """Signs and checks values with HMAC-SHA256.

    Args:
        secret_key: The secret key, or a list of keys, newest first.
        salt: Names the use of the signatures.
        argument: Names the secret key in error messages.

    Raises:
        ValueError: No key, or an empty one.
        TypeError: A key that is not ``str`` or ``bytes``.
    """

    __slots__ = ('keys',)

    def __init__(self, secret_key: SecretKeys, *, salt: str,
                 argument: str = 'secret_key') -> None:
        if isinstance(secret_key, (str, bytes)):
            secrets: list[object] = [secret_key]
        elif isinstance(secret_key, (list, tuple)):
            secrets = list(secret_key)
        else:
            raise TypeError(f'{argument}: a secret key is a str or bytes (or a list of them), '
                            f'not {type(secret_key).__name__}')
        if not secrets:
            raise ValueError(f'{argument}: give at least one secret key')
        # One derived key per secret and use: HMAC(secret, salt).
        self.keys = tuple(
            hmac.new(_key_bytes(secret, argument), salt.encode('utf-8'), hashlib.sha256).digest()
            for secret in secrets)

    def sign(self, payload: bytes) -> str:
        """``payload`` encoded and signed with the newest key."""
        encoded = b64encode(payload)
        return f'{encoded}.{self._signature(self.keys[0], encoded)}'

    def unsign(self, value: str) -> Optional[bytes]:
        """The payload of a value signed with any of the keys, or ``None`` when the value is
        malformed or its signature does not match."""
        encoded, dot, signature = value.rpartition('.')
        if not dot or not encoded:
            return None
        for key in self.keys:
            if hmac.compare_digest(self._signature(key, encoded), signature):
                try:
                    return b64decode(encoded)
                except ValueError:
                    return None
        return None

    @staticmethod
    def _signature(key: bytes, encoded: str) -> str:
        return b64encode(hmac.new(key, encoded.encode('ascii', 'replace'),
                                  hashlib.sha256).digest())

    def __repr__(self) -> str:
        return f'<Signer {len(self.keys)} key(s)>'
