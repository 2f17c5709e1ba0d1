"""Security headers, redirection to HTTPS and the hosts an application answers for.

```python
from tremolo import Tremolo
from tremolo.middleware.security import HTTPSRedirect, SecurityHeaders, TrustedHosts

app = Tremolo()
app.install(TrustedHosts(['example.com', '*.example.com']))
app.install(HTTPSRedirect())
app.install(SecurityHeaders(content_security_policy="default-src 'self'"))
```

The scheme and the host are the request's as the client used them: behind a trusted proxy
(the ``trusted_proxies`` option) they come from ``Forwarded`` or ``X-Forwarded-Proto`` /
``X-Forwarded-Host`` (see `tremolo.Request.scheme` and `tremolo.Request.host`), so a TLS
proxy in front of a plain-HTTP Tremolo is not redirected in a loop.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Optional

from tremolo import BadRequest, Extension, Request, Response, Tremolo

__all__ = ['HTTPSRedirect', 'SecurityHeaders', 'TrustedHosts']

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_UNSAFE = re.compile(r'[\x00-\x08\x0a-\x1f\x7f]')
# A host name or an IP literal, as the parser checked it (RFC 3986 §3.2.2), lower-cased.
_HOST_PATTERN = re.compile(r'(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?|\[[0-9a-f:.]+\]')


class SecurityHeaders(Extension):
    """Add the security headers of the response that browsers act on.

    Each argument sets one header; ``None`` leaves it out. They are default headers
    (`tremolo.Tremolo.add_default_header`): every response carries them, errors included, at
    no cost per request, and a response that sets one of them itself (in the handler or a
    hook) keeps its own.

    Args:
        hsts_max_age: ``Strict-Transport-Security: max-age=...``: seconds a browser uses
            HTTPS only for this host. Sent on HTTPS responses only (RFC 6797 §7.2).
        hsts_include_subdomains: Add ``includeSubDomains``.
        hsts_preload: Add ``preload`` (for the browsers' preload lists).
        content_type_options: ``X-Content-Type-Options`` (``nosniff``: no guessing of
            types).
        frame_options: ``X-Frame-Options`` (``'DENY'`` or ``'SAMEORIGIN'``): which pages may
            frame this one (CSP's ``frame-ancestors`` is the modern form).
        content_security_policy: ``Content-Security-Policy``.
        content_security_policy_report_only: ``Content-Security-Policy-Report-Only``.
        referrer_policy: ``Referrer-Policy``.
        cross_origin_opener_policy: ``Cross-Origin-Opener-Policy``.
        cross_origin_resource_policy: ``Cross-Origin-Resource-Policy``.
        permissions_policy: ``Permissions-Policy``.
        headers: More headers, by name.
        priority: Kept for the table of the middleware library: default headers have no
            order (a response's own fields win over them whatever sets them).
        prefix: Only responses to paths under this prefix get the headers.

    Raises:
        ValueError: A header value with a line break or a control character, an invalid
            header name, or a negative ``hsts_max_age``, naming the argument.
    """

    name = 'security-headers'

    def __init__(
        self, *, hsts_max_age: Optional[int] = 31536000, hsts_include_subdomains: bool = True,
        hsts_preload: bool = False, content_type_options: Optional[str] = 'nosniff',
        frame_options: Optional[str] = 'SAMEORIGIN',
        content_security_policy: Optional[str] = None,
        content_security_policy_report_only: Optional[str] = None,
        referrer_policy: Optional[str] = 'strict-origin-when-cross-origin',
        cross_origin_opener_policy: Optional[str] = 'same-origin',
        cross_origin_resource_policy: Optional[str] = None,
        permissions_policy: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None, priority: int = 50,
        prefix: Optional[str] = None,
    ) -> None:
        if hsts_max_age is not None and (isinstance(hsts_max_age, bool) or not isinstance(
                hsts_max_age, int) or hsts_max_age < 0):
            raise ValueError(f'hsts_max_age must be a number of seconds of at least 0, not '
                             f'{hsts_max_age!r}')
        self.hsts: Optional[str] = None
        if hsts_max_age is not None:
            self.hsts = f'max-age={hsts_max_age}' + (
                '; includeSubDomains' if hsts_include_subdomains else '') + (
                '; preload' if hsts_preload else '')
        named = [
            ('X-Content-Type-Options', content_type_options, 'content_type_options'),
            ('X-Frame-Options', frame_options, 'frame_options'),
            ('Content-Security-Policy', content_security_policy, 'content_security_policy'),
            ('Content-Security-Policy-Report-Only', content_security_policy_report_only,
             'content_security_policy_report_only'),
            ('Referrer-Policy', referrer_policy, 'referrer_policy'),
            ('Cross-Origin-Opener-Policy', cross_origin_opener_policy,
             'cross_origin_opener_policy'),
            ('Cross-Origin-Resource-Policy', cross_origin_resource_policy,
             'cross_origin_resource_policy'),
            ('Permissions-Policy', permissions_policy, 'permissions_policy'),
        ]
        named.extend((name, value, f'headers[{name!r}]')
                     for name, value in (headers or {}).items())
        pairs: list[tuple[str, str]] = []
        for name, value, argument in named:
            if value is None:
                continue
            if not isinstance(value, str) or _UNSAFE.search(value) or not _TOKEN.fullmatch(
                    name):
                raise ValueError(f'{argument}: {value!r} is not a valid header value')
            pairs.append((name, value))
        #: The headers of every response (HSTS apart).
        self.headers = tuple(pairs)
        self.priority = priority
        self.prefix = prefix

    def setup(self, app: Tremolo) -> None:
        # Constant fields: default headers, worked out into the bytes of each route's head
        # once, rather than added by a hook to every response.
        for name, value in self.headers:
            app.add_default_header(name, value, prefix=self.prefix)
        if self.hsts is not None:
            app.add_default_header('Strict-Transport-Security', self.hsts, prefix=self.prefix,
                                   https_only=True)

    def __repr__(self) -> str:
        return f'<SecurityHeaders {", ".join(name for name, _ in self.headers)}>'


def split_host(host: str) -> tuple[str, str]:
    """``(hostname, ':port')`` of a ``host[:port]`` value (``':port'`` empty when absent),
    the hostname lower-cased without a trailing dot; IPv6 literals keep their brackets."""
    host = host.lower()
    if host.startswith('['):
        end = host.find(']')
        return host[:end + 1], host[end + 1:]
    name, colon, port = host.partition(':')
    return name.rstrip('.'), colon + port


class HTTPSRedirect(Extension):
    """Redirect every request made over plain HTTP to the same URL over HTTPS.

    Args:
        status: The redirect status: ``308`` (permanent, the method and body are kept) by
            default; ``301``, ``302`` or ``307`` also work.
        https_port: The port of the HTTPS server, when it is not 443.
        priority: The priority of its hook (see the table of the middleware library).
        prefix: Only paths under this prefix are redirected.

    Raises:
        ValueError: A status that is not a redirect, or a port out of range.
    """

    name = 'https-redirect'

    def __init__(self, status: int = 308, *, https_port: Optional[int] = None,
                 priority: int = 30, prefix: Optional[str] = None) -> None:
        if status not in (301, 302, 307, 308):
            raise ValueError(f'status must be 301, 302, 307 or 308, not {status!r}')
        if https_port is not None and (isinstance(https_port, bool) or not isinstance(
                https_port, int) or not 0 < https_port < 65536):
            raise ValueError(f'https_port must be a port number, not {https_port!r}')
        self.status = status
        self.https_port = https_port
        self._port = '' if https_port in (None, 443) else f':{https_port}'
        self.priority = priority
        self.prefix = prefix

    def setup(self, app: Tremolo) -> None:
        app.on_request(priority=self.priority, prefix=self.prefix)(self.on_request)

    def on_request(self, request: Request, response: Response) -> Optional[bytes]:
        """Answer a plain-HTTP request with a redirect to HTTPS."""
        if request.scheme == 'https':
            return None
        hostname, _ = split_host(request.host)
        if not hostname:
            raise BadRequest('a Host is needed to redirect to HTTPS')
        target = request.raw_path.decode('ascii')
        if request.query_string:
            target += '?' + request.query_string
        return response.redirect(f'https://{hostname}{self._port}{target}', self.status)

    def __repr__(self) -> str:
        return f'<HTTPSRedirect {self.status}>'


class TrustedHosts(Extension):
    """Answer only requests for the hosts listed; the others get ``400``.

    It stops requests with a forged ``Host`` (DNS rebinding, poisoned password-reset links,
    cache poisoning) before any handler builds a URL from it.

    Args:
        allowed_hosts: Host names: ``'example.com'`` (exactly), ``'*.example.com'`` (any
            subdomain, not ``example.com`` itself), an IP literal (``'127.0.0.1'``,
            ``'[::1]'``), or ``'*'`` (any). The port is not compared.
        priority: The priority of its hook (see the table of the middleware library).

    Raises:
        ValueError: An empty list, or an entry that is not a host name or pattern.
    """

    name = 'trusted-hosts'

    def __init__(self, allowed_hosts: Iterable[str], *, priority: int = 20) -> None:
        hosts = [allowed_hosts] if isinstance(allowed_hosts, str) else list(allowed_hosts)
        if not hosts:
            raise ValueError('allowed_hosts: list at least one host')
        exact = set()
        suffixes = []
        self.any_host = False
        for host in hosts:
            if not isinstance(host, str):
                raise ValueError(f'allowed_hosts: {host!r} is not a host name')
            entry = host.strip().lower()
            if entry == '*':
                self.any_host = True
            elif _HOST_PATTERN.fullmatch(entry) is None or ':' in entry.strip('[]') and (
                    not entry.startswith('[')):
                raise ValueError(f"allowed_hosts: {host!r} is not a host name, '*.' and a "
                                 f"domain, or '*' (leave the port out)")
            elif entry.startswith('*.'):
                suffixes.append(entry[1:].rstrip('.'))
            else:
                exact.add(entry.rstrip('.'))
        self.allowed_hosts = tuple(hosts)
        self._exact = frozenset(exact)
        self._suffixes = tuple(suffixes)
        self.priority = priority

    def setup(self, app: Tremolo) -> None:
        app.on_request(priority=self.priority)(self.on_request)

    def allows(self, host: str) -> bool:
        """Whether a ``host[:port]`` value names an allowed host."""
        if self.any_host:
            return True
        hostname, _ = split_host(host)
        return hostname in self._exact or (
            bool(self._suffixes) and hostname.endswith(self._suffixes))

    def on_request(self, request: Request) -> None:
        """Refuse a request for a host that is not allowed."""
        if not self.allows(request.host):
            raise BadRequest('Invalid host')

    def __repr__(self) -> str:
        return f'<TrustedHosts {list(self.allowed_hosts)!r}>'
