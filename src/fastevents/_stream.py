"""Pick the stream core: the compiled twin when it loads, else the pure-Python one.

``FASTEVENTS_NO_EXTENSIONS`` (any non-empty value) forces the pure twin, and so does a
Python other than CPython. When the compiled twin fails to import, the reason is kept in
``EXTENSION_IMPORT_ERROR`` so a user can see why the fallback is live.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from ._stream_abc import Stream
from ._stream_py import PyEventStream

__all__ = [
    "EXTENSION_IMPORT_ERROR",
    "IMPLEMENTATION",
    "CEventStream",
    "EventStream",
    "PyEventStream",
]

if TYPE_CHECKING:
    from ._stream_c import CEventStream as _CEventStream  # typed by _stream_c.pyi

EXTENSION_IMPORT_ERROR: ImportError | None = None
CEventStream: type[_CEventStream] | None

if os.environ.get("FASTEVENTS_NO_EXTENSIONS") or sys.implementation.name != "cpython":
    CEventStream = None
else:
    try:
        from ._stream_c import CEventStream as _compiled
    except ImportError as exc:  # no compiler at install time, or a broken build
        EXTENSION_IMPORT_ERROR = exc
        CEventStream = None
    else:
        # A cdef class cannot subclass the ABC: register it, so isinstance(s, fe.Stream)
        # holds for both twins (its stub declares the base for type checkers).
        Stream.register(_compiled)
        CEventStream = _compiled

if TYPE_CHECKING:
    # The pure twin is the typed source of truth: both twins have its exact API.
    EventStream = PyEventStream
else:
    EventStream = CEventStream if CEventStream is not None else PyEventStream
IMPLEMENTATION = "cython" if CEventStream is not None else "python"
