"""Fixtures of the middleware' tests."""

from tests.apps.redis_server import redis_server

__all__ = ['redis_server']
