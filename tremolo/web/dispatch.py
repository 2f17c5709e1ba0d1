"""One request through the application: route, middleware, handler, result, errors.

`Runtime` is what the server calls: the native framework's `tremolo.types.Dispatcher`,
built from a `CompiledApp` once per worker.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Awaitable, Optional

from ..exceptions import ClientDisconnected, HTTPException, InternalServerError
from ..telemetry import Telemetry
from .blocking import BlockingWatch
from .context import Context, Globals
from .injection import ASYNC, ASYNC_GEN, SYNC, SYNC_GEN, Plan
from .results import send_result

if TYPE_CHECKING:
    from ..connection import Connection
    from ..request import Request
    from ..response import Response
    from .compiled import CompiledApp, Endpoint

logger = logging.getLogger('tremolo')


#: In the *scope* of a request (a dict of the provider values computed for it, by provider:
#: one allocation per request that uses providers), the list of the generator providers to
#: finish once the response is sent.
CLEANUPS = object()


class Runtime:
    """The application running in one worker (one event loop)."""

    def __init__(self, compiled: CompiledApp, loop: asyncio.AbstractEventLoop) -> None:
        self.compiled = compiled
        self.app = compiled.app
        self.loop = loop
        self.debug = compiled.options.debug
        #: Debug mode reports the functions that block the event loop.
        self.watch = BlockingWatch() if self.debug else None
        self.globals = Globals()
        #: What the server tells about this worker (it finds it here: see `Dispatcher`).
        self.telemetry = Telemetry()
        self.base: dict[str, Any] = {
            'app': self.app, 'globals': self.globals, 'loop': loop, 'logger': logger,
            'telemetry': self.telemetry,
            'websocket': None,  # the handlers that take it get it per request
        }
        #: What worker hooks and extension closers are given: the server's options too.
        self.worker_values = {**self.base, 'options': compiled.options}
        self._connect = compiled.on_connect
        self._close = compiled.on_close
        #: Where sync handlers run (its threads start when first needed).
        self.executor = ThreadPoolExecutor(compiled.options.thread_pool_size,
                                           thread_name_prefix='tremolo')

    # -- worker lifecycle -----------------------------------------------------------------------

    async def startup(self) -> None:
        """Run the ``on_worker_start`` hooks."""
        for plan in self.compiled.on_worker_start:
            await self._call_simple(plan, self.worker_values)

    async def shutdown(self) -> None:
        """Run the ``on_worker_stop`` hooks, then close the extensions in reverse order.

        Every hook runs even if one fails; failures are logged.
        """
        for plan in self.compiled.on_worker_stop:
            try:
                await self._call_simple(plan, self.worker_values)
            except Exception:
                logger.exception('on_worker_stop hook %s failed', plan.name)
        for plan in self.compiled.extension_closers:
            try:
                await self._call_simple(plan, self.worker_values)
            except Exception:
                logger.exception('closing extension %s failed', plan.name)
        # The requests are over; a sync handler still running (stuck) is not waited for.
        self.executor.shutdown(wait=False)

    # -- connections ----------------------------------------------------------------------------

    def connection_made(self, connection: Connection) -> Optional[Any]:
        if not self._connect:
            return None
        return self._connection_hooks(self._connect, connection)

    def connection_lost(self, connection: Connection) -> Optional[Any]:
        if not self._close:
            return None
        return self._connection_hooks(self._close, connection)

    async def _connection_hooks(self, plans: tuple[Plan, ...], connection: Connection) -> None:
        values = {**self.base, 'connection': connection}
        for plan in plans:
            try:
                await self._call_simple(plan, values)
            except Exception:
                logger.exception('connection hook %s failed', plan.name)
                connection.close()
                return

    # -- requests -------------------------------------------------------------------------------

    async def handle(self, request: Request, response: Response) -> None:
        compiled = self.compiled
        try:
            endpoint, params = compiled.router.lookup(request.method, request.path)
        except HTTPException as exc:
            endpoint = compiled.fallback_endpoint(request.path)
            params = {}
            missing: Optional[HTTPException] = exc
        else:
            request.params = params
            request.route = endpoint.path
            missing = None
            if endpoint.custom:
                endpoint.customize(request, response)
        context = Context(endpoint.options, request.connection,
                          endpoint.path if missing is None else None)
        request.context = context
        # The server values by name, for the functions that take them by name: made only
        # when something asks (see `Endpoint.lean`).
        values: Optional[dict[str, Any]] = None if endpoint.lean else self._values(
            request, response, context)
        scope: Optional[dict[Any, Any]] = {} if endpoint.uses_providers else None
        websocket = None
        websocket_route = endpoint.websocket
        sse = None
        if endpoint.uses_sse:
            from ..sse import EventStream  # only routes that stream events load it

            assert values is not None
            sse = values['sse'] = EventStream(request, response, context.option('sse_keepalive'))
        # The hook running, if any, so that an error names it rather than the handler; the
        # on_response hooks run from inside the response's sending, and say so in `failed`.
        hook: Optional[Plan] = None
        failed: Optional[list[Plan]] = None
        # Hooks are called straight when they can be; in debug mode through `call`, which
        # times them.
        quick_calls = self.watch is None
        request_hooks, response_hooks = (
            endpoint.hooks if endpoint.by_method is None
            else endpoint.by_method.get(request.method, endpoint.hooks))
        if endpoint.default_headers is not None:
            response.default_headers = endpoint.default_headers
        try:
            if response_hooks:
                if values is None:
                    values = self._values(request, response, context)
                failed = []
                response.before_send = functools.partial(
                    self._response_hooks if response_hooks[0].quick is SYNC and quick_calls
                    else self._response_hooks_async,
                    response_hooks, values, params, scope, failed
                )
            for hook in request_hooks:
                # Spelled out: this runs for every hook of every request. The usual hook, a
                # sync function of the request's own objects, is called straight away.
                shape = hook.sync_shape if quick_calls else 0
                if shape == 1:
                    result = hook.func(request)
                elif shape == 3:
                    result = hook.func(request, response, context)
                elif shape == 2:
                    result = hook.func(request, response)
                else:
                    if values is None:
                        values = self._values(request, response, context)
                    quick = hook.quick if quick_calls else None
                    if quick is None:
                        result = await self.call(hook, values, params, scope, context)
                    else:
                        result = hook.invoke(values, params)
                        if quick is ASYNC:
                            result = await result
                if result is not None:
                    # A request hook answered: the handler is skipped (short-circuit).
                    await send_result(result, response, endpoint.json_type, hook.name,
                                      self.loop, self.executor)
                    return
            hook = None
            if missing is not None:
                raise missing
            customized = context.customized
            if customized:
                _apply_options(context.options, request, response, endpoint)
            if websocket_route is not None:  # after the hooks, which may refuse first
                assert values is not None
                values['websocket'] = websocket = websocket_route.open(
                    request, response, context)
            plan = endpoint.plan
            if values is None and customized:  # a lean endpoint, with options of its own
                values = self._values(request, response, context)
            if customized or endpoint.direct is None:
                assert values is not None
                result = await self.call(plan, values, params, scope, context,
                                         endpoint.option_kwargs)
            elif endpoint.direct:
                assert values is not None
                if plan.var_keyword and not params:
                    result = await plan.func(**values)  # the call copies values
                else:
                    result = await plan.invoke(values, params)
            else:
                # Its providers answer without waiting: no coroutine of `call` around it.
                assert scope is not None
                provided = endpoint.provided
                if provided is None:
                    assert values is not None
                    result = await plan.func(**self._provided(plan, values, params, scope))
                else:
                    # `_provided`, spelled out for the common case (see `Endpoint.provided`);
                    # one provider goes by position (`Endpoint.one_provided`).
                    kwargs: Optional[dict[str, Any]] = None if endpoint.one_provided else {}
                    value = None
                    for name, provider, function, shape in provided:
                        # Kept in the scope for the error handlers and cleanups.
                        value = scope[provider] = (
                            function(request) if shape == 1 else function(request, response))
                        if kwargs is not None:
                            kwargs[name] = value
                    result = await (plan.func(value) if kwargs is None else plan.func(**kwargs))
            if websocket is not None and (websocket.accepted or result is None):
                # Close it, or refuse the handshake if it was never accepted.
                assert websocket_route is not None
                await websocket_route.finish(websocket)
            else:
                await send_result(result, response, endpoint.json_type, endpoint.where,
                                  self.loop, self.executor)
        except ClientDisconnected:
            if websocket is None or not websocket.accepted:
                raise
            # WebSocketClosed left uncaught: the handler is done.
            assert websocket_route is not None
            await websocket_route.finish(websocket)
        except Exception as exc:
            if websocket is not None and websocket.accepted:
                # Too late for an HTTP error: the WebSocket closes with 1011.
                assert websocket_route is not None
                await websocket_route.failed(websocket, exc)
                return
            if failed:
                where = _hook_name('on_response', failed[0])
            elif hook is not None:
                where = _hook_name('on_request', hook)
            else:
                where = endpoint.where
            if values is None:
                values = self._values(request, response, context)
            await self.handle_error(exc, request, response, endpoint, values, params, scope,
                                    where)
        finally:
            if sse is not None:
                sse.stop()
            if scope and CLEANUPS in scope:
                await self._cleanup(scope[CLEANUPS])

    def _values(self, request: Request, response: Response, context: Context
                ) -> dict[str, Any]:
        """The server values of a request, by name."""
        return {**self.base, 'request': request, 'response': response, 'context': context}

    def _response_hooks(
        self, hooks: tuple[Plan, ...], values: dict[str, Any], params: dict[str, Any],
        scope: Optional[dict[Any, Any]], failed: list[Plan],
    ) -> Optional[Awaitable[None]]:
        """Run the ``on_response`` hooks (the response's `before_send`): those that need not
        wait run here, and the rest, from the first that must, in the coroutine returned."""
        for index, plan in enumerate(hooks):
            if plan.quick is not SYNC:
                return self._response_hooks_async(hooks[index:], values, params, scope,
                                                  failed)
            try:
                result = plan.invoke(values, params)
                if result is not None:
                    _returned(plan, result)
            except Exception:
                failed.append(plan)
                raise
        return None

    async def _response_hooks_async(
        self, hooks: tuple[Plan, ...], values: dict[str, Any], params: dict[str, Any],
        scope: Optional[dict[Any, Any]], failed: list[Plan],
    ) -> None:
        context = values['context']
        quick_calls = self.watch is None
        for plan in hooks:
            quick = plan.quick if quick_calls else None
            try:
                if quick is SYNC:
                    result = plan.invoke(values, params)
                elif quick is ASYNC:
                    result = await plan.invoke(values, params)
                else:
                    result = await self.call(plan, values, params, scope, context)
                if result is not None:
                    _returned(plan, result)
            except Exception:
                failed.append(plan)
                raise

    async def handle_error(
        self, exc: Exception, request: Request, response: Response, endpoint: Endpoint,
        values: dict[str, Any], params: dict[str, Any], scope: Optional[dict[Any, Any]],
        where: Optional[str] = None,
    ) -> None:
        """Answer with the error handler for ``exc``, or the default error response.

        ``where`` names what raised (the handler of ``endpoint`` by default).
        """
        plan = endpoint.errors.find(exc)
        if not isinstance(exc, HTTPException):
            # An exception with a handler registered for its class is an expected outcome.
            level = logging.DEBUG if plan is not None and plan is endpoint.errors.find_class(
                exc) else logging.ERROR
            logger.log(level, 'error in %s answering %s %s', where or endpoint.where,
                       request.method, request.path, exc_info=exc)
        if response.headers_sent:
            # The head is out: no status can tell the client, only a body cut short. Logged
            # once, here (the server would log an error it is handed again).
            response.abort()
            return
        http_exc = exc if isinstance(exc, HTTPException) else InternalServerError()
        response.reset(http_exc.status, http_exc.headers)
        if plan is not None:
            try:
                error_values = {**values, 'exc': exc}
                result = await self.call(plan, error_values, params, scope, values['context'])
                await send_result(result, response, endpoint.json_type, plan.name, self.loop,
                                  self.executor)
                return
            except ClientDisconnected:
                raise
            except Exception as handler_exc:
                logger.error('error handler %s failed', plan.name, exc_info=handler_exc)
                if response.headers_sent:
                    response.abort()
                    return
                http_exc = InternalServerError()
                response.reset(http_exc.status)
        if isinstance(exc, HTTPException) or not self.debug:
            body = http_exc.message
        else:
            body = ''.join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        try:
            await response.send(body)
        except ClientDisconnected:
            raise
        except Exception as hook_exc:
            # An on_response hook failed while sending the error: send it bare.
            logger.error('error sending the error response', exc_info=hook_exc)
            if response.headers_sent:
                response.abort()
                return
            response.reset(500)
            response.send_whole(b'Internal Server Error')

    # -- calling --------------------------------------------------------------------------------

    async def call(
        self, plan: Plan, values: dict[str, Any], params: dict[str, Any],
        scope: Optional[dict[Any, Any]], context: Optional[Context] = None,
        option_kwargs: Optional[dict[str, Any]] = None,
    ) -> Any:
        """Call ``plan``'s function with its injected arguments; await or thread it."""
        kwargs = plan.kwargs(values, params)
        if option_kwargs:
            kwargs.update(option_kwargs)
        if plan.providers:
            assert scope is not None
            cache = scope
            quick_calls = self.watch is None
            for name, provider in plan.providers:
                if provider in cache:
                    kwargs[name] = cache[provider]
                elif quick_calls and provider.plan.quick is SYNC:
                    kwargs[name] = cache[provider] = provider.plan.invoke(values, params)
                else:
                    kwargs[name] = await self._provide(provider, values, params, scope)
        if plan.options and context is not None and context.customized:
            options = context.options
            for name in plan.options:
                if name in options:
                    kwargs[name] = options[name]
        mode = plan.mode
        watch = self.watch
        if mode is ASYNC:
            if watch is None:
                return await plan.func(**kwargs)
            return await watch.run(plan.func(**kwargs), _function_name(plan))
        if mode is SYNC:
            if plan.inline:
                if watch is None:
                    return plan.func(**kwargs)
                return watch.call(plan.func, _function_name(plan), **kwargs)
            call = functools.partial(contextvars.copy_context().run, plan.func, **kwargs)
            return await self.loop.run_in_executor(self.executor, call)
        # ASYNC_GEN or SYNC_GEN: creating the generator runs none of its code.
        if watch is not None and mode is ASYNC_GEN:
            return watch.stream(plan.func(**kwargs), _function_name(plan))
        return plan.func(**kwargs)

    def _provided(self, plan: Plan, values: dict[str, Any], params: dict[str, Any],
                  scope: dict[Any, Any]) -> dict[str, Any]:
        """The keyword arguments of a plan whose providers all answer without waiting
        (`Endpoint.direct` is ``False``)."""
        kwargs = plan.kwargs(values, params) if plan.server or plan.params else {}
        for name, provider in plan.providers:
            value = scope.get(provider, scope)  # the scope itself stands for "not yet"
            if value is scope:
                factory = provider.plan
                args = factory.args
                if args is None:
                    value = factory.invoke(values, params)
                elif factory.spread:
                    value = factory.func(*args(values))
                else:
                    value = factory.func(args(values))
                scope[provider] = value
            kwargs[name] = value
        return kwargs

    async def _call_simple(self, plan: Plan, values: dict[str, Any]) -> Any:
        kwargs = plan.kwargs(values, {})
        watch = self.watch
        if watch is not None:
            name = _function_name(plan)
            if plan.mode is ASYNC:
                return await watch.run(plan.func(**kwargs), name)
            return watch.call(plan.func, name, **kwargs)
        result = plan.func(**kwargs)
        if plan.mode is ASYNC:
            result = await result
        return result

    async def _provide(
        self, provider: Any, values: dict[str, Any], params: dict[str, Any],
        scope: Optional[dict[Any, Any]],
    ) -> Any:
        assert scope is not None
        if provider in scope:
            return scope[provider]
        plan = provider.plan
        result = await self.call(plan, values, params, scope)
        if plan.mode is ASYNC_GEN:
            generator = result
            result = await generator.__anext__()
            scope.setdefault(CLEANUPS, []).append(generator)
        elif plan.mode is SYNC_GEN:
            generator = result
            result = next(generator)
            scope.setdefault(CLEANUPS, []).append(generator)
        scope[provider] = result
        return result

    async def _cleanup(self, cleanups: list[Any]) -> None:
        # Run each generator provider past its yield, last provided first.
        for generator in reversed(cleanups):
            try:
                if hasattr(generator, 'aclose'):
                    try:
                        await generator.__anext__()
                    except StopAsyncIteration:
                        continue
                    await generator.aclose()
                else:
                    try:
                        next(generator)
                    except StopIteration:
                        continue
                    generator.close()
                logger.error('provider %r yielded more than once', generator)
            except Exception:
                logger.exception('provider cleanup failed')


def _returned(plan: Plan, result: Any) -> None:
    raise TypeError(
        f'on_response hook {plan.name} returned {type(result).__name__}; it must return None '
        f'(add a filter to the response to change the body)'
    )


def _hook_name(kind: str, plan: Plan) -> str:
    """``on_request hook check_token (myapp.auth)``: the hook, and the module it comes from."""
    return f'{kind} hook {_function_name(plan)}'


def _function_name(plan: Plan) -> str:
    """``check_token (myapp.auth)``: the function, and the module it comes from."""
    module = getattr(plan.func, '__module__', None)
    return f'{plan.name} ({module})' if module else plan.name


def _apply_options(options: dict[str, Any], request: Request, response: Response,
                   endpoint: Endpoint) -> None:
    """Apply the body limits and the handler timeout a request hook changed in
    ``context.options``."""
    request.max_body_size = options.get('max_body_size', request.max_body_size)
    request.body_buffer_size = options.get('body_buffer_size', request.body_buffer_size)
    timeout = options.get('handler_timeout', endpoint.handler_timeout)
    if timeout != endpoint.handler_timeout:
        response.channel.set_handler_timeout(timeout)
