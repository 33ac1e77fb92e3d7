"""Argument checks shared by both stream twins and the manager.

Both twins call these on their slow paths, so a bad argument gets the same error,
with the same message, whichever core is live.
"""

from __future__ import annotations

import math
import numbers
import operator
import sys
from datetime import timedelta
from typing import Any

from ._errors import InvalidEvent, StreamError, StreamFull
from ._event import Event
from ._types import BackpressurePolicy

DEFAULT_BUFFER_SIZE = 100

# The compiled core indexes its ring with Py_ssize_t; keep one bound for both twins.
MAX_BUFFER_SIZE = sys.maxsize // 16


def check_buffer_size(value: Any) -> int:
    """Return the buffer size to use; ``<= 0`` means the default of 100."""
    if isinstance(value, bool) or not hasattr(type(value), "__index__"):
        raise TypeError(f"buffer_size must be an int, not {type(value).__name__}")
    size = operator.index(value)
    if size <= 0:
        return DEFAULT_BUFFER_SIZE
    if size > MAX_BUFFER_SIZE:
        raise ValueError(f"buffer_size must be at most {MAX_BUFFER_SIZE}, got {size}")
    return size


def check_policy(value: Any) -> BackpressurePolicy:
    """Return ``value`` as a :class:`BackpressurePolicy` member."""
    if isinstance(value, BackpressurePolicy):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"policy must be a BackpressurePolicy, not {type(value).__name__}")
    try:
        return BackpressurePolicy(value)
    except ValueError:
        raise ValueError(f"unknown backpressure policy: {value!r}") from None


def check_timeout(value: Any) -> float | None:
    """Return the timeout in seconds, or ``None`` to wait forever.

    ``0`` means "try once without waiting"; ``inf`` is the same as ``None``.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, not {type(value).__name__}")
    t = float(value)
    if math.isnan(t):
        raise ValueError("timeout cannot be NaN")
    if t < 0:
        raise ValueError(f"timeout must be >= 0, got {value!r}")
    if math.isinf(t):
        return None
    return t


def check_cancel(value: Any) -> None:
    """A cancel token is anything with ``is_set()``, such as :class:`threading.Event`."""
    if value is not None and not callable(getattr(value, "is_set", None)):
        raise TypeError(
            f"cancel must be a threading.Event (or have is_set()), not {type(value).__name__}"
        )


def check_max_items(value: Any) -> int:
    if isinstance(value, bool) or not hasattr(type(value), "__index__"):
        raise TypeError(f"max_items must be an int, not {type(value).__name__}")
    n = operator.index(value)
    if n < 1:
        raise ValueError(f"max_items must be >= 1, got {n}")
    return n


def check_event(event: Any, stream_id: str | None, op: str) -> None:
    """Raise :class:`InvalidEvent` (naming the stream and op) unless ``event`` may be sent."""
    if event is None:
        raise InvalidEvent("event cannot be None", stream_id=stream_id, op=op)
    if not isinstance(event, Event):
        raise InvalidEvent(
            f"expected an Event, got {type(event).__name__}", stream_id=stream_id, op=op
        )
    try:
        event.validate()
    except InvalidEvent as exc:
        raise InvalidEvent(exc.detail, stream_id=stream_id, op=op) from None


def check_events(events: Any, stream_id: str | None, op: str) -> list[Event]:
    """Validate a batch up front (``send_many`` enqueues nothing if one event is bad)."""
    if events is None or isinstance(events, (str, bytes, Event)):
        raise TypeError(f"events must be an iterable of Event, not {type(events).__name__}")
    try:
        batch = list(events)
    except TypeError:
        raise TypeError(
            f"events must be an iterable of Event, not {type(events).__name__}"
        ) from None
    for event in batch:
        check_event(event, stream_id, op)
    return batch


def stream_error(
    cls: type[StreamError], stream_id: str | None, op: str, buffer_size: int,
    detail: str | None = None,
) -> StreamError:
    """Build a stream's error; ``StreamFull`` also carries the buffer size."""
    if cls is StreamFull:
        return StreamFull(detail, stream_id=stream_id, op=op, buffer_size=buffer_size)
    return cls(detail, stream_id=stream_id, op=op)


def timeout_error(stream_id: str | None, op: str) -> TimeoutError:
    """Timeouts raise the builtin ``TimeoutError`` (also on 3.10), naming the stream."""
    where = f"stream {stream_id}: " if stream_id is not None else ""
    return TimeoutError(f"{where}{op}: timed out")


def check_history(value: Any) -> int:
    """``history=``: how many received events a stream keeps for replay (int >= 0)."""
    if isinstance(value, bool) or not hasattr(type(value), "__index__"):
        raise TypeError(f"history must be an int, not {type(value).__name__}")
    n = operator.index(value)
    if n < 0:
        raise ValueError(f"history must be >= 0, got {n}")
    if n > MAX_BUFFER_SIZE:
        raise ValueError(f"history must be at most {MAX_BUFFER_SIZE}, got {n}")
    return n


def check_after(value: Any) -> int:
    """A sequence number to replay after (``replay(after)``, ``entries(after)``)."""
    if isinstance(value, bool) or not hasattr(type(value), "__index__"):
        raise TypeError(f"after must be an int, not {type(value).__name__}")
    n = operator.index(value)
    if n < 0:
        raise ValueError(f"after must be >= 0, got {n}")
    return n


def check_stream_id(stream_id: Any) -> str:
    """A manager's stream id: any non-empty ``str`` (both managers, one message)."""
    if not isinstance(stream_id, str):
        raise TypeError(f"stream ID must be a str, not {type(stream_id).__name__}")
    if not stream_id:
        raise ValueError("stream ID cannot be empty")
    return stream_id


def check_threshold(threshold: Any) -> float:
    """``cleanup_inactive(threshold)``: seconds (a real number) or a ``timedelta``."""
    if isinstance(threshold, timedelta):
        return threshold.total_seconds()
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(
            "threshold must be a number of seconds or a timedelta, "
            f"not {type(threshold).__name__}"
        )
    seconds = float(threshold)
    if math.isnan(seconds):
        raise ValueError("threshold cannot be NaN")
    return seconds


def refuse_copy(obj: object) -> TypeError:
    """Streams and managers are live state (locks, waiters, other threads' tasks):
    copying or pickling one cannot mean anything sensible, so all three refuse alike."""
    return TypeError(
        f"cannot copy or pickle a {type(obj).__name__}: it is live, shared state "
        "(locks and waiting tasks); share the object itself, or send its events"
    )
