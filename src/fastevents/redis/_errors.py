"""The one error the Redis backend adds."""

from __future__ import annotations

from .._errors import StreamError

__all__ = ["RedisUnavailable"]


class RedisUnavailable(StreamError, ConnectionError):
    """Redis could not be reached (or did not answer in time); redis-py's error is the cause.

    A ``ConnectionError`` too, so code that already handles network failures handles
    this one. The same objects work again once Redis is back.
    """

    kind = "redis unavailable"
