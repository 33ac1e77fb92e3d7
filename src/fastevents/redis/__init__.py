"""fastevents on Redis: the same streams, shared by every process that reaches one Redis.

``pip install "fastevents-stream[redis]"``. ``import fastevents`` does not import this
package (nor redis-py); ``import fastevents.redis`` does.
"""

from ._errors import RedisUnavailable
from ._manager import RedisStreamManager
from ._stream import RedisEventStream

__all__ = ["RedisEventStream", "RedisStreamManager", "RedisUnavailable"]
