"""fastevents on Redis: the same streams, shared by every process that reaches one Redis.

``pip install "fastevents-stream[redis]"``. ``import fastevents`` does not import this
package (nor redis-py); ``import fastevents.redis`` does.
"""

try:
    import redis as _redis_py  # noqa: F401  (checked here for a clear message)
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "fastevents.redis needs redis-py >= 5: pip install 'fastevents-stream[redis]'"
    ) from exc

from ._errors import RedisUnavailable
from ._manager import RedisStreamManager
from ._stream import RedisEventStream

__all__ = ["RedisEventStream", "RedisStreamManager", "RedisUnavailable"]
