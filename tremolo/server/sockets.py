"""Listening sockets: the addresses to serve, bound with ``SO_REUSEPORT`` (TCP) or as UNIX
sockets, and the files of UNIX sockets removed when the server stops."""

from __future__ import annotations

import errno
import os
import socket
import stat
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from ..options import Options

Address = Union[tuple[str, int], str]


def parse_address(value: Union[int, str], default_host: str) -> Address:
    """``8001`` → ``(host, 8001)``; ``'h:8001'`` → ``('h', 8001)``; a path → the path."""
    if isinstance(value, int):
        return (default_host, value)
    if value.isdigit():
        return (default_host, int(value))
    if '/' in value or value.endswith('.sock'):
        return value
    host, sep, port = value.rpartition(':')
    if not sep or not port.isdigit():
        raise ValueError(f'cannot read the address {value!r}: use PORT, HOST:PORT or a path')
    return (host.strip('[]') or default_host, int(port))


def addresses(options: Options) -> list[Address]:
    """Every address to listen on: the main one, then the extra ones, without repeats."""
    result: list[Address] = [(options.host, options.port)]
    for value in options.listen:
        address = parse_address(value, options.host)
        if address not in result:
            result.append(address)
    return result


class BindError(OSError):
    """An address cannot be listened on; the message names it (``cannot listen on
    127.0.0.1:8000: address already in use``)."""


def describe(address: Address) -> str:
    """``127.0.0.1:8000``, ``[::1]:8000`` or ``unix:/run/app.sock``, for messages."""
    if isinstance(address, str):
        return f'unix:{address}'
    host, port = address
    return f'[{host}]:{port}' if ':' in host else f'{host}:{port}'


def bind(address: Address, backlog: int, reuse_port: bool) -> socket.socket:
    """A listening socket for ``address`` (TCP with ``SO_REUSEPORT``, or a UNIX socket).

    Raises:
        BindError: The address is taken, not local, or not allowed.
    """
    try:
        return _bind(address, backlog, reuse_port)
    except BindError:
        raise
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            reason = 'address already in use (is another server listening there?)'
        raise BindError(exc.errno, f'cannot listen on {describe(address)}: {reason}') from None


def _bind(address: Address, backlog: int, reuse_port: bool) -> socket.socket:
    if isinstance(address, str):
        try:
            if stat.S_ISSOCK(os.stat(address).st_mode):
                # Only a stale file from an earlier run may be replaced: the socket of a
                # server that still listens there keeps its address.
                if _unix_socket_listening(address):
                    raise BindError(errno.EADDRINUSE, f'cannot listen on {describe(address)}: '
                                    f'a server is already listening on this UNIX socket')
                os.unlink(address)  # a stale socket file from an earlier run
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(address)
            os.chmod(address, 0o666)
        except OSError:
            sock.close()
            raise
    else:
        host, port = address
        family = socket.AF_INET6 if ':' in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port and hasattr(socket, 'SO_REUSEPORT'):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def _unix_socket_listening(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def unlink_unix_socket(path: Any) -> None:
    """Remove the file of a UNIX socket at ``path`` (a no-op for anything else).

    A stopped server leaves no socket file behind: asyncio does not remove the file of a socket
    it was handed, so the server does (a stale file would mislead other tools).
    """
    if not isinstance(path, str) or not path:  # abstract sockets have no file
        return
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except OSError:
        pass
