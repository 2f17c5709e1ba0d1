"""What goes wrong between the server and an ASGI application."""

from __future__ import annotations


class ASGIProtocolError(RuntimeError):
    """The application broke the ASGI protocol: a message out of order or of the wrong shape
    (raised by ``send``, so the application's traceback points at the culprit)."""


class LifespanFailure(RuntimeError):
    """The application's lifespan startup failed (``lifespan.startup.failed``, or an error
    where the lifespan protocol is required): the worker does not start.

    Attributes:
        message: The application's own message.
    """

    def __init__(self, message: str) -> None:
        super().__init__(f"the ASGI application's lifespan startup failed: {message}")
        self.message = message
