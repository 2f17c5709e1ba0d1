"""MkDocs hook: the configuration tables, generated from :class:`tremolo.options.Options`.

A page holding the marker ``<!-- options-table -->`` gets one row per option (its name, its
command-line flag as ``python -m tremolo`` builds it, the environment variable the command line
also reads, its default, whether it is also a route option, and its help text), followed by the
route-only options of ``ROUTE_DEFAULTS``. The marker ``<!-- cli-extra-flags -->`` becomes the
table of the flags that set no single option (``--ssl-certfile``...), with their variables.
Nothing is written by hand, so the tables cannot drift from the code.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from tremolo.cli import build_parser
from tremolo.options import ENV_PREFIX, ROUTE_DEFAULTS, ROUTE_HELP, Options

OPTIONS_MARKER = '<!-- options-table -->'
CLI_MARKER = '<!-- cli-extra-flags -->'

KiB = 1024
MiB = 1024 * KiB

_NOT_OPTIONS = {'help', 'version', 'app'}


def _cell(text: str) -> str:
    return text.replace('|', '\\|').replace('\n', ' ')


def _code(value: str) -> str:
    return f'`{value}`'


def format_default(value: Any, help_text: str = '') -> str:
    """A default as the table shows it: a literal, plus a readable size for byte counts."""
    shown = _code(repr(value))
    if isinstance(value, int) and not isinstance(value, bool) and 'bytes' in help_text.lower():
        for unit, size in (('MiB', MiB), ('KiB', KiB)):
            if value >= size and value % size == 0:
                return f'{shown} ({value // size} {unit})'
    return shown


def _flags_by_dest(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    flags: dict[str, list[str]] = {}
    for action in parser._actions:  # argparse offers no public listing of its actions
        if action.option_strings:
            flags[action.dest] = list(action.option_strings)
    return flags


def option_rows() -> list[list[str]]:
    """``[option, CLI flag, environment variable, default, route option, description]`` for
    every option."""
    flags = _flags_by_dest(build_parser())
    rows = []
    for field in dataclasses.fields(Options):
        meta = field.metadata
        if field.default is not dataclasses.MISSING:
            default = field.default
        else:
            default = field.default_factory()  # type: ignore[misc]
        names = flags.get(field.name, [])
        rows.append([
            _code(field.name),
            ' / '.join(_code(name) for name in names) if names else '—',
            _code(ENV_PREFIX + field.name.upper()) if names else '—',
            format_default(default, meta['help']),
            'yes' if meta.get('route') else 'no',
            _cell(meta['help']),
        ])
    for name, default in ROUTE_DEFAULTS.items():
        rows.append([
            _code(name), '—', '—', format_default(default), 'yes (route only)',
            _cell(ROUTE_HELP[name]),
        ])
    return rows


def cli_extra_rows() -> list[list[str]]:
    """``[flag, environment variable, description]`` for the command-line flags that are not
    one option."""
    names = {field.name for field in dataclasses.fields(Options)}
    rows = []
    for action in build_parser()._actions:
        if action.option_strings and action.dest not in names | _NOT_OPTIONS:
            rows.append([' / '.join(_code(flag) for flag in action.option_strings),
                         _code(ENV_PREFIX + action.dest.upper()), _cell(action.help or '')])
    return rows


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
    return '\n'.join(lines)


def options_table() -> str:
    return markdown_table(
        ['Option', 'CLI flag', 'Environment variable', 'Default', 'Route option', 'Description'],
        option_rows(),
    )


def cli_extra_table() -> str:
    return markdown_table(['CLI flag', 'Environment variable', 'Description'], cli_extra_rows())


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    if OPTIONS_MARKER in markdown:
        markdown = markdown.replace(OPTIONS_MARKER, options_table())
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_extra_table())
    return markdown
