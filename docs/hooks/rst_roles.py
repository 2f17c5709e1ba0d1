"""MkDocs hook: render the reStructuredText roles left in docstrings as plain code.

Some docstrings cross-reference with Sphinx roles (:meth:`run`, :class:`~tremolo.Options`).
mkdocstrings reads them as Markdown, which leaves ``:meth:<code>run</code>`` in the page. This
hook keeps the code span and drops the role; a leading ``~`` keeps only the last dotted name,
as Sphinx does.
"""

from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(r':(?:meth|class|attr|func|data|mod|exc|obj):<code>(~?)([^<]+)</code>')


def strip_roles(html: str) -> str:
    """``html`` with every ``:role:<code>name</code>`` turned into ``<code>name</code>``."""

    def replace(match: re.Match[str]) -> str:
        tilde, name = match.groups()
        if tilde:
            name = name.rsplit('.', 1)[-1]
        return f'<code>{name}</code>'

    return ROLE.sub(replace, html)


def on_page_content(html: str, **kwargs: Any) -> str:
    return strip_roles(html)
