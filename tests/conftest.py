"""Fixtures shared by the whole suite."""

from __future__ import annotations

import asyncio

import pytest

from tremolo import Tremolo
from tremolo.testing import TestClient


def pytest_configure(config: pytest.Config) -> None:
    # pytest-asyncio < 1.3 (the last line for Python 3.9) asks the policy for the current loop
    # around every async test; on Python 3.9 that implicitly creates a loop and leaves it set.
    # A later ``asyncio.run`` replaces it without closing it, and the collector (at once on
    # CPython, at some later test on PyPy) reports "unclosed event loop". Marking the main
    # thread's loop as explicitly unset makes ``get_event_loop`` raise instead of creating one.
    asyncio.set_event_loop(None)


@pytest.fixture
def app() -> Tremolo:
    """A fresh application for one test."""
    return Tremolo()


@pytest.fixture
def client_for():
    """Build a :class:`TestClient` for an app: ``async with client_for(app) as client``."""

    def build(app: Tremolo, **options):
        return TestClient(app, **options)

    return build
