"""Broadcast: in one worker, across the workers of a server, and across hosts through a real
Redis; the chat and notification examples on several workers and hosts."""

from __future__ import annotations

import asyncio
import os

import aiohttp
import pytest
from tremolo.extensions.broadcast import Broadcast, SlowSubscriber
from tremolo.extensions.redis import Redis, StoreUnavailable

from tests.apps.harness import child_env, children_of
from tests.apps.redis_server import needs_redis


async def test_publish_reaches_the_subscribers_of_its_channel():
    broadcast = Broadcast()
    async with broadcast.subscribe('news') as news, broadcast.subscribe('news') as again, \
            broadcast.subscribe('other') as other:
        await broadcast.publish('news', 'hello')
        await broadcast.publish('news', b'\x00bytes')
        assert [await news.__anext__(), await news.__anext__()] == ['hello', b'\x00bytes']
        assert await again.__anext__() == 'hello'
        assert not other.queue
        assert broadcast.subscribers('news') == 2
    assert broadcast.subscribers('news') == 0
    await broadcast.close()


async def test_misuse_is_refused():
    broadcast = Broadcast()
    with pytest.raises(TypeError, match='str or bytes, not dict'):
        await broadcast.publish('news', {'a': 1})
    with pytest.raises(TypeError, match='non-empty string'):
        broadcast.subscribe('')
    with pytest.raises(ValueError, match='queue_size'):
        Broadcast(queue_size=0)
    with pytest.raises(ValueError, match='overflow must be one of drop-oldest, disconnect'):
        broadcast.subscribe('news', overflow='block')
    with pytest.raises(TypeError, match='store must be a tremolo.extensions.redis.Redis'):
        Broadcast(store=object())
    await broadcast.close()


async def test_a_slow_subscriber_loses_its_oldest_messages_or_is_disconnected():
    broadcast = Broadcast(queue_size=3)
    async with broadcast.subscribe('n') as dropping, \
            broadcast.subscribe('n', overflow='disconnect') as strict:
        for n in range(5):
            await broadcast.publish('n', str(n))
        assert [await dropping.__anext__() for _ in range(3)] == ['2', '3', '4']
        assert dropping.dropped == 2
        with pytest.raises(SlowSubscriber, match='fell 3 messages behind'):
            await strict.__anext__()
    await broadcast.close()


async def test_an_ended_subscription_stops_its_iteration():
    broadcast = Broadcast()
    async with broadcast.subscribe('n') as messages:
        waiting = asyncio.ensure_future(messages.__anext__())
        await asyncio.sleep(0)
        await broadcast.close()
        with pytest.raises(StopAsyncIteration):
            await waiting


# -- real servers -------------------------------------------------------------------------------

def socket_count(pid: int) -> int:
    fds = f'/proc/{pid}/fd'
    count = 0
    for name in os.listdir(fds):
        try:
            count += os.readlink(os.path.join(fds, name)).startswith('socket:')
        except OSError:
            pass
    return count


async def chat_members(session, url: str, workers: list[int], names) -> list:
    """WebSocket members of the chat at ``url`` until every worker in ``workers`` serves at
    least one of them (the kernel spreads the connections by a hash)."""
    before = {pid: socket_count(pid) for pid in workers}
    members = []
    for name in names:
        member = await session.ws_connect(f'{url}/chat?name={name}')
        members.append(member)
        assert (await member.receive(timeout=5)).data == f'{name} joined'
        if len(members) >= 2 and all(socket_count(pid) > before[pid] for pid in workers):
            return members
    raise AssertionError('the connections all went to one worker')


@pytest.mark.slow
async def test_the_chat_example_spans_two_workers(procs):
    server = procs.cli('examples.websocket_chat:app', '--port', '0', '--worker-num', '2')
    url = (await server.url('')).replace('http://', 'ws://').rstrip('/')
    await server.serving(count=2)
    workers = children_of(server.pid)
    assert len(workers) == 2
    async with aiohttp.ClientSession() as session:
        members = await chat_members(session, url, workers, (f'm{n}' for n in range(24)))
        await members[0].send_str('hello everyone')
        for member in members:
            message = (await member.receive(timeout=5)).data
            while message.endswith(' joined'):  # those who joined after this member
                message = (await member.receive(timeout=5)).data
            assert message == 'm0: hello everyone'
        for member in members:
            await member.close()


@pytest.mark.slow
@needs_redis
async def test_the_chat_example_spans_two_hosts_sharing_redis(procs, redis_server):
    env = child_env(REDIS_URL=redis_server.url)
    hosts = [procs.cli('examples.websocket_chat:app', '--port', '0', '--worker-num', '2',
                       env=env) for _ in range(2)]
    urls = [(await host.url('')).replace('http://', 'ws://').rstrip('/') for host in hosts]
    async with aiohttp.ClientSession() as session:
        ann = await session.ws_connect(urls[0] + '/chat?name=ann')
        assert (await ann.receive(timeout=5)).data == 'ann joined'
        bob = await session.ws_connect(urls[1] + '/chat?name=bob')
        assert (await bob.receive(timeout=5)).data == 'bob joined'
        assert (await ann.receive(timeout=5)).data == 'bob joined'
        await bob.send_str('hi from the other host')
        assert (await ann.receive(timeout=5)).data == 'bob: hi from the other host'
        assert (await bob.receive(timeout=5)).data == 'bob: hi from the other host'
        await bob.close()
        assert (await ann.receive(timeout=5)).data == 'bob left'
        await ann.close()


@pytest.mark.slow
async def test_the_notifications_example_spans_two_workers(procs):
    server = procs.cli('examples.sse_notifications:app', '--port', '0', '--worker-num', '2')
    url = (await server.url('')).rstrip('/')
    await server.serving(count=2)
    workers = children_of(server.pid)
    async with aiohttp.ClientSession() as session:
        before = {pid: socket_count(pid) for pid in workers}
        streams = []
        for _ in range(24):
            stream = aiohttp.ClientSession()
            response = await stream.get(url + '/events')
            assert await response.content.readline() == b'retry: 3000\n'
            await response.content.readline()
            streams.append((stream, response))
            if len(streams) >= 2 and all(socket_count(pid) > before[pid] for pid in workers):
                break
        else:
            raise AssertionError('the connections all went to one worker')
        try:
            async with session.post(url + '/notify', json='to all') as published:
                event_id = (await published.json())['id']
            for _, response in streams:
                lines = [await response.content.readline() for _ in range(4)]
                assert lines == [b'event: notification\n', f'id: {event_id}\n'.encode(),
                                 b'data: to all\n', b'\n']
        finally:
            for stream, response in streams:
                response.close()
                await stream.close()


@pytest.mark.slow
@needs_redis
async def test_subscribers_resume_after_redis_restarts(procs, redis_server):
    hosts = [procs.cli('tests.apps.shared:app', '--port', '0',
                       env=child_env(REDIS_URL=redis_server.url)) for _ in range(2)]
    urls = [(await host.url('')).rstrip('/') for host in hosts]
    async with aiohttp.ClientSession() as session:
        listener = await session.ws_connect(urls[0].replace('http', 'ws') + '/subscribe/news')
        assert (await listener.receive(timeout=5)).data == 'subscribed'
        async with session.post(urls[1] + '/publish/news', data=b'before') as response:
            assert response.status == 200
        assert (await listener.receive(timeout=5)).data == 'before'
        redis_server.stop()
        async with session.post(urls[1] + '/publish/news', data=b'lost') as response:
            assert response.status == 500  # publish raised StoreUnavailable, at once
        redis_server.start()
        await hosts[0].wait_for('answers again', timeout=10)
        for _ in range(50):  # until the subscriber's worker has subscribed again
            async with session.post(urls[1] + '/publish/news', data=b'after') as response:
                if response.status == 200:
                    try:
                        message = await listener.receive(timeout=0.3)
                    except asyncio.TimeoutError:
                        continue
                    assert message.data == 'after'
                    break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError('the subscriber did not resume')
        await listener.close()


@needs_redis
async def test_publish_fails_at_once_while_redis_is_down(redis_server):
    redis = Redis(redis_server.url, retry_interval=10)
    await redis.start()
    broadcast = Broadcast(store=redis)
    async with broadcast.subscribe('news') as news:
        await broadcast.publish('news', 'one')
        assert await asyncio.wait_for(news.__anext__(), 5) == 'one'
        redis_server.stop()
        with pytest.raises(StoreUnavailable):
            await broadcast.publish('news', 'two')
    await broadcast.close()
    await redis.close()
