"""Broadcast: publish a message on a channel, and every subscriber of that channel receives it,
in every worker of the server, or on every host with a Redis store.

```python
from tremolo import Tremolo
from tremolo.extensions.broadcast import Broadcast

app = Tremolo()
app.install(Broadcast())            # across the workers of this server
# app.install(Broadcast(store=redis))  # across every host that shares the Redis

@app.route('/events')
async def events(sse, broadcast):
    async with broadcast.subscribe('news') as messages:
        async for message in messages:
            await sse.send(message)
```

**Without a store**, the workers of one server reach each other through UNIX sockets in a
private directory (mode 0700) that the extension creates when it is made, in the process that
forks the workers: each worker listens on a socket named after its process id, and a message
is written once to every other worker, which hands it to its own subscribers. A worker that
died leaves a socket nobody listens on: it is removed at the first refused connection. With
one worker, nothing leaves the process.

**With a Redis store** (`tremolo.extensions.redis.Redis`), a channel is a Redis pub/sub channel
(``{prefix}broadcast:{channel}``): each worker holds one subscribing connection for all its
subscribers, subscribed to the channels that have at least one. When Redis is lost, the
subscribers stay subscribed and wait; the worker subscribes again when Redis answers, and the
messages published meanwhile are lost (pub/sub keeps nothing). `publish` raises
`tremolo.extensions.redis.StoreUnavailable` (a ``ConnectionError``) at once while Redis is
down.

**Slow subscribers.** Each subscription holds at most ``queue_size`` messages not read yet.
When a message arrives for a full one, ``overflow`` decides: ``'drop-oldest'`` (the default)
forgets its oldest message and counts it in ``Subscription.dropped``; ``'disconnect'`` ends
the subscription at once (the messages it held are dropped): its iteration raises
`SlowSubscriber`. Memory never grows with a
subscriber that does not keep up, and it never delays the others.

Messages are ``str`` or ``bytes`` and arrive as they were published. The messages of one
publisher arrive in the order it published them.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import logging
import os
import shutil
import struct
import tempfile
from collections import deque
from typing import Any, Optional, Union

from tremolo import Extension, Tremolo

__all__ = ['Broadcast', 'SlowSubscriber', 'Subscription']

logger = logging.getLogger('tremolo.broadcast')

Message = Union[str, bytes]

OVERFLOWS = ('drop-oldest', 'disconnect')

#: A message on the wire between workers: its length, the length of its channel, the channel,
#: then the payload (a kind byte, ``s`` or ``b``, and the message).
_FRAME = struct.Struct('!IH')
#: Bytes held for a worker that does not read before a publisher waits for it.
_PEER_BUFFER = 8 * 1024 * 1024
#: Seconds a publisher waits for such a worker before it drops the connection to it.
_PEER_TIMEOUT = 5.0


class SlowSubscriber(Exception):
    """The subscription fell ``queue_size`` messages behind with ``overflow='disconnect'``."""


def _encode(message: Message) -> bytes:
    if isinstance(message, str):
        return b's' + message.encode('utf-8')
    return b'b' + bytes(message)


def _decode(payload: bytes) -> Message:
    if payload[:1] == b's':
        return payload[1:].decode('utf-8')
    return payload[1:]


class Subscription:
    """The messages of one channel for one subscriber: an async iterator, used inside
    ``async with broadcast.subscribe(channel) as messages``.

    Attributes:
        channel: The channel.
        dropped: Messages forgotten because the subscriber was ``queue_size`` behind.
    """

    __slots__ = ('broadcast', 'channel', 'queue', 'queue_size', 'overflow', 'dropped',
                 'waiter', 'closed', 'overflowed')

    def __init__(self, broadcast: Broadcast, channel: str, queue_size: int,
                 overflow: str) -> None:
        self.broadcast = broadcast
        self.channel = channel
        self.queue: deque[Message] = deque()
        self.queue_size = queue_size
        self.overflow = overflow
        self.dropped = 0
        self.waiter: Optional[asyncio.Future[None]] = None
        self.closed = False
        self.overflowed = False

    async def __aenter__(self) -> Subscription:
        await self.broadcast.add_subscriber(self)
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop receiving (the iteration ends once the messages held are read)."""
        if not self.closed:
            self.closed = True
            self.broadcast.remove_subscriber(self)
            self._wake()

    def put(self, message: Message) -> None:
        """Hold a message for the subscriber (called by the broadcast)."""
        if self.closed:
            return
        if len(self.queue) >= self.queue_size:
            if self.overflow == 'disconnect':
                self.overflowed = True
                self.queue.clear()
                self.close()
                return
            self.queue.popleft()
            self.dropped += 1
        self.queue.append(message)
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message:
        while not self.queue:
            if self.overflowed:
                raise SlowSubscriber(f'subscriber of {self.channel!r} fell {self.queue_size} '
                                     'messages behind')
            if self.closed:
                raise StopAsyncIteration
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        return self.queue.popleft()

    def __repr__(self) -> str:
        return f'<Subscription {self.channel!r} held={len(self.queue)} dropped={self.dropped}>'


class Broadcast(Extension):
    """Publish and subscribe across the workers of a server, or across hosts with a store.

    Installed, it is injected as ``broadcast`` (and it is the object itself: keep a reference
    and use it from anywhere in the worker).

    Args:
        store: ``None`` for the workers of this server, or a
            `tremolo.extensions.redis.Redis` for every host that shares it.
        queue_size: The most messages a subscription holds unread (per subscription; a
            `subscribe` call may choose its own).
        overflow: What a full subscription does with a new message: ``'drop-oldest'`` or
            ``'disconnect'`` (see the module).

    Raises:
        ValueError: A ``queue_size`` below 1, or an unknown ``overflow``.
        TypeError: A ``store`` that is not a Redis store.
    """

    name = 'broadcast'

    def __init__(self, store: Any = None, *, queue_size: int = 1000,
                 overflow: str = 'drop-oldest') -> None:
        _check_queue(queue_size, overflow)
        self.store = store
        self.queue_size = queue_size
        self.overflow = overflow
        self.channels: dict[str, set[Subscription]] = {}
        self.backend: Union[WorkerHub, RedisPubSub]
        if store is None:
            self.backend = WorkerHub(self)
        elif callable(getattr(store, 'run', None)) and callable(getattr(store, 'key', None)):
            self.backend = RedisPubSub(self, store)
        else:
            raise TypeError(f'store must be a tremolo.extensions.redis.Redis, not {store!r}')

    def setup(self, app: Tremolo) -> None:
        """Start in each worker and provide ``broadcast``."""
        app.on_worker_start(self.start)
        app.provide('broadcast')(self.provide)

    def provide(self) -> Broadcast:
        return self

    async def start(self) -> None:
        """Start this worker's side (it is started on first use too)."""
        await self.backend.start()

    async def close(self) -> None:
        """Stop this worker's side: its subscriptions end."""
        for subscribers in list(self.channels.values()):
            for subscription in list(subscribers):
                subscription.close()
        await self.backend.stop()

    async def publish(self, channel: str, message: Message) -> None:
        """Send ``message`` to every subscriber of ``channel``, everywhere.

        Raises:
            TypeError: A channel that is not a non-empty string, or a message that is neither
                ``str`` nor ``bytes``.
            tremolo.extensions.redis.StoreUnavailable: With a Redis store that cannot be
                reached.
        """
        _check_channel(channel)
        if not isinstance(message, (str, bytes, bytearray, memoryview)):
            raise TypeError(f'a broadcast message is str or bytes, not {type(message).__name__}')
        await self.backend.publish(channel, _encode(message))

    def subscribe(self, channel: str, *, queue_size: Optional[int] = None,
                  overflow: Optional[str] = None) -> Subscription:
        """The messages published on ``channel`` from now on (use it with ``async with``).

        Raises:
            TypeError: A channel that is not a non-empty string.
            ValueError: A bad ``queue_size`` or ``overflow``.
        """
        _check_channel(channel)
        size = self.queue_size if queue_size is None else queue_size
        policy = self.overflow if overflow is None else overflow
        _check_queue(size, policy)
        return Subscription(self, channel, size, policy)

    def subscribers(self, channel: str) -> int:
        """How many subscriptions this worker has on ``channel``."""
        return len(self.channels.get(channel, ()))

    # -- what the backends and subscriptions call ---------------------------------------------

    async def add_subscriber(self, subscription: Subscription) -> None:
        await self.backend.start()
        subscribers = self.channels.get(subscription.channel)
        if subscribers is None:
            subscribers = self.channels[subscription.channel] = set()
            subscribers.add(subscription)
            await self.backend.listen(subscription.channel)
        else:
            subscribers.add(subscription)

    def remove_subscriber(self, subscription: Subscription) -> None:
        subscribers = self.channels.get(subscription.channel)
        if subscribers is None:
            return
        subscribers.discard(subscription)
        if not subscribers:
            del self.channels[subscription.channel]
            self.backend.unlisten(subscription.channel)

    def deliver(self, channel: str, payload: bytes) -> None:
        """Hand a message that arrived on ``channel`` to this worker's subscribers."""
        subscribers = self.channels.get(channel)
        if not subscribers:
            return
        message = _decode(payload)
        for subscription in list(subscribers):
            subscription.put(message)

    def __repr__(self) -> str:
        return f'<Broadcast {self.backend!r}>'


def _check_channel(channel: object) -> None:
    if not isinstance(channel, str) or not channel:
        raise TypeError(f'a broadcast channel is a non-empty string, not {channel!r}')


def _check_queue(queue_size: object, overflow: object) -> None:
    if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
        raise ValueError(f'queue_size must be an integer of at least 1, not {queue_size!r}')
    if overflow not in OVERFLOWS:
        raise ValueError(f'overflow must be one of {", ".join(OVERFLOWS)}, not {overflow!r}')


# -- the workers of one server ----------------------------------------------------------------

class WorkerHub:
    """Messages between the workers of one server, over UNIX sockets in a private directory
    made before the workers are forked."""

    def __init__(self, broadcast: Broadcast) -> None:
        self.broadcast = broadcast
        self.directory = tempfile.mkdtemp(prefix='tremolo-broadcast-')
        owner = os.getpid()
        # The process that made the directory removes it when it exits (not the workers).
        atexit.register(_remove_directory, self.directory, owner)
        self.path: Optional[str] = None
        self.pid = 0
        self.server: Optional[asyncio.AbstractServer] = None
        self.peers: dict[str, asyncio.StreamWriter] = {}
        self.listing: tuple[int, list[str]] = (-1, [])
        self.readers: set[asyncio.StreamWriter] = set()
        self.starting: Optional[asyncio.Future[None]] = None

    async def start(self) -> None:
        if self.server is not None and self.pid == os.getpid():
            return
        if self.starting is not None and self.pid == os.getpid():
            await asyncio.shield(self.starting)
            return
        self.pid = os.getpid()
        self.peers = {}
        self.starting = asyncio.get_running_loop().create_future()
        try:
            path = os.path.join(self.directory, f'{self.pid}.sock')
            self.server = await asyncio.start_unix_server(self._serve, path)
            self.path = path
        finally:
            self.starting.set_result(None)
            self.starting = None

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.close()
        for writer in self.peers.values():
            writer.close()
        self.peers.clear()
        for reader in list(self.readers):
            reader.close()  # its task ends at once, like a worker that went away
        if server is not None:
            await server.wait_closed()
        if self.path is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self.path = None

    async def listen(self, channel: str) -> None:
        pass  # every worker receives every message

    def unlisten(self, channel: str) -> None:
        pass

    async def publish(self, channel: str, payload: bytes) -> None:
        self.broadcast.deliver(channel, payload)
        if self.server is None:
            await self.start()
        name = channel.encode('utf-8')
        frame = _FRAME.pack(2 + len(name) + len(payload), len(name)) + name + payload
        for path in self._peer_paths():
            writer = self.peers.get(path)
            if writer is None or writer.is_closing():
                writer = await self._connect(path)
                if writer is None:
                    continue
            writer.write(frame)
            transport = writer.transport
            if transport.get_write_buffer_size() > _PEER_BUFFER:
                try:
                    await asyncio.wait_for(writer.drain(), _PEER_TIMEOUT)
                except (asyncio.TimeoutError, ConnectionError):
                    logger.warning('broadcast: the worker at %s does not read its messages: '
                                   'its connection is dropped', path)
                    writer.close()
                    self.peers.pop(path, None)

    def _peer_paths(self) -> list[str]:
        """The sockets of the other workers (listed again when the directory changes)."""
        try:
            changed = os.stat(self.directory).st_mtime_ns
        except FileNotFoundError:
            return []
        if changed != self.listing[0]:
            paths = [os.path.join(self.directory, name) for name in os.listdir(self.directory)
                     if name.endswith('.sock')]
            self.listing = (changed, [path for path in paths if path != self.path])
        return self.listing[1]

    async def _connect(self, path: str) -> Optional[asyncio.StreamWriter]:
        try:
            _, writer = await asyncio.open_unix_connection(path)
        except (ConnectionRefusedError, FileNotFoundError):
            # The worker that listened there is gone: nobody will again.
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            return None
        except OSError as exc:
            logger.warning('broadcast: cannot reach the worker at %s: %s', path, exc)
            return None
        self.peers[path] = writer
        return writer

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.readers.add(writer)
        deliver = self.broadcast.deliver
        try:
            while True:
                head = await reader.readexactly(_FRAME.size)
                length, name_length = _FRAME.unpack(head)
                body = await reader.readexactly(length - 2)
                deliver(body[:name_length].decode('utf-8'), body[name_length:])
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.readers.discard(writer)
            writer.close()

    def __repr__(self) -> str:
        return f'<WorkerHub {self.directory}>'


def _remove_directory(directory: str, owner: int) -> None:
    if os.getpid() == owner:
        shutil.rmtree(directory, ignore_errors=True)


# -- every host, through Redis ----------------------------------------------------------------

class RedisPubSub:
    """Messages between hosts through Redis pub/sub: one subscribing connection per worker."""

    def __init__(self, broadcast: Broadcast, redis: Any) -> None:
        self.broadcast = broadcast
        self.redis = redis
        self.task: Optional[asyncio.Task[None]] = None
        self.pubsub: Any = None
        self.confirmations: dict[str, asyncio.Future[None]] = {}
        self.wanted: Optional[asyncio.Event] = None
        self.pid = 0
        redis.on_recovered(self._recovered)

    def _key(self, channel: str) -> str:
        key: str = self.redis.key('broadcast', channel)
        return key

    async def start(self) -> None:
        if self.task is not None and self.pid == os.getpid():
            return
        self.pid = os.getpid()
        self.pubsub = None
        self.wanted = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._receive())

    async def stop(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    def _recovered(self) -> None:
        if self.wanted is not None:
            self.wanted.set()

    async def listen(self, channel: str) -> None:
        assert self.wanted is not None
        self.wanted.set()
        confirmed = self.confirmations[channel] = asyncio.get_running_loop().create_future()
        pubsub = self.pubsub
        try:
            if pubsub is not None:
                await self.redis.run(lambda client: pubsub.subscribe(self._key(channel)))
            # Subscribed once Redis says so: a message published after this returns arrives.
            await asyncio.wait_for(asyncio.shield(confirmed), self.redis.timeout)
        except (ConnectionError, asyncio.TimeoutError):
            pass  # the receiving task subscribes once Redis answers
        finally:
            if self.confirmations.get(channel) is confirmed:
                del self.confirmations[channel]

    def unlisten(self, channel: str) -> None:
        pubsub = self.pubsub
        if pubsub is not None:
            task = asyncio.get_running_loop().create_task(self._unsubscribe(pubsub, channel))
            task.add_done_callback(_ignore_result)

    async def _unsubscribe(self, pubsub: Any, channel: str) -> None:
        if channel not in self.broadcast.channels:
            await self.redis.run(lambda client: pubsub.unsubscribe(self._key(channel)))

    async def publish(self, channel: str, payload: bytes) -> None:
        key = self._key(channel)
        await self.redis.run(lambda client: client.publish(key, payload))

    async def _receive(self) -> None:
        assert self.wanted is not None
        prefix = len(self._key(''))
        deliver = self.broadcast.deliver
        while True:
            if not self.broadcast.channels:
                self.wanted.clear()
                await self.wanted.wait()
                continue
            pubsub = None
            try:
                channels = list(self.broadcast.channels)
                keys = [self._key(channel) for channel in channels]
                pubsub = await self.redis.run(functools.partial(_subscribed, keys))
                self.pubsub = pubsub
                added = [self._key(channel) for channel in self.broadcast.channels
                         if channel not in channels]
                if added:  # subscribed to while connecting
                    await self.redis.run(functools.partial(_subscribe, pubsub, added))
                read = functools.partial(_read, pubsub)
                while self.broadcast.channels:
                    message = await self.redis.run(read)
                    if message is None:
                        continue
                    kind = message['type']
                    channel = message['channel'].decode('utf-8')[prefix:]
                    if kind == 'message':
                        deliver(channel, message['data'])
                    elif kind == 'subscribe':
                        confirmed = self.confirmations.get(channel)
                        if confirmed is not None and not confirmed.done():
                            confirmed.set_result(None)
            except Exception as exc:
                if not isinstance(exc, ConnectionError):
                    logger.exception('broadcast: receiving from Redis failed')
                # Redis is down (logged once by the store): wait until it answers again.
                self.wanted.clear()
                try:
                    await asyncio.wait_for(self.wanted.wait(), self.redis.retry_interval * 2)
                except asyncio.TimeoutError:
                    pass
            finally:
                self.pubsub = None
                if pubsub is not None:
                    try:
                        await pubsub.aclose()
                    except Exception:
                        pass

    def __repr__(self) -> str:
        return f'<RedisPubSub {self.redis!r}>'


async def _subscribed(keys: list[str], client: Any) -> Any:
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(*keys)
    except BaseException:  # failed or cancelled: nobody else can close its connection
        await asyncio.shield(pubsub.aclose())
        raise
    return pubsub


async def _subscribe(pubsub: Any, keys: list[str], client: Any) -> None:
    await pubsub.subscribe(*keys)


async def _read(pubsub: Any, client: Any) -> Any:
    return await pubsub.get_message(timeout=1.0)


def _ignore_result(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
