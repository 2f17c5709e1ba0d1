"""What a handler's result becomes on the wire.

=================================  ==========================================================
Result                             Response
=================================  ==========================================================
``bytes`` / ``bytearray``          the body, sent whole with ``Content-Length``
``str``                            the body encoded as UTF-8
``(str, encoding)``                the body in that encoding; a ``charset=utf-8`` in the
                                   Content-Type is changed to match
``dict`` / ``list``                JSON (``application/json`` unless the route sets
                                   ``content_type``)
``None``                           an empty body, or the end of what was streamed with
                                   ``response.write()``
async generator                    streamed: each yielded ``bytes``/``str`` is sent as it comes
sync generator                     streamed, each item produced in the thread pool
anything else                      a ``TypeError`` logged with the handler's name, and a 500
=================================  ==========================================================
"""

from __future__ import annotations

import asyncio
import inspect
import json
from concurrent.futures import Executor
from typing import Any, Optional

from ..response import Response

JSON_TYPE = 'application/json'
# One encoder for every response: json.dumps() with options builds a new one per call.
_encode_json = json.JSONEncoder(separators=(',', ':'), ensure_ascii=False).encode
_DONE = object()


async def send_result(
    result: Any, response: Response, json_content_type: bool, where: str,
    loop: Optional[asyncio.AbstractEventLoop] = None, executor: Optional[Executor] = None,
) -> None:
    """Send ``result`` as the response (see the module table).

    Args:
        result: What the handler returned.
        response: The response to finish.
        json_content_type: Whether JSON results switch the Content-Type to JSON (the route did
            not set one).
        where: Names the handler, for error messages.
        loop: The event loop, for sync generators.
        executor: Where sync generators run (the loop's default executor if ``None``).

    Raises:
        TypeError: A result of no supported type.
    """
    kind = type(result)
    if kind is bytes:
        body = result
    elif kind is str:
        body = result.encode()
    elif result is None:
        if response.headers_sent:
            await response.end()
            return
        body = b''
    elif kind is tuple:
        body = _encode_pair(result, response, where)
    elif isinstance(result, (dict, list)):
        body = _encode_json(result).encode()
        if json_content_type:
            response.content_type = JSON_TYPE
    elif inspect.isasyncgen(result):
        await stream_async(result, response)
        return
    elif inspect.isgenerator(result):
        await stream_sync(result, response, loop or asyncio.get_running_loop(), executor)
        return
    elif isinstance(result, (bytes, bytearray, memoryview)):
        body = bytes(result)
    elif isinstance(result, str):
        body = str(result).encode()
    else:
        raise TypeError(
            f'{where} returned {kind.__name__}; return bytes, str, (str, encoding), dict, '
            f'list or None, or yield bytes/str'
        )
    if response.headers_sent:
        if body:
            await response.write(body)
        await response.end()
    elif not response.filters:
        if response.before_send is not None:
            # The on_response hooks, run here rather than through `Response.send`: when none
            # has to wait, the body goes out without a coroutine.
            response.body_length = len(body)
            pending = response.prepare_head()
            while pending is not None:
                await pending
                pending = response.prepare_head()
            if response.filters:  # a hook added one (compression): the body goes through it
                await response.send(body)
                return
        response.send_whole(body)
    else:
        await response.send(body)


def _encode_pair(result: tuple[Any, ...], response: Response, where: str) -> bytes:
    if len(result) != 2 or not isinstance(result[0], str) or not isinstance(result[1], str):
        raise TypeError(f'{where} returned a tuple; only (str, encoding) is supported')
    text, encoding = result
    try:
        body: bytes = text.encode(encoding)
    except LookupError as exc:
        raise TypeError(f'{where} returned an unknown encoding {encoding!r}') from exc
    content_type = response.content_type
    if 'charset=utf-8' in content_type.lower() and encoding.lower().replace('_', '-') not in (
        'utf-8', 'utf8'
    ):
        start = content_type.lower().index('charset=utf-8')
        response.content_type = (
            content_type[:start] + 'charset=' + encoding + content_type[start + 13:]
        )
    return body


def _chunk(item: Any) -> bytes:
    if type(item) is bytes:
        return item
    if isinstance(item, str):
        return item.encode()
    if isinstance(item, (bytearray, memoryview)):
        return bytes(item)
    if item is None:
        return b''
    raise TypeError(f'a streaming handler yielded {type(item).__name__}; yield bytes or str')


async def stream_async(generator: Any, response: Response) -> None:
    """Send each item of an async generator as soon as it is produced."""
    steady = False  # the head is out and nothing filters: pieces are queued without waiting
    try:
        async for item in generator:
            data = item if type(item) is bytes else _chunk(item)
            if not data:
                continue
            if steady:
                # The steady state of a stream: queue the piece, wait only for a slow client.
                if response.write_nowait(data):
                    await response.drain()
                continue
            await response.write(data)
            if response.omits_body:
                break  # HEAD (or a status without content): the head is out, that is all
            steady = not response.filters
    finally:
        await generator.aclose()
    await response.end()


async def stream_sync(generator: Any, response: Response, loop: asyncio.AbstractEventLoop,
                      executor: Optional[Executor] = None) -> None:
    """Send each item of a sync generator, each one produced in ``executor`` (a thread pool)."""
    try:
        while True:
            item = await loop.run_in_executor(executor, next, generator, _DONE)
            if item is _DONE:
                break
            data = _chunk(item)
            if data:
                await response.write(data)
                if response.omits_body:
                    break
    finally:
        await loop.run_in_executor(executor, generator.close)
    await response.end()
