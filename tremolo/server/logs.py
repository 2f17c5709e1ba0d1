"""Logging: the ``tremolo`` logger for the server, ``tremolo.access`` for one line per request.

Both are plain stdlib loggers; configure them as you like. When nothing is configured, running
a server installs a stderr handler so that its messages are seen.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..options import Options

FORMAT = '%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s'


def configure_logging(options: Options) -> None:
    """Set the levels from ``options`` and add a stderr handler if none is configured."""
    logger = logging.getLogger('tremolo')
    logger.setLevel(options.log_level.upper())
    access = logging.getLogger('tremolo.access')
    access.setLevel(logging.INFO if options.access_log else logging.WARNING)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        logger.addHandler(handler)
