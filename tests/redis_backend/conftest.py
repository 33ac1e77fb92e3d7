"""Fixtures of the Redis backend tests (a private redis-server; see ``_redis_fixtures``)."""

from _redis_fixtures import (  # noqa: F401  (fixtures)
    own_redis_server,
    redis_manager,
    redis_manager_factory,
    redis_server,
    redis_url,
)
