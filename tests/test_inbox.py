"""The bounded buffer between a connection and one reader (tremolo.inbox)."""

from __future__ import annotations

import asyncio

import pytest

from tremolo.inbox import Inbox


class Control:
    """Records what the inbox asks of its connection."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause_reading(self) -> None:
        self.calls.append('pause')

    def resume_reading(self) -> None:
        self.calls.append('resume')


async def test_reading_pauses_at_the_high_water_mark_and_resumes_below_it():
    control = Control()
    inbox: Inbox[bytes] = Inbox(control, asyncio.get_running_loop(), 10)
    inbox.put(b'12345', 5)
    inbox.put(b'6789', 4)
    assert control.calls == [] and inbox.size == 9
    inbox.put(b'0', 1)
    inbox.put(b'ab', 2)  # paused once, however much more comes
    assert control.calls == ['pause'] and inbox.size == 12
    assert inbox.take(5) == b'12345'  # 7 left: below the mark
    assert control.calls == ['pause', 'resume']
    assert inbox.take_all() == [b'6789', b'0', b'ab'] and inbox.size == 0
    assert control.calls == ['pause', 'resume']


async def test_the_reader_waits_until_something_comes():
    inbox: Inbox[str] = Inbox(Control(), asyncio.get_running_loop(), 100)
    loop = asyncio.get_running_loop()
    loop.call_later(0.01, inbox.put, 'hello', 5)
    await inbox.wait()
    assert list(inbox.items) == ['hello'] and not inbox.waiting
    loop.call_later(0.01, inbox.end)
    await inbox.wait()
    assert inbox.ended


async def test_one_reader_at_a_time():
    inbox: Inbox[bytes] = Inbox(Control(), asyncio.get_running_loop(), 100)
    first = asyncio.ensure_future(inbox.wait())
    await asyncio.sleep(0)
    assert inbox.waiting
    with pytest.raises(RuntimeError, match='already reading'):
        await inbox.wait()
    inbox.wake()
    await first


async def test_a_wait_times_out_with_the_owners_error():
    inbox: Inbox[bytes] = Inbox(Control(), asyncio.get_running_loop(), 100)
    with pytest.raises(TimeoutError, match='too quiet'):
        await inbox.wait(0.01, lambda: TimeoutError('too quiet'))
    assert not inbox.waiting
    with pytest.raises(asyncio.TimeoutError):
        await inbox.wait(0.01)


async def test_a_cancelled_reader_leaves_no_waiter():
    inbox: Inbox[bytes] = Inbox(Control(), asyncio.get_running_loop(), 100)
    reader = asyncio.ensure_future(inbox.wait())
    await asyncio.sleep(0)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert not inbox.waiting
    inbox.put(b'x', 1)  # nobody to wake: no error
