"""Fixtures shared by the whole suite."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from tests.apps.harness import Processes
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


@pytest.fixture
def procs(tmp_path):
    """Server processes started by the test, stopped (and reaped) after it."""
    with Processes(tmp_path) as processes:
        yield processes


@pytest.fixture
def stop_dir(tmp_path) -> Path:
    """Where the workers of tests.apps.basic write a file from their on_worker_stop hook."""
    path = tmp_path / 'stopped'
    path.mkdir()
    return path


# -- TLS: certificates made by trustme, for servers on 127.0.0.1 --------------------------------

@pytest.fixture(scope='session')
def ca():
    """A certificate authority for the tests' HTTPS servers."""
    trustme = pytest.importorskip('trustme')
    return trustme.CA()


@pytest.fixture(scope='session')
def certificate(ca):
    """A server certificate for 127.0.0.1 and localhost, signed by `ca`."""
    return ca.issue_cert('127.0.0.1', 'localhost')


@pytest.fixture
def server_context(certificate) -> ssl.SSLContext:
    """The server side of TLS: pass as ``ssl=`` to `serve`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    return context


@pytest.fixture
def client_context(ca) -> ssl.SSLContext:
    """A client context trusting `ca` (for aiohttp's ``ssl=``)."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context
