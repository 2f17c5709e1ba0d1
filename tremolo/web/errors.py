"""Error handlers registered with ``@app.error(...)``: by status code or exception class."""

from __future__ import annotations

from typing import Optional, Union

from ..exceptions import HTTPException
from .injection import Plan


class ErrorHandlers:
    """Error handlers of one application, possibly layered over its parent's."""

    def __init__(self) -> None:
        self.by_status: dict[int, Plan] = {}
        self.by_class: dict[type[BaseException], Plan] = {}

    def add(self, key: Union[int, type[BaseException]], plan: Plan) -> None:
        if isinstance(key, int):
            self.by_status[key] = plan
        else:
            self.by_class[key] = plan

    def layered(self, parent: ErrorHandlers) -> ErrorHandlers:
        """These handlers with ``parent``'s as the fallback (a mounted application's view)."""
        merged = ErrorHandlers()
        merged.by_status = {**parent.by_status, **self.by_status}
        merged.by_class = {**parent.by_class, **self.by_class}
        return merged

    def find(self, exc: BaseException) -> Optional[Plan]:
        """The handler for ``exc``: by class (most specific first), then by status."""
        plan = self.find_class(exc)
        if plan is not None:
            return plan
        status = exc.status if isinstance(exc, HTTPException) else 500
        return self.by_status.get(status)

    def find_class(self, exc: BaseException) -> Optional[Plan]:
        """The handler registered for the class of ``exc`` or a base class, if any."""
        if self.by_class:
            for cls in type(exc).__mro__:
                plan = self.by_class.get(cls)
                if plan is not None:
                    return plan
        return None

    def __bool__(self) -> bool:
        return bool(self.by_status or self.by_class)
