"""Sessions: a ``session`` for each client, kept in a signed cookie or in a store.

```python
from tremolo import Tremolo
from tremolo.extensions.sessions import Sessions

app = Tremolo()
app.install(Sessions(secret_key=SECRET))

@app.route('/visits')
async def visits(session):
    session['visits'] = session.get('visits', 0) + 1
    return f'{session["visits"]} visits'
```

A handler (or hook, or provider) that takes ``session`` gets a `Session`, a dict of JSON
values, loaded the first time it is asked for in a request and saved only when it changed.
Without a store, the whole session is the cookie: JSON, signed with HMAC-SHA256 (tampering
is detected, the content is readable by the client: keep secrets out of it), its expiry inside
the signed part so that an old cookie cannot be replayed past it, and its size checked
against the 4096 bytes a browser keeps for a cookie. With a store (`MemorySessionStore`,
`FileSessionStore`, or a shared one such as Redis), the cookie holds only a signed random id.

The cookie is ``HttpOnly``, ``SameSite=Lax``, ``Path=/``, and ``Secure`` when the request came
over HTTPS, unless configured otherwise.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import re
import secrets
import time
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol, Union

from tremolo.middleware.signing import SecretKeys, Signer

from tremolo import (
    ClientDisconnected,
    Extension,
    Request,
    Response,
    ServiceUnavailable,
    Tremolo,
)
from tremolo.http.cookies import format_set_cookie

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ['FileSessionStore', 'MemorySessionStore', 'Session', 'SessionStore', 'Sessions']

logger = logging.getLogger('tremolo.sessions')

#: RFC 6265 §6.1: browsers keep at least 4096 bytes per cookie (name, value and attributes).
COOKIE_LIMIT = 4096
_ID = re.compile(r'[A-Za-z0-9_-]{16,128}')
_encode = json.JSONEncoder(separators=(',', ':'), ensure_ascii=False).encode


class SessionStore(Protocol):
    """Where server-side sessions are kept: session data by id, with a time to live.

    Each method is one atomic operation on one session. The data is a dict of JSON values:
    a store keeps a copy (serialized: later changes to the dict do not reach it). A store that
    cannot be reached raises `ConnectionError`, at once or after a bounded wait (the request
    is then answered 503); it reports its outages itself (the Redis store logs one warning
    when Redis is lost, one when it answers again), so that no line is logged per request.
    """

    async def load(self, session_id: str) -> Optional[dict[str, Any]]:
        """The data of a session, or ``None`` when there is none (or it expired)."""

    async def save(self, session_id: str, data: dict[str, Any],
                   ttl: Optional[float] = None) -> None:
        """Keep ``data`` as the session's, for ``ttl`` seconds from now (the store's own
        default when ``None``).

        Raises:
            TypeError: The data is not made of JSON values.
        """

    async def delete(self, session_id: str) -> None:
        """Forget a session (nothing happens if there is none)."""


class Session(dict[str, Any]):
    """The session of one request: a dict of JSON values.

    Changing it (setting, deleting, `clear`, `pop`, `setdefault`, `update`, ...) marks it
    `modified`, and it is saved just before the head of the response is sent, after the
    ``on_response`` hooks. A value changed in place (``session['cart'].append(x)``) is not
    seen: set ``session.modified = True``, or assign the value again. Reading it is reading a
    dict.

    Attributes:
        new: The client had no valid session: this one starts empty.
        id: The session's id in the store (server-side sessions), ``None`` until saved.
    """

    # The attributes most sessions never change are class defaults (an instance that changes
    # one keeps it in its own __dict__): a session is made for every request that asks.
    __slots__ = ('new', '_response', '_on_change', '__dict__')
    id: Optional[str] = None
    #: A new id is to be given at the next save (see `regenerate`).
    regenerated = False
    _modified = False

    def __init__(self, data: Optional[dict[str, Any]] = None, *, new: bool = True,
                 session_id: Optional[str] = None,
                 response: Optional[Response] = None,
                 on_change: Optional[Callable[[Session], None]] = None) -> None:
        if data:
            dict.update(self, data)
        self.new = new
        if session_id is not None:
            self.id = session_id
        self._response = response
        # Called when it becomes modified (`Sessions` arranges for it to be saved then).
        self._on_change = on_change

    @property
    def modified(self) -> bool:
        """It changed in this request and will be saved (set it to ``True`` after changing a
        value in place)."""
        return self._modified

    @modified.setter
    def modified(self, value: bool) -> None:
        if value:
            self._change()
        else:
            self._modified = False

    def _change(self) -> None:
        response = self._response
        if response is not None and response.headers_sent:
            raise RuntimeError('the response has started: the session can no longer be saved '
                               '(change it before the first piece of a streamed body)')
        if not self._modified:
            self._modified = True
            if self._on_change is not None:
                self._on_change(self)

    def __setitem__(self, key: str, value: Any) -> None:
        self._change()
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._change()
        dict.__delitem__(self, key)

    def clear(self) -> None:
        """Empty the session: its cookie (and stored data) are deleted."""
        self._change()
        dict.clear(self)

    _MISSING: Any = object()

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        if key in self:
            self._change()
            return dict.pop(self, key)
        if default is Session._MISSING:
            raise KeyError(key)
        return default

    def popitem(self) -> tuple[str, Any]:
        if not self:
            raise KeyError('popitem(): the session is empty')
        self._change()
        return dict.popitem(self)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key in self:
            return dict.__getitem__(self, key)
        self[key] = default
        return default

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        items = dict(other, **kwargs)
        if items:
            self._change()
            dict.update(self, items)

    def __ior__(self, other: Any) -> Session:  # type: ignore[override,misc]
        self.update(other)
        return self

    def regenerate(self) -> None:
        """Keep the data under a new id (server-side sessions) and a new cookie: call it when
        the user logs in, so that an id planted before cannot follow them (session
        fixation)."""
        self._change()
        self.regenerated = True

    def to_dict(self) -> dict[str, Any]:
        """A copy of the data."""
        return dict(self)

    def __repr__(self) -> str:
        return f'<Session {dict.__repr__(self)}{" modified" if self._modified else ""}>'


#: A `Session` with nothing set yet (see `Sessions.load_cookie`).
_new_session = Session.__new__


class MemorySessionStore:
    """Sessions in a dict of this process: a `SessionStore` for one worker, or for tests.

    Expired sessions are forgotten when they are next asked for, and all of them at once
    whenever the table has doubled since the last sweep.

    Args:
        ttl: Seconds a session is kept after its last save, unless `save` says otherwise.
    """

    def __init__(self, ttl: float = 14 * 86400) -> None:
        self.ttl = ttl
        self._sessions: dict[str, tuple[float, bytes]] = {}
        self._sweep_at = 1024

    async def load(self, session_id: str) -> Optional[dict[str, Any]]:
        entry = self._sessions.get(session_id)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._sessions[session_id]
            return None
        data: dict[str, Any] = json.loads(entry[1])  # a copy: the caller may change it
        return data

    async def save(self, session_id: str, data: dict[str, Any],
                   ttl: Optional[float] = None) -> None:
        encoded = _encode(data).encode('utf-8')
        now = time.monotonic()
        sessions = self._sessions
        if len(sessions) >= self._sweep_at:
            self._sessions = sessions = {key: entry for key, entry in sessions.items()
                                         if entry[0] > now}
            self._sweep_at = max(1024, 2 * len(sessions))
        sessions[session_id] = (now + (ttl or self.ttl), encoded)

    async def delete(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._sessions)

    def __repr__(self) -> str:
        return f'<MemorySessionStore {len(self._sessions)} sessions>'


class FileSessionStore:
    """Sessions as files in a directory: a `SessionStore` shared by the workers of one
    machine, surviving restarts.

    One file per session (its expiry on the first line, then the JSON data), written whole
    under a temporary name and renamed, so that a reader never sees half a file. Files are
    read and written in the thread pool. Expired files are removed when they are next asked
    for, and all of them by a sweep at most once every ``sweep_interval`` seconds (or
    `sweep`).

    Args:
        directory: Where the files go (created if missing, readable by this user only).
        ttl: Seconds a session is kept after its last save, unless `save` says otherwise.
        sweep_interval: The most often, in seconds, that expired files are swept.
    """

    def __init__(self, directory: Union[str, Path], *, ttl: float = 14 * 86400,
                 sweep_interval: float = 3600.0) -> None:
        self.directory = os.fspath(directory)
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        self.ttl = ttl
        self.sweep_interval = sweep_interval
        self._swept = time.time()

    def _path(self, session_id: str) -> str:
        if _ID.fullmatch(session_id) is None:
            raise ValueError(f'not a session id: {session_id!r}')
        return os.path.join(self.directory, session_id)

    async def load(self, session_id: str) -> Optional[dict[str, Any]]:
        return await asyncio.get_running_loop().run_in_executor(None, self._load, session_id)

    async def save(self, session_id: str, data: dict[str, Any],
                   ttl: Optional[float] = None) -> None:
        encoded = _encode(data).encode('utf-8')  # TypeError here, in the caller's task
        await asyncio.get_running_loop().run_in_executor(
            None, self._save, session_id, encoded, ttl or self.ttl)

    async def delete(self, session_id: str) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._delete, session_id)

    def _load(self, session_id: str) -> Optional[dict[str, Any]]:
        path = self._path(session_id)
        try:
            with open(path, 'rb') as file:
                content = file.read()
        except FileNotFoundError:
            return None
        expires, _, data = content.partition(b'\n')
        try:
            if float(expires) <= time.time():
                self._delete(session_id)
                return None
            value = json.loads(data)
        except ValueError:
            return None  # not one of ours: treated as gone
        return value if isinstance(value, dict) else None

    def _save(self, session_id: str, data: bytes, ttl: float) -> None:
        path = self._path(session_id)
        temporary = f'{path}.{secrets.token_hex(4)}.tmp'
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), 'wb') as file:
            file.write(b'%.3f\n' % (time.time() + ttl))
            file.write(data)
        os.replace(temporary, path)
        if time.time() - self._swept >= self.sweep_interval:
            self.sweep()

    def _delete(self, session_id: str) -> None:
        try:
            os.unlink(self._path(session_id))
        except FileNotFoundError:
            pass

    def sweep(self) -> int:
        """Remove the files of expired sessions (and temporary files left by a crash);
        return how many were removed."""
        self._swept = now = time.time()
        removed = 0
        for entry in os.scandir(self.directory):
            try:
                if entry.name.endswith('.tmp'):
                    if entry.stat().st_mtime < now - 60:
                        os.unlink(entry.path)
                        removed += 1
                    continue
                if _ID.fullmatch(entry.name) is None:
                    continue
                with open(entry.path, 'rb') as file:
                    expires = file.readline()
                if float(expires) <= now:
                    os.unlink(entry.path)
                    removed += 1
            except (OSError, ValueError):
                continue
        return removed

    def __repr__(self) -> str:
        return f'<FileSessionStore {self.directory!r}>'


class Sessions(Extension):
    """Give handlers a ``session`` (see the module's description).

    Args:
        secret_key: The key that signs the cookies (``secrets.token_urlsafe(32)`` makes a
            good one), or a list of keys, newest first, to rotate them.
        store: Where sessions are kept; ``None`` keeps them in the cookie itself.
        cookie_name: The cookie's name.
        max_age: Seconds a session lives after it was last saved.
        persistent: Send ``Max-Age`` with the cookie; ``False`` makes a browser-session
            cookie (the session still expires after ``max_age``).
        path: The cookie's ``Path``.
        domain: The cookie's ``Domain`` (``None``: this host only).
        secure: Send the cookie over HTTPS only: ``None`` sets ``Secure`` when the request
            came over HTTPS.
        httponly: Hide the cookie from scripts.
        samesite: The cookie's ``SameSite``: ``'Lax'``, ``'Strict'`` or ``'None'``.

    Raises:
        ValueError: An empty secret key, a ``max_age`` not above 0, an invalid cookie name or
            attribute, naming the argument.
        TypeError: A store without the `SessionStore` methods.
    """

    name = 'sessions'

    def __init__(
        self, secret_key: SecretKeys, *, store: Optional[SessionStore] = None,
        cookie_name: str = 'session', max_age: float = 14 * 86400, persistent: bool = True,
        path: str = '/', domain: Optional[str] = None, secure: Optional[bool] = None,
        httponly: bool = True, samesite: str = 'Lax',
    ) -> None:
        self.signer = Signer(secret_key, salt='tremolo.session')
        if isinstance(max_age, bool) or not isinstance(max_age, (int, float)) or max_age <= 0:
            raise ValueError(f'max_age must be a number of seconds above 0, not {max_age!r}')
        if store is not None:
            missing = [name for name in ('load', 'save', 'delete')
                       if not callable(getattr(store, name, None))]
            if missing:
                raise TypeError(f'store: {store!r} has no {", ".join(missing)} method')
        # Every attribute checked now, rather than at the first response.
        try:
            format_set_cookie(cookie_name, 'x', path=path, domain=domain,
                              secure=secure is not False, httponly=httponly,
                              samesite=samesite)
        except ValueError as exc:
            raise ValueError(f'cookie settings: {exc}') from None
        self.store = store
        self.cookie_name = cookie_name
        self._cookie_key = cookie_name
        self.max_age = max_age
        self.persistent = persistent
        self.path = path
        self.domain = domain
        # Browsers drop SameSite=None cookies without Secure: such a cookie is always Secure.
        self.secure = True if secure is None and samesite.lower() == 'none' else secure
        self.httponly = httponly
        self.samesite = samesite
        #: What a session calls when it changes (bound once, not per session).
        self._on_change: Callable[[Session], None] = self._changed

    def setup(self, app: Tremolo) -> None:
        # No response hook: a session that changes arranges to be saved just before the head
        # (`Response.before_head`), and the requests whose session did not change pay nothing.
        # Cookie sessions never wait: they are loaded and saved without a coroutine.
        app.provide('session')(self.load_cookie if self.store is None else self.load)

    # -- loading ---------------------------------------------------------------------------------

    async def load(self, request: Request, response: Response) -> Session:
        """The ``session`` of the request: the client's, or a new empty one.

        The provider of ``session``: called once per request (the one session of the request
        is then given to every function that names it), and only for the requests whose
        handler, hooks or providers name it.
        """
        cookie = request.cookies.get(self._cookie_key) if b'cookie' in request.head.headers else (
            None)
        payload = self.signer.unsign(cookie) if cookie else None
        session = None
        if payload is not None:
            if self.store is None:
                session = self._from_cookie(payload, response)
            else:
                session = await self._from_store(payload, response)
        if session is None:
            session = Session(new=True, response=response, on_change=self._on_change)
        return session

    def load_cookie(self, request: Request, response: Response) -> Session:
        """`load`, for sessions kept in the cookie (nothing to wait for)."""
        if b'cookie' in request.head.headers:
            cookie = request.cookies.get(self._cookie_key)
            payload = self.signer.unsign(cookie) if cookie else None
            session = self._from_cookie(payload, response) if payload is not None else None
            if session is not None:
                return session
        # No cookie (a new visitor, or a client that keeps none), or none of ours: a new
        # session, made without `Session.__init__` (calling a dict subclass with keywords
        # costs three times as much, for every such request).
        session = _new_session(Session)
        session.new = True
        session._response = response
        session._on_change = self._on_change
        return session

    def _from_cookie(self, payload: bytes, response: Response) -> Optional[Session]:
        try:
            content = json.loads(payload)
            data, expires = content['d'], content['e']
        except (ValueError, TypeError, KeyError):
            return None
        if not isinstance(data, dict) or not isinstance(expires, (int, float)) or (
                expires <= time.time()):
            return None  # expired: the signed expiry cannot be moved by the client
        return Session(data, new=False, response=response, on_change=self._on_change)

    async def _from_store(self, payload: bytes, response: Response) -> Optional[Session]:
        session_id = payload.decode('ascii', 'replace')
        if _ID.fullmatch(session_id) is None:
            return None
        assert self.store is not None
        try:
            data = await self.store.load(session_id)
        except ConnectionError as exc:
            if isinstance(exc, ClientDisconnected):
                raise
            raise _unavailable(exc) from exc
        if not isinstance(data, dict):
            return None
        return Session(data, new=False, session_id=session_id, response=response,
                       on_change=self._on_change)

    # -- saving ----------------------------------------------------------------------------------

    def _changed(self, session: Session) -> None:
        """A session became modified: save it just before the head of its response is sent,
        after the ``on_response`` hooks (which may change it too)."""
        response = session._response
        if response is None:
            return
        save = self._save_cookie if self.store is None else self._save_to_store
        response.before_head(functools.partial(save, response, session))

    def _save_cookie(self, response: Response, session: Session) -> None:
        if not session.modified:
            return
        secure = response.request.scheme == 'https' if self.secure is None else self.secure
        if not session:
            if not session.new:
                response.headers.add('Set-Cookie', self._cookie('', secure, 0))
            session.modified = False
            return
        expires = time.time() + self.max_age
        value = self.signer.sign(b'{"d":%s,"e":%d}' % (self._serialize(session), int(expires)))
        self._set_cookie(response, value, secure)
        session.modified = session.regenerated = False

    async def _save_to_store(self, response: Response, session: Session) -> None:
        if not session.modified:
            return
        store = self.store
        assert store is not None
        secure = response.request.scheme == 'https' if self.secure is None else self.secure
        try:
            if not session:
                # Emptied: the client forgets it, and so does the store.
                if session.id is not None:
                    await store.delete(session.id)
                if not session.new:
                    response.headers.add('Set-Cookie', self._cookie('', secure, 0))
                session.modified = False
                return
            if session.id is None or session.regenerated:
                if session.id is not None:
                    await store.delete(session.id)
                session.id = secrets.token_urlsafe(32)
            try:
                await store.save(session.id, session.to_dict(), self.max_age)
            except (TypeError, ValueError) as exc:
                raise TypeError(f'session values must be JSON values (str, int, float, '
                                f'bool, None, list, dict): {exc}') from None
        except ConnectionError as exc:
            if isinstance(exc, ClientDisconnected):
                raise
            raise _unavailable(exc) from exc
        self._set_cookie(response, self.signer.sign(session.id.encode('ascii')), secure)
        session.modified = session.regenerated = False

    def _set_cookie(self, response: Response, value: str, secure: bool) -> None:
        header = self._cookie(value, secure, int(self.max_age) if self.persistent else None)
        if len(header) > COOKIE_LIMIT:
            raise ValueError(
                f'the session cookie would be {len(header)} bytes, over the {COOKIE_LIMIT} a '
                f'browser keeps: store less in the session, or keep sessions in a store '
                f'(Sessions(store=...))')
        response.headers.add('Set-Cookie', header)

    def _serialize(self, session: Session) -> bytes:
        try:
            return _encode(session.to_dict()).encode('utf-8')
        except (TypeError, ValueError) as exc:
            raise TypeError(f'session values must be JSON values (str, int, float, bool, '
                            f'None, list, dict): {exc}') from None

    def _cookie(self, value: str, secure: bool, max_age: Optional[int]) -> str:
        return format_set_cookie(
            self.cookie_name, value, max_age=max_age, expires=0 if max_age == 0 else None,
            path=self.path, domain=self.domain, secure=secure, httponly=self.httponly,
            samesite=self.samesite)

    def __repr__(self) -> str:
        where = 'cookie' if self.store is None else repr(self.store)
        return f'<Sessions {self.cookie_name} in {where}>'


def _unavailable(exc: ConnectionError) -> ServiceUnavailable:
    """What a store that cannot be reached becomes: 503 (the store logs its outage)."""
    logger.debug('the session store cannot be reached: %s', exc)
    return ServiceUnavailable('sessions are unavailable: retry later')
