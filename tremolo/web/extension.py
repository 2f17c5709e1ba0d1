"""The extension contract: an object installed with ``app.install(extension)``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import Tremolo


class Extension(ABC):
    """Base class for extensions (subclassing it is optional: any object with ``setup`` works).

    An extension is installed once per application with ``app.install(extension)``:

    - ``setup(app)`` is called at once: register routes, middleware, hooks and providers on
      ``app`` there.
    - ``close(...)``, if defined, runs in each worker when it stops, after the
      ``on_worker_stop`` hooks, in reverse order of installation. It is injected like a worker
      hook (``app``, ``globals``, ``loop``, ``logger``) and may be a coroutine function.

    Attributes:
        name: Identifies the extension in messages; defaults to the class name.
    """

    name: str = ''

    @abstractmethod
    def setup(self, app: Tremolo) -> None:
        """Register what the extension provides on ``app``."""

    def __repr__(self) -> str:
        return f'<Extension {self.name or type(self).__name__}>'


def extension_name(extension: Any) -> str:
    return getattr(extension, 'name', '') or type(extension).__name__
