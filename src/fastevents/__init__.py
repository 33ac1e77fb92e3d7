"""fastevents: bounded, typed event streams for real-time LLM output.

This module only re-exports; each name lives in a small module of its own.
"""

from ._errors import (
    Cancelled,
    HistoryLost,
    InvalidEvent,
    StreamClosed,
    StreamError,
    StreamExists,
    StreamFull,
    StreamNotFound,
    is_invalid_event,
    is_stream_closed,
    is_stream_full,
    is_stream_not_found,
)
from ._event import (
    Event,
    content_end_event,
    content_start_event,
    error_event,
    message_start_event,
    message_stop_event,
    new_event,
    text_delta_event,
    thinking_event,
    tool_input_delta_event,
    usage_event,
)
from ._manager import StreamInfo, StreamManager
from ._stream import (
    EXTENSION_IMPORT_ERROR,
    IMPLEMENTATION,
    CEventStream,
    EventStream,
    PyEventStream,
)
from ._stream_abc import Stream
from ._types import BackpressurePolicy, EventType, parse_event_type
from ._version import __version__

__all__ = [
    "EXTENSION_IMPORT_ERROR",
    "IMPLEMENTATION",
    "BackpressurePolicy",
    "CEventStream",
    "Cancelled",
    "Event",
    "EventStream",
    "EventType",
    "HistoryLost",
    "InvalidEvent",
    "PyEventStream",
    "Stream",
    "StreamClosed",
    "StreamError",
    "StreamExists",
    "StreamFull",
    "StreamInfo",
    "StreamManager",
    "StreamNotFound",
    "__version__",
    "content_end_event",
    "content_start_event",
    "error_event",
    "is_invalid_event",
    "is_stream_closed",
    "is_stream_full",
    "is_stream_not_found",
    "message_start_event",
    "message_stop_event",
    "new_event",
    "parse_event_type",
    "text_delta_event",
    "thinking_event",
    "tool_input_delta_event",
    "usage_event",
]
