"""Fixtures shared by the whole suite."""

from __future__ import annotations

import pytest

from tremolo import Tremolo
from tremolo.testing import TestClient


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
