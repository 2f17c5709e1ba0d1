"""Logging: the ``tremolo`` logger for the server, ``tremolo.access`` for one line per request.

Both are plain stdlib loggers; configure them as you like, in code or with a configuration file
(the ``log_config`` option). When nothing is configured, running a server installs a stderr
handler so that its messages are seen.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..options import Options
    from ..telemetry import ExchangeRecord

FORMAT = '%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s'


def configure_logging(options: Options) -> None:
    """Apply ``options.log_config``, set the levels from ``options`` (those the configuration
    file leaves unset), and add a stderr handler if no handler is configured.

    Raises:
        ValueError: The configuration file cannot be read or applied (naming the option).
    """
    if options.log_config:
        apply_log_config(options.log_config)
    logger = logging.getLogger('tremolo')
    access = logging.getLogger('tremolo.access')
    # Without a file, the options decide; with one, the file decides the levels it sets.
    if not options.log_config or logger.level == logging.NOTSET:
        logger.setLevel(options.log_level.upper())
    if not options.log_config or access.level == logging.NOTSET:
        access.setLevel(logging.INFO if options.access_log else logging.WARNING)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        logger.addHandler(handler)


def apply_log_config(path: str) -> None:
    """Configure logging from the file at ``path``: a `logging.config.dictConfig`
    dictionary in JSON (``.json``) or TOML (``.toml``), or a `logging.config.fileConfig`
    INI file (``.ini``, ``.cfg``, ``.conf``).

    Loggers that exist already stay enabled unless the file says otherwise
    (``disable_existing_loggers``), and a dictionary without ``version`` is version 1.

    Raises:
        ValueError: The file cannot be read, parsed or applied (naming the option).
    """
    try:
        if path.lower().endswith(('.ini', '.cfg', '.conf')):
            logging.config.fileConfig(path, disable_existing_loggers=False)
            return
        config = _read_dictionary(path)
        if not isinstance(config, dict):
            raise ValueError('the file holds no dictionary')
        config.setdefault('version', 1)
        config.setdefault('disable_existing_loggers', False)
        logging.config.dictConfig(config)
    except Exception as exc:  # whatever the file gets wrong: a missing key, a bad class...
        raise ValueError(f"option 'log_config': cannot configure logging from {path!r}: "
                         f'{exc}') from exc


def _read_dictionary(path: str) -> Any:
    if path.lower().endswith('.toml'):
        try:
            import tomllib
        except ImportError:  # Python < 3.11: the tomli package, if it is installed
            try:
                import tomli as tomllib  # type: ignore[no-redef]
            except ImportError:
                raise ValueError('TOML needs Python 3.11 or the tomli package '
                                 '(pip install tomli)') from None
        with open(path, 'rb') as file:
            return tomllib.load(file)
    with open(path, encoding='utf-8') as file:
        return json.load(file)


class AccessLog:
    """The access log, as an exchange listener: one line per exchange, at level ``INFO`` on
    the ``tremolo.access`` logger, in the format compiled once from ``access_log_format``
    (see `tremolo.access_log`)."""

    __slots__ = ('line', 'logger')

    def __init__(self, options: Options) -> None:
        from ..access_log import compile_format

        self.line = compile_format(options.access_log_format)
        self.logger = logging.getLogger('tremolo.access')

    def __call__(self, record: ExchangeRecord) -> None:
        # The line is the message itself, with no arguments: a '%' in it is never formatted.
        self.logger.info(self.line(record))

    def __repr__(self) -> str:
        return '<AccessLog>'
