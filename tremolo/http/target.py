"""The request target and the Host field (RFC 9112 §3.2, RFC 9110 §4.2, §7.2, RFC 3986 §3.2).

Which host a request is for decides routing (virtual hosts, absolute URLs built by the
application): a malformed value here must be refused, not passed on. The server accepts the
three target forms that make sense for an origin server and refuses the fourth:

- origin-form ``/path?query`` (§3.2.1): the host is the ``Host`` field;
- absolute-form ``http://authority/path?query`` (§3.2.2): the authority of the target is the
  host and the ``Host`` field is ignored (it must still be present and valid);
- asterisk-form ``*`` (§3.2.4), only for ``OPTIONS``;
- authority-form (§3.2.3) is only for ``CONNECT``, which is refused with 501 before the target is
  looked at.
"""

from __future__ import annotations

import ipaddress
import re

from .errors import BadRequest

# RFC 3986 §3.2.2: host = IP-literal / IPv4address / reg-name, with
# reg-name = *( unreserved / pct-encoded / sub-delims ). Every IPv4address is also a reg-name,
# so that branch needs no pattern of its own. port = *DIGIT (§3.2.3), possibly empty.
_UNRESERVED_SUB_DELIMS = rb"A-Za-z0-9\-._~!$&'()*+,;="
# Written as runs of plain bytes between percent-escapes, which the regex engine scans far faster
# than one alternation per byte (this runs on every request).
_REG_NAME = rb'[%s]*(?:%%[0-9A-Fa-f]{2}[%s]*)*' % (_UNRESERVED_SUB_DELIMS, _UNRESERVED_SUB_DELIMS)
# IP-literal = "[" ( IPv6address / IPvFuture ) "]"; an IPv6 address is then checked by the
# ipaddress module, whose grammar is the one of RFC 4291 §2.2 that RFC 3986 uses.
_IPV6 = rb'\[([0-9A-Fa-f:.]+)\]'
_IPV_FUTURE = rb'\[v[0-9A-Fa-f]+\.[%s:]+\]' % _UNRESERVED_SUB_DELIMS
_HOST_PORT = re.compile(rb'(?:%s|%s|%s)(?::[0-9]*)?' % (_REG_NAME, _IPV6, _IPV_FUTURE))

# absolute-form for the two schemes an HTTP server answers (RFC 9110 §4.2.1, §4.2.2; scheme
# names are case-insensitive, RFC 3986 §3.1). The authority ends at the first '/', '?' or '#'
# (RFC 3986 §3.2); what follows must be path-abempty [ "?" query ], so a '#' there is refused.
_ABSOLUTE_FORM = re.compile(rb'[Hh][Tt][Tt][Pp][Ss]?://([^/?#]*)(?:[/?][^#]*)?')


def check_host(value: bytes) -> bytes:
    """Check a ``Host`` field value or a target's authority: ``uri-host [ ":" port ]``.

    RFC 9112 §3.2: a server MUST answer 400 to a request whose Host field has an invalid value.
    An empty value is valid (RFC 9110 §7.2: sent when the target URI has no authority).

    Returns:
        ``value`` unchanged.

    Raises:
        BadRequest: The value is not ``uri-host [ ":" port ]``.
    """
    match = _HOST_PORT.fullmatch(value)
    if match is None:
        raise BadRequest('invalid Host header')
    ipv6 = match.group(1)
    if ipv6 is not None:
        try:
            ipaddress.IPv6Address(ipv6.decode('ascii'))
        except ValueError:
            raise BadRequest('invalid IPv6 address in Host') from None
    return value


def absolute_form_authority(target: bytes) -> bytes:
    """The authority (``host[:port]``) of an absolute-form target (RFC 9112 §3.2.2).

    Raises:
        BadRequest: The target is not an ``http``/``https`` URI, carries userinfo (RFC 9110
            §4.2.4: a recipient SHOULD treat it as an error, as it is mostly used to disguise the
            real host), or has an empty or invalid host (RFC 9110 §4.2.1: such a URI MUST be
            rejected as invalid).
    """
    match = _ABSOLUTE_FORM.fullmatch(target)
    if match is None:
        raise BadRequest('malformed request target')
    authority = match.group(1)
    if b'@' in authority:
        raise BadRequest('userinfo in the request target')
    check_host(authority)
    if authority[:1] in (b'', b':'):
        raise BadRequest('empty host in the request target')
    return authority
