"""CSRF protection: requests that change something must come from this site.

```python
from tremolo import Tremolo
from tremolo.middleware.csrf import CSRF

app = Tremolo()
app.install(CSRF(secret_key=SECRET))

@app.route('/form')
async def form(csrf_token):
    return f'<form method="post"><input type="hidden" name="csrf_token" value="{csrf_token}">'

@app.post('/hook', csrf_exempt=True)      # called by another service, not a browser
async def hook(request): ...
```

Every request with an unsafe method (anything but ``GET``, ``HEAD``, ``OPTIONS`` and
``TRACE``, RFC 9110 §9.2.1) must pass two checks, else it is answered ``403`` with the reason:

1. **Where it comes from.** A browser says it: ``Sec-Fetch-Site`` (Fetch Metadata) must be
   ``same-origin`` or ``none`` (typed by the user), and ``Origin``, when sent, must be this
   site's own (scheme, host and port) or one of ``trusted_origins``. A cross-site form, a
   script of another site, a sibling subdomain (``same-site``, unless allowed) are refused.
2. **A token** (signed double-submit): the ``csrftoken`` cookie, set when a handler takes
   ``csrf_token``, must match the token sent back in the ``X-CSRF-Token`` header or the
   ``csrf_token`` field of a form. Another site can neither read the cookie nor set it
   (the cookie is signed with ``secret_key``), so it cannot send a matching token. The token
   in a page is masked afresh each time it is given out, so that compressing pages that show
   it reveals nothing about it (BREACH).

Routes exempt themselves with the route option ``csrf_exempt=True``. Clients that are not
browsers send neither ``Origin`` nor ``Sec-Fetch-Site``: they need the token too, or an exempt
route (an API authenticated by header rather than by cookie is not exposed to CSRF).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable
from typing import Optional

from tremolo.middleware.signing import SecretKeys, Signer, b64decode, b64encode

from tremolo import Context, Extension, Forbidden, Request, Response, Tremolo
from tremolo.http.cookies import format_set_cookie

__all__ = ['CSRF']

#: RFC 9110 §9.2.1: methods that do not change anything on the server.
SAFE_METHODS = frozenset(('GET', 'HEAD', 'OPTIONS', 'TRACE'))
_FORMS = ('application/x-www-form-urlencoded', 'multipart/form-data')
_SIZE = 32  # random bytes per token
_DEFAULT_PORTS = {'http': ':80', 'https': ':443'}


class CSRF(Extension):
    """Refuse cross-site requests that change something (see the module's description).

    Args:
        secret_key: Signs the token cookie (a list rotates keys, newest first).
        trusted_origins: Other origins allowed to send such requests
            (``'https://admin.example.com'``).
        allow_same_site: Also allow requests from the other subdomains of this site
            (``Sec-Fetch-Site: same-site``).
        require_token: Check the token as well as the origin; ``False`` relies on the
            browser's ``Sec-Fetch-Site`` and ``Origin`` alone (and lets non-browser clients
            through).
        cookie_name: The token cookie (readable by scripts, which send it in the header).
        header_name: The header that carries the token back.
        form_field: The form field that carries the token back.
        secure: Send the cookie over HTTPS only: ``None`` sets ``Secure`` when the request
            came over HTTPS.
        samesite: The cookie's ``SameSite``.
        path: The cookie's ``Path``.
        domain: The cookie's ``Domain``.
        option: The route option that exempts a route.
        priority: The priority of its hooks (see the table of the middleware library).

    Raises:
        ValueError: An empty secret key or a malformed origin, naming the argument.
    """

    name = 'csrf'

    def __init__(
        self, secret_key: SecretKeys, *, trusted_origins: Iterable[str] = (),
        allow_same_site: bool = False, require_token: bool = True,
        cookie_name: str = 'csrftoken', header_name: str = 'X-CSRF-Token',
        form_field: str = 'csrf_token', secure: Optional[bool] = None, samesite: str = 'Lax',
        path: str = '/', domain: Optional[str] = None, option: str = 'csrf_exempt',
        priority: int = 90,
    ) -> None:
        self.signer = Signer(secret_key, salt='tremolo.csrf')
        origins = [trusted_origins] if isinstance(trusted_origins, str) else list(
            trusted_origins)
        for origin in origins:
            if not isinstance(origin, str) or '://' not in origin or origin.endswith('/') or (
                    origin.count('/') != 2):
                raise ValueError(f'trusted_origins: {origin!r} is not an origin '
                                 f'(scheme://host[:port])')
        self.trusted_origins = frozenset(_normalize(origin.lower()) for origin in origins)
        try:
            format_set_cookie(cookie_name, 'x', path=path, domain=domain,
                              secure=secure is not False, httponly=False, samesite=samesite)
        except ValueError as exc:
            raise ValueError(f'cookie settings: {exc}') from None
        self.allow_same_site = allow_same_site
        self.require_token = require_token
        self.cookie_name = cookie_name
        self.header_name = header_name
        self._header_key = header_name.lower().encode('latin-1')
        self.form_field = form_field
        self.secure = True if secure is None and samesite.lower() == 'none' else secure
        self.samesite = samesite
        self.path = path
        self.domain = domain
        self.option = option
        self.priority = priority

    def setup(self, app: Tremolo) -> None:
        app.provide('csrf_token')(self.token)
        app.on_request(priority=self.priority)(self.on_request)
        app.on_response(priority=self.priority)(self.on_response)

    # -- the token -----------------------------------------------------------------------------

    def _secret(self, request: Request) -> Optional[bytes]:
        """The client's token secret, from its cookie, if the cookie is valid."""
        cookie = request.cookies.get(self.cookie_name)
        if not cookie:
            return None
        secret = self.signer.unsign(cookie)
        return secret if secret is not None and len(secret) == _SIZE else None

    def token(self, request: Request, context: Context) -> str:
        """The ``csrf_token`` to put in a page: masked afresh each time. A client without a
        valid token cookie gets one with this response."""
        secret = getattr(context, 'csrf_secret', None)
        if secret is None:
            secret = self._secret(request)
            if secret is None:
                secret = os.urandom(_SIZE)
                setattr(context, 'csrf_new', True)  # noqa: B010 - for on_response
            setattr(context, 'csrf_secret', secret)  # noqa: B010
        mask = os.urandom(_SIZE)
        return b64encode(mask + bytes(a ^ b for a, b in zip(mask, secret)))

    def on_response(self, request: Request, response: Response, context: Context) -> None:
        """Set the token cookie of a client that got a new token."""
        if getattr(context, 'csrf_new', False):
            secure = request.scheme == 'https' if self.secure is None else self.secure
            response.headers.add('Set-Cookie', format_set_cookie(
                self.cookie_name, self.signer.sign(getattr(context, 'csrf_secret', b'')),
                path=self.path, domain=self.domain, secure=secure, httponly=False,
                samesite=self.samesite))
            setattr(context, 'csrf_new', False)  # noqa: B010

    # -- the checks ----------------------------------------------------------------------------

    async def on_request(self, request: Request, context: Context) -> None:
        """Refuse an unsafe request that fails a check, with 403 and the reason."""
        if request.method in SAFE_METHODS or context.option(self.option, False):
            return
        refusal = self.origin_refusal(request)
        if refusal is None and self.require_token:
            refusal = await self.token_refusal(request)
        if refusal is not None:
            raise Forbidden(f'CSRF check failed: {refusal}')

    def origin_refusal(self, request: Request) -> Optional[str]:
        """Why the request's ``Sec-Fetch-Site`` and ``Origin`` refuse it, or ``None``."""
        fields = request.head.headers
        origin_raw = fields.get(b'origin')
        origin = _normalize(origin_raw.decode('latin-1').lower()) if origin_raw else None
        trusted = origin is not None and origin in self.trusted_origins
        site = fields.get(b'sec-fetch-site')
        if site is not None:
            site = site.lower()
            if site == b'cross-site' and not trusted:
                return 'a cross-site request'
            if site == b'same-site' and not (self.allow_same_site or trusted):
                return 'a request from another subdomain of the site'
        if origin is not None and not trusted:
            own = _normalize(f'{request.scheme}://{request.host}'.lower())
            if origin != own:
                return f'origin {origin_raw.decode("latin-1")!r} is not this site'  # type: ignore[union-attr]
        return None

    async def token_refusal(self, request: Request) -> Optional[str]:
        """Why the request's token refuses it, or ``None``."""
        secret = self._secret(request)
        if secret is None:
            return 'no valid CSRF cookie (load a page that gives a token first)'
        sent = request.head.headers.get(self._header_key)
        submitted = sent.decode('latin-1') if sent is not None else None
        if submitted is None and request.content_type in _FORMS:
            # The form is parsed and kept: the handler reads it again with request.form().
            value = (await request.form()).get(self.form_field)
            submitted = value if isinstance(value, str) else None
        if not submitted:
            return (f'no token: send it in the {self.header_name} header or the '
                    f'{self.form_field} form field')
        if not self._matches(submitted, secret):
            return 'the token does not match'
        return None

    def _matches(self, submitted: str, secret: bytes) -> bool:
        if '.' in submitted:  # the cookie's value itself, sent back by a script
            payload = self.signer.unsign(submitted)
            return payload is not None and hmac.compare_digest(payload, secret)
        try:
            raw = b64decode(submitted)
        except ValueError:
            return False
        if len(raw) != 2 * _SIZE:
            return False
        mask, masked = raw[:_SIZE], raw[_SIZE:]
        return hmac.compare_digest(bytes(a ^ b for a, b in zip(mask, masked)), secret)

    def __repr__(self) -> str:
        return f'<CSRF {self.cookie_name} / {self.header_name}>'


def _normalize(origin: str) -> str:
    """An origin without the default port of its scheme."""
    scheme, _, rest = origin.partition('://')
    port = _DEFAULT_PORTS.get(scheme)
    if port is not None and rest.endswith(port):
        rest = rest[:-len(port)]
    return f'{scheme}://{rest}'
