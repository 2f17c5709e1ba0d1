"""The network layer: sockets, workers and the asyncio protocol that turns bytes into requests
and responses into bytes.

It serves any `tremolo.types.Dispatcher` and never imports the framework (`tremolo.web`) or
the ASGI mode: `serve` receives the dispatcher's factory, the supervisor the worker's entry
point.
"""
