"""The ASGI lifespan protocol: the application's startup and shutdown, once per worker.

The application runs in a task of its own for the whole life of the worker: it is told
``lifespan.startup`` before the worker accepts connections, and ``lifespan.shutdown`` after the
last connection closed. What it puts in ``scope['state']`` at startup is copied into the scope
of every request (ASGI lifespan state).

With the ``lifespan`` option at ``'auto'``, an application that raises before answering the
startup, or returns without answering it, does not speak the protocol: it is served without.
A ``lifespan.startup.failed`` always stops the worker, with the application's message.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Optional

from .errors import ASGIProtocolError, LifespanFailure

logger = logging.getLogger('tremolo')

#: ``scope['asgi']`` of the lifespan scope.
LIFESPAN_VERSIONS = {'version': '3.0', 'spec_version': '2.0'}

# How long an application has to return once it said its shutdown is complete.
_EXIT_GRACE = 1.0


class Lifespan:
    """The lifespan of one application in one worker.

    Args:
        app: The ASGI application.
        mode: The ``lifespan`` option: ``'auto'`` or ``'on'``.

    Attributes:
        state: The lifespan state, shared by the application's startup and copied into each
            request's scope.
        supported: The application completed its startup.
    """

    def __init__(self, app: Callable[..., Any], mode: str = 'auto') -> None:
        self.app = app
        self.mode = mode
        self.state: dict[str, Any] = {}
        self.supported = False
        self._events: Optional[asyncio.Queue[dict[str, Any]]] = None
        self._started: Optional[asyncio.Future[Optional[str]]] = None
        self._stopped: Optional[asyncio.Future[Optional[str]]] = None
        self._task: Optional[asyncio.Task[None]] = None
        self._error: Optional[BaseException] = None

    async def startup(self) -> None:
        """Tell the application to start; wait until it has.

        Raises:
            LifespanFailure: It reported a failure, or (with ``mode='on'``) it does not
                speak the lifespan protocol.
        """
        loop = asyncio.get_running_loop()
        self._events = asyncio.Queue()
        self._started = loop.create_future()
        self._stopped = loop.create_future()
        scope = {'type': 'lifespan', 'asgi': LIFESPAN_VERSIONS, 'state': self.state}
        self._task = loop.create_task(self._run(scope))
        self._events.put_nowait({'type': 'lifespan.startup'})
        await asyncio.wait((self._started, self._task), return_when=asyncio.FIRST_COMPLETED)
        if self._started.done():
            failure = self._started.result()
            if failure is not None:
                await self._end_task()
                raise LifespanFailure(failure)
            self.supported = True
            return
        # The application returned or raised without answering the startup.
        error = self._error
        if self.mode == 'on':
            raise LifespanFailure(repr(error) if error is not None
                                  else 'the application returned without completing it')
        if error is not None:
            logger.info('the ASGI application does not support the lifespan protocol '
                        '(it raised %r): served without it', error)
        else:
            logger.info('the ASGI application returned from its lifespan without starting: '
                        'served without it')

    async def shutdown(self) -> None:
        """Tell the application to stop; wait until it has (a failure is logged)."""
        task = self._task
        if not self.supported or task is None or self._events is None:
            return
        assert self._stopped is not None
        if not task.done():
            self._events.put_nowait({'type': 'lifespan.shutdown'})
            await asyncio.wait((self._stopped, task), return_when=asyncio.FIRST_COMPLETED)
        if self._stopped.done() and self._stopped.result() is not None:
            logger.error("the ASGI application's lifespan shutdown failed: %s",
                         self._stopped.result())
        elif not self._stopped.done():
            logger.error('the ASGI application ended its lifespan without completing its '
                         'shutdown')
        await self._end_task()

    async def _end_task(self) -> None:
        task = self._task
        if task is not None and not task.done():
            await asyncio.wait((task,), timeout=_EXIT_GRACE)
            if not task.done():
                task.cancel()
                await asyncio.wait((task,))

    async def _run(self, scope: dict[str, Any]) -> None:
        try:
            await self.app(scope, self.receive, self.send)
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            self._error = exc
            assert self._started is not None
            if self._started.done() and self._started.result() is None:
                logger.error('error in the ASGI application lifespan', exc_info=exc)
            elif self.mode == 'on' or self._started.done():
                logger.error('error in the ASGI application lifespan startup', exc_info=exc)

    async def receive(self) -> dict[str, Any]:
        assert self._events is not None
        return await self._events.get()

    async def send(self, message: dict[str, Any]) -> None:
        assert self._started is not None and self._stopped is not None
        kind = message.get('type') if isinstance(message, dict) else None
        if kind in ('lifespan.startup.complete', 'lifespan.startup.failed'):
            if self._started.done():
                raise ASGIProtocolError(f'{kind} sent twice')
            self._started.set_result(None if kind == 'lifespan.startup.complete'
                                     else str(message.get('message', '')))
        elif kind in ('lifespan.shutdown.complete', 'lifespan.shutdown.failed'):
            if not self._started.done() or self._stopped.done():
                raise ASGIProtocolError(f'{kind} sent out of order')
            self._stopped.set_result(None if kind == 'lifespan.shutdown.complete'
                                     else str(message.get('message', '')))
        else:
            raise ASGIProtocolError(f'unexpected ASGI message {message!r} in a lifespan scope')
