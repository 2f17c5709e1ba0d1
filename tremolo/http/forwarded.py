"""Who the client really is behind trusted proxies: ``Forwarded`` (RFC 7239) and
``X-Forwarded-For`` / ``-Proto`` / ``-Host``.

A proxy states the address of whoever connected to it by appending to these fields, so the
values are a chain: the right-most was written by the nearest proxy, every value to its left
by a proxy further away, and the left-most may have been written by the client itself. Only a
proxy the operator trusts can vouch for the value it appended. `resolve` therefore walks the
chain from the right, skipping hops that are themselves trusted proxies, and stops at the first
one that is not: a client that prepends made-up values only adds hops further left, which are
never reached. `TrustedProxies` is compiled once from the ``trusted_proxies`` option.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Iterable, NamedTuple, Optional, Union

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

# RFC 9110 §5.6.2 token, §5.6.4 quoted-string (qdtext and quoted-pair, obs-text included).
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"((?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*)"'
# RFC 7239 §4: forwarded-pair = token "=" value; value = token / quoted-string. The grammar
# has no whitespace around ";" but lists allow it around ","; proxies are lenient, so are we.
_PAIR = re.compile(rf'[ \t]*({_TOKEN})=(?:({_TOKEN})|{_QUOTED})[ \t]*')
_UNESCAPE = re.compile(r'\\(.)')
# RFC 7239 §6: node = nodename [ ":" node-port ]; obfnode / obfport = "_" 1*( ALPHA / DIGIT /
# "." / "_" / "-" ).
_OBFUSCATED = re.compile(r'_[A-Za-z0-9._-]+')
_PORT = re.compile(r'[0-9]{1,5}')
# RFC 3986 §3.1 IPv4address (dec-octet: no leading zeros), so that a match is already written
# as ipaddress would write it; ipaddress itself costs microseconds per address.
_OCTET = r'(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
_IPV4 = re.compile(rf'{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}')
# RFC 3986 §3.1 scheme, which RFC 7239 §5.4 uses for "proto".
_SCHEME = re.compile(r'[A-Za-z][A-Za-z0-9+.-]*')
# RFC 9110 §7.2 Host = uri-host [ ":" port ]: a reg-name, IPv4 or IP-literal. Checked loosely
# (no whitespace, no delimiters that would change the meaning of a URL built from it).
_HOST = re.compile(r'(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%!$&\'()*+,;=-]+)(?::[0-9]{0,5})?')

#: The address of a hop: an IP address (as ``ipaddress`` writes it), ``'unknown'`` or an
#: obfuscated identifier (RFC 7239 §6.3), and the port, 0 when not given or obfuscated.
Node = tuple[str, int]


#: Which fields `resolve` reads: ``'auto'`` (X-Forwarded-* when the request has any, else
#: Forwarded), ``'forwarded'`` or ``'x-forwarded'`` (only those).
MODES = ('auto', 'forwarded', 'x-forwarded')


class MalformedForwarding(ValueError):
    """A forwarding field that does not follow its grammar."""


class Forwarding(NamedTuple):
    """What the trusted proxies say about the request.

    Attributes:
        client: The client address, ``(host, port)``; ``None`` for a UNIX socket peer that is
            not (or not known to be) forwarded.
        scheme: ``'http'``, ``'https'``, ... as the client used it.
        host: The host the client asked for (``None``: no proxy said, use the Host field).
    """

    client: Union[Node, str, None]
    scheme: str
    host: Optional[str]


class TrustedProxies:
    """The ``trusted_proxies`` option, compiled: which peers may speak for the client.

    Args:
        entries: IP addresses and networks (``'10.0.0.0/8'``, ``'::1'``), ``'*'`` for every
            peer, ``'unix'`` for peers on a UNIX socket, and obfuscated identifiers
            (``'_proxy1'``, RFC 7239 §6.3) that proxies use for one another in ``Forwarded``.
        mode: Which fields to read, one of `MODES` (the ``forwarded_headers`` option).

    Raises:
        ValueError: An entry that is none of these, or an unknown mode.
    """

    __slots__ = ('everyone', 'unix', 'addresses', 'networks', 'names', 'mode', '_known')

    def __init__(self, entries: Iterable[str], mode: str = 'auto') -> None:
        if mode not in MODES:
            raise ValueError(f'forwarded_headers must be one of {", ".join(MODES)}, not {mode!r}')
        self.mode = mode
        self.everyone = False
        self.unix = False
        self.addresses: set[str] = set()
        self.networks: list[Network] = []
        self.names: set[str] = set()
        # Answers of `trusts` for addresses in networks, by host: the same proxies and clients
        # come back request after request. Bounded: emptied when full.
        self._known: dict[str, bool] = {}
        for entry in entries:
            entry = entry.strip()
            if entry == '*':
                self.everyone = True
            elif entry.lower() == 'unix':
                self.unix = True
            elif _OBFUSCATED.fullmatch(entry):
                self.names.add(entry)
            else:
                try:
                    network = ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(
                        f'trusted_proxies: {entry!r} is not an IP address, a network, '
                        "'*', 'unix' or an obfuscated identifier such as '_proxy1'"
                    ) from None
                if network.num_addresses == 1:
                    self.addresses.add(str(network.network_address))
                else:
                    self.networks.append(network)

    def __bool__(self) -> bool:
        return bool(self.everyone or self.unix or self.addresses or self.networks or self.names)

    def trusts(self, host: Optional[str]) -> bool:
        """Whether the peer ``host`` (an IP address; ``None`` on a UNIX socket) is trusted."""
        if host is None:
            return self.unix or self.everyone
        if self.everyone or host in self.addresses or host in self.names:
            return True
        if not self.networks and ':' not in host:
            return False  # an IPv4 address (or a name) that is not listed
        # In a network, or IPv6 written differently than listed (::ffff:127.0.0.1).
        known = self._known.get(host)
        if known is None:
            known = self._in_networks(host)
            if len(self._known) >= 4096:
                self._known.clear()
            self._known[host] = known
        return known

    def _in_networks(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.partition('%')[0])  # no IPv6 zone index
        except ValueError:
            return False  # 'unknown', an untrusted obfuscated name, a UNIX socket path
        # ::ffff:10.0.0.1 on a dual-stack socket is the IPv4 peer 10.0.0.1.
        address = getattr(address, 'ipv4_mapped', None) or address
        if str(address) in self.addresses:
            return True
        return any(address in network for network in self.networks)


def parse_forwarded(value: str) -> list[dict[str, str]]:
    """The elements of a ``Forwarded`` field value (several fields joined by ``,``), each a
    dict of its parameters with lower-cased names and unquoted values (RFC 7239 §4).

    Raises:
        MalformedForwarding: The value does not follow the grammar, or an element repeats a
            parameter (RFC 7239 §4: each parameter at most once per element).
    """
    elements: list[dict[str, str]] = []
    element: dict[str, str] = {}
    position = 0
    end = len(value)
    while True:
        match = _PAIR.match(value, position)
        if match is not None:
            name = match.group(1).lower()
            if name in element:
                raise MalformedForwarding(f'parameter {name!r} repeated in one element')
            token, quoted = match.group(2), match.group(3)
            element[name] = token if token is not None else _UNESCAPE.sub(r'\1', quoted)
            position = match.end()
        else:
            while position < end and value[position] in ' \t':
                position += 1
        if position >= end:
            break
        separator = value[position]
        if separator == ',':
            if element:
                elements.append(element)
            element = {}
        elif separator != ';':
            raise MalformedForwarding(f'unexpected {separator!r} at {position}')
        position += 1
    if element:
        elements.append(element)
    return elements


def parse_node(value: str) -> Node:
    """A ``for=`` value (RFC 7239 §6): ``192.0.2.43``, ``"[2001:db8::1]:4711"``,
    ``unknown``, ``_hidden``, ``"192.0.2.43:_port"``.

    Raises:
        MalformedForwarding: Anything else (a bare IPv6 address without brackets included).
    """
    if value.startswith('['):
        close = value.find(']')
        if close == -1:
            raise MalformedForwarding(f'unclosed bracket in {value!r}')
        name, rest = value[1:close], value[close + 1:]
        if rest and rest[0] != ':':
            raise MalformedForwarding(f'unexpected text after {value[:close + 1]!r}')
        port = rest[1:] if rest else None
        try:
            host = str(ipaddress.IPv6Address(name))
        except ValueError:
            raise MalformedForwarding(f'not an IPv6 address: {name!r}') from None
    else:
        name, colon, port_text = value.partition(':')
        port = port_text if colon else None
        if _IPV4.fullmatch(name) or name == 'unknown' or _OBFUSCATED.fullmatch(name):
            host = name
        else:
            try:
                host = str(ipaddress.IPv4Address(name))
            except ValueError:
                raise MalformedForwarding(f'not a node: {value!r}') from None
    return host, _port(port)


def _port(text: Optional[str]) -> int:
    if text is None or _OBFUSCATED.fullmatch(text):
        return 0
    if not _PORT.fullmatch(text) or int(text) > 65535:
        raise MalformedForwarding(f'not a port: {text!r}')
    return int(text)


def parse_x_forwarded_for(value: str) -> list[Node]:
    """The addresses of an ``X-Forwarded-For`` value: IPv4 or IPv6 addresses, with a port
    (``192.0.2.1:80``, ``[2001:db8::1]:80``) where a proxy added one; empty items are skipped.

    Raises:
        MalformedForwarding: An item that is not an address.
    """
    nodes = []
    for item in value.split(','):
        item = item.strip(' \t')
        if not item:
            continue
        if item.count(':') > 1 and not item.startswith('['):
            try:
                nodes.append((str(ipaddress.IPv6Address(item)), 0))
            except ValueError:
                raise MalformedForwarding(f'not an address: {item!r}') from None
            continue
        host, port = parse_node(item)
        if host == 'unknown' or host.startswith('_'):
            raise MalformedForwarding(f'not an address: {item!r}')
        nodes.append((host, port))
    return nodes


def _list(value: Optional[bytes]) -> list[str]:
    if not value:
        return []
    return [item.strip(' \t') for item in value.decode('latin-1').split(',') if item.strip()]


def _scheme(value: str) -> str:
    if not _SCHEME.fullmatch(value):
        raise MalformedForwarding(f'not a scheme: {value!r}')
    return value.lower()


def _host(value: str) -> str:
    if not _HOST.fullmatch(value):
        raise MalformedForwarding(f'not a host: {value!r}')
    return value



def resolve(
    peer: Union[Node, str, None], scheme: str, headers: dict[bytes, bytes],
    trusted: TrustedProxies,
) -> Forwarding:
    """The client, scheme and host of a request whose peer ``peer`` is a trusted proxy.

    Walks the chain from the right (see the module's description). When every hop is a
    trusted proxy, the left-most one is the client.

    Args:
        peer: The peer address (as the connection has it).
        scheme: The scheme of the connection (``'https'`` on TLS).
        headers: The request's fields, lower-cased names, repeated fields joined by ``,``.
        trusted: The trusted proxies (and the fields to read: `TrustedProxies.mode`).

    Raises:
        MalformedForwarding: A field that the mode selects is malformed.
    """
    mode = trusted.mode
    use_x = mode == 'x-forwarded' or (mode == 'auto' and (
        b'x-forwarded-for' in headers or b'x-forwarded-proto' in headers
        or b'x-forwarded-host' in headers))
    client: Union[Node, str, None] = peer
    host = None
    if use_x:
        return _resolve_x(peer, scheme, headers, trusted)
    raw = headers.get(b'forwarded')
    elements = parse_forwarded(raw.decode('latin-1')) if raw else []
    for element in reversed(elements):
        if 'proto' in element:
            scheme = _scheme(element['proto'])
        if 'host' in element:
            host = _host(element['host'])
        if 'for' not in element:
            break  # this proxy did not disclose its client: the walk cannot go further
        client = parse_node(element['for'])
        if not trusted.trusts(client[0]):
            break
    return Forwarding(client, scheme, host)


def _resolve_x(
    peer: Union[Node, str, None], scheme: str, headers: dict[bytes, bytes],
    trusted: TrustedProxies,
) -> Forwarding:
    hops = parse_x_forwarded_for(headers.get(b'x-forwarded-for', b'').decode('latin-1'))
    protos = [_scheme(item) for item in _list(headers.get(b'x-forwarded-proto'))]
    hosts = [_host(item) for item in _list(headers.get(b'x-forwarded-host'))]
    client: Union[Node, str, None] = peer
    index = len(hops) - 1
    while index >= 0:
        client = hops[index]
        if not trusted.trusts(client[0]) or index == 0:
            break
        index -= 1
    # Each proxy appends its own item to each list, so the lists line up when they have the
    # same length; otherwise only the right-most item (the nearest proxy's) is sure.
    if protos:
        scheme = protos[index] if len(protos) == len(hops) else protos[-1]
    host = None
    if hosts:
        host = hosts[index] if len(hosts) == len(hops) else hosts[-1]
    return Forwarding(client, scheme, host)
