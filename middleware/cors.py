"""CORS: cross-origin requests allowed as the Fetch standard defines them.

```python
from tremolo import Tremolo
from tremolo.middleware.cors import CORS

app = Tremolo()
app.install(CORS(allow_origins=['https://app.example.com'], allow_credentials=True))
```

A *preflight* (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``, Fetch
§3.2.2) is answered here, before any route: ``204`` with the ``Access-Control-Allow-*`` headers
when the origin, the method and the headers asked for are allowed, else ``403`` without them
(the browser then refuses the request). Other requests from an allowed origin get
``Access-Control-Allow-Origin`` (and ``-Credentials``, ``-Expose-Headers``) on their response,
whatever it is: error responses too (404, 413, 500), so that the page can read them.
Responses that depend on ``Origin`` say so with ``Vary: Origin``. Private Network Access
preflights (``Access-Control-Request-Private-Network: true``) are allowed when
``allow_private_network`` is set.

What does not depend on the request is a default header (`tremolo.Tremolo.add_default_header`),
free per request: ``Vary: Origin``, and with ``allow_origins='*'`` without credentials the
whole answer (``Access-Control-Allow-Origin: *`` on every response, a refused preflight's
``403`` included, which the browser refuses for its status). Only preflights (``OPTIONS``)
call the request hook.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Callable, Optional, Union

from tremolo import Extension, Request, Response, Tremolo

__all__ = ['CORS', 'Origins']

#: ``'*'``, origins (``'https://example.com'``), a compiled regex matched against the whole
#: origin, or a function of the origin that answers whether it is allowed.
Origins = Union[str, Iterable[str], re.Pattern[str], Callable[[str], bool]]

_SAFE_METHODS = ('GET', 'HEAD', 'POST')
# An origin as browsers serialize it (RFC 6454 §6.2): scheme "://" host [ ":" port ].
_ORIGIN = re.compile(r'[a-z][a-z0-9+.-]*://(\[[0-9a-f:.]+\]|[^/?#:@\s]+)(:[0-9]{1,5})?')
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class CORS(Extension):
    """Allow cross-origin requests from ``allow_origins``.

    Args:
        allow_origins: ``'*'`` (any origin), a list of origins (``'https://example.com'``,
            ``'http://localhost:3000'``, ``'null'``), a compiled regex matched against the
            whole ``Origin`` value, or a function of it returning whether it is allowed.
        allow_methods: Methods allowed in preflights (``'*'``: whatever is asked).
        allow_headers: Request headers allowed in preflights, besides the CORS-safelisted
            ones (``'*'``: whatever is asked, ``Authorization`` included).
        expose_headers: Response headers the page may read, besides the safelisted ones.
        allow_credentials: Let the page send cookies and read the response of a credentialed
            request (``Access-Control-Allow-Credentials: true``).
        max_age: Seconds a browser may cache a preflight answer (``None``: not sent).
        allow_private_network: Answer Private Network Access preflights positively.
        priority: The priority of its hooks (see the table of the middleware library).
        prefix: Only paths under this prefix are cross-origin resources.

    Raises:
        ValueError: ``'*'`` with ``allow_credentials`` (the Fetch standard forbids it), a
            malformed origin (a trailing slash, a path), an invalid header or method name,
            or a negative ``max_age``; each names the argument.
        TypeError: ``allow_origins`` of another type.
    """

    name = 'cors'

    def __init__(
        self, allow_origins: Origins = (), *,
        allow_methods: Union[str, Iterable[str]] = ('GET', 'HEAD', 'POST', 'PUT', 'PATCH',
                                                    'DELETE'),
        allow_headers: Union[str, Iterable[str]] = (),
        expose_headers: Union[str, Iterable[str]] = (),
        allow_credentials: bool = False, max_age: Optional[int] = 600,
        allow_private_network: bool = False, priority: int = 70,
        prefix: Optional[str] = None,
    ) -> None:
        self.any_origin = False
        self._origins: frozenset[str] = frozenset()
        self._match: Optional[Callable[[str], bool]] = None
        if isinstance(allow_origins, str):
            allow_origins = [allow_origins]
        if isinstance(allow_origins, re.Pattern):
            pattern = allow_origins
            self._match = lambda origin: pattern.fullmatch(origin) is not None
        elif callable(allow_origins):
            self._match = allow_origins
        elif isinstance(allow_origins, Iterable):
            origins = list(allow_origins)
            for origin in origins:
                if not isinstance(origin, str):
                    raise TypeError(f'allow_origins: {origin!r} is not a str')
                if origin != '*' and origin != 'null' and _ORIGIN.fullmatch(origin) is None:
                    raise ValueError(
                        f'allow_origins: {origin!r} is not an origin: scheme://host[:port], '
                        f'lower-case, without a path or a trailing slash')
            self.any_origin = '*' in origins
            self._origins = frozenset(origins)
        else:
            raise TypeError('allow_origins must be a list of origins, a regex or a function, '
                            f'not {type(allow_origins).__name__}')
        if self.any_origin and allow_credentials:
            raise ValueError("allow_origins='*' cannot be combined with allow_credentials=True "
                             "(the Fetch standard forbids it): list the origins allowed")
        self.allow_methods = _names('allow_methods', allow_methods, upper=True)
        self.allow_headers = _names('allow_headers', allow_headers)
        self.expose_headers = _names('expose_headers', expose_headers)
        if self.expose_headers == ('*',) and allow_credentials:
            raise ValueError("expose_headers='*' means the header named * when credentials are "
                             "allowed: list the headers to expose")
        if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int)
                                    or max_age < 0):
            raise ValueError(f'max_age must be a number of seconds of at least 0, not '
                             f'{max_age!r}')
        self.allow_credentials = allow_credentials
        self.max_age = max_age
        self.allow_private_network = allow_private_network
        self.priority = priority
        self.prefix = prefix
        # Worked out once: what every allowed answer carries.
        self._methods_value = ', '.join(self.allow_methods)
        self._method_set = frozenset(self.allow_methods)
        self._header_set = frozenset(name.lower() for name in self.allow_headers)
        self._expose_value = ', '.join(self.expose_headers)
        #: The answer does not depend on Origin: ``*`` for everyone.
        self._static = self.any_origin and not allow_credentials

    def setup(self, app: Tremolo) -> None:
        # Preflights are OPTIONS requests: the other methods do not call the request hook.
        app.on_request(priority=self.priority, prefix=self.prefix, methods=('OPTIONS',))(
            self.on_request)
        if self._static:
            # The same answer for everyone: default headers, no hook per response.
            app.add_default_header('Access-Control-Allow-Origin', '*', prefix=self.prefix)
            if self._expose_value:
                app.add_default_header('Access-Control-Expose-Headers', self._expose_value,
                                       prefix=self.prefix)
            return
        # Every response depends on Origin, whether it is allowed or not; the fields that
        # allow it are default headers per request: no response hook, errors included.
        app.add_default_header('Vary', 'Origin', prefix=self.prefix)
        # Only requests with an Origin call them.
        app.add_default_header('Access-Control-Allow-Origin', per_request=self.allowed_origin,
                               if_request_has='Origin', prefix=self.prefix)
        if self.allow_credentials:
            app.add_default_header('Access-Control-Allow-Credentials',
                                   per_request=self._credentials, if_request_has='Origin',
                                   prefix=self.prefix)
        if self._expose_value:
            app.add_default_header('Access-Control-Expose-Headers', per_request=self._exposed,
                                   if_request_has='Origin', prefix=self.prefix)

    def allows(self, origin: str) -> bool:
        """Whether ``origin`` (an ``Origin`` value) is allowed."""
        if self.any_origin or origin in self._origins:
            return True
        return self._match is not None and bool(self._match(origin))

    def on_request(self, request: Request, response: Response) -> Optional[bytes]:
        """Answer preflight requests."""
        if request.method != 'OPTIONS':
            return None
        fields = request.head.headers
        origin = fields.get(b'origin')
        method = fields.get(b'access-control-request-method')
        if origin is None or method is None:
            return None  # a plain OPTIONS request: the application answers it
        response.add_vary('Origin', 'Access-Control-Request-Method',
                          'Access-Control-Request-Headers')
        origin_text = origin.decode('latin-1')
        method_text = method.decode('latin-1').strip()
        asked = fields.get(b'access-control-request-headers', b'').decode('latin-1')
        names = [name.strip() for name in asked.split(',') if name.strip()]
        refusal = self._refusal(origin_text, method_text, names)
        if refusal is not None:
            response.set_status(403)
            response.set_content_type('text/plain; charset=utf-8')
            return f'CORS preflight refused: {refusal}\n'.encode()
        headers = response.headers
        headers['Access-Control-Allow-Origin'] = '*' if self._static else origin_text
        if self.allow_credentials:
            headers['Access-Control-Allow-Credentials'] = 'true'
        headers['Access-Control-Allow-Methods'] = (
            method_text if self.allow_methods == ('*',) else self._methods_value)
        if names:
            # The headers asked for, all allowed (or '*'): echoing them also covers
            # Authorization, which a '*' value does not (Fetch §3.2.3).
            headers['Access-Control-Allow-Headers'] = ', '.join(names)
        if self.max_age is not None:
            headers['Access-Control-Max-Age'] = str(self.max_age)
        if self.allow_private_network and fields.get(
                b'access-control-request-private-network', b'').lower() == b'true':
            headers['Access-Control-Allow-Private-Network'] = 'true'
        response.set_status(204)
        return b''

    def _refusal(self, origin: str, method: str, names: list[str]) -> Optional[str]:
        if not self.allows(origin):
            return f'origin {origin!r} is not allowed'
        if self.allow_methods != ('*',) and method not in self._method_set and (
                method not in _SAFE_METHODS):
            return f'method {method!r} is not allowed'
        if self.allow_headers != ('*',):
            for name in names:
                if name.lower() not in self._header_set and not _safelisted(name):
                    return f'header {name!r} is not allowed'
        return None

    def allowed_origin(self, request: Request) -> Optional[str]:
        """The ``Access-Control-Allow-Origin`` of the response to ``request``: its origin
        when it is allowed, else ``None`` (no field: the browser hides the response).

        Preflights are answered by `on_request`, which sets the field itself when it allows
        them: a refused one gets none.
        """
        fields = request.head.headers
        origin = fields.get(b'origin')
        if origin is None:
            return None  # not a cross-origin request: nothing to allow
        if request.method == 'OPTIONS' and b'access-control-request-method' in fields:
            return None  # a preflight refused (an allowed one has the field already)
        origin_text = origin.decode('latin-1')
        return origin_text if self.allows(origin_text) else None

    def _credentials(self, request: Request) -> Optional[str]:
        return 'true' if self.allowed_origin(request) is not None else None

    def _exposed(self, request: Request) -> Optional[str]:
        return self._expose_value if self.allowed_origin(request) is not None else None

    def __repr__(self) -> str:
        origins = '*' if self.any_origin else sorted(self._origins) or self._match
        return f'<CORS origins={origins!r} credentials={self.allow_credentials}>'


def _names(argument: str, value: Union[str, Iterable[str]], upper: bool = False
           ) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else list(value)
    for name in names:
        if not isinstance(name, str) or (name != '*' and _TOKEN.fullmatch(name) is None):
            raise ValueError(f'{argument}: {name!r} is not a valid name')
    if '*' in names:
        return ('*',)
    return tuple(name.upper() if upper else name for name in names)


# Fetch §2.2.2: headers a page may send without a preflight (with a simple value).
_SAFELISTED = frozenset(('accept', 'accept-language', 'content-language', 'content-type',
                         'range'))


def _safelisted(name: str) -> bool:
    return name.lower() in _SAFELISTED
