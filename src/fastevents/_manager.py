"""StreamManager: a thread-safe registry of named streams, with idle-stream cleanup.

Locking rules (each one avoids a deadlock that is easy to write by accident):

- The manager's lock guards its dictionaries only; no stream method is called while it is
  held. The fork handlers (``_forksafe``) take every registered lock, streams' and
  managers', in no fixed order, so a thread holding one registered lock must never wait
  for another; and a stream call may wait for the stream's lock.
- A stream's ``closed`` is read under the lock: every stream class must answer it from
  memory, without waiting (both twins do).
- For the same reason streams are constructed outside the lock (a new stream registers
  itself with ``_forksafe``, which takes the registry lock that a forking thread holds
  while it waits for ours). Concurrent ``get_or_create`` callers for one id still get a
  single stream, constructed once: the first marks the id as pending and the others wait
  for it on a ``threading.Event``.
- ``cleanup_inactive`` takes the lock once per chunk of ids, never for the whole scan,
  so a million streams do not stall a concurrent ``get_or_create``.

Lifecycle: a closed stream is finished for its name. ``get_or_create`` / ``create_stream``
replace it with a new open stream; ``get_stream`` still returns it (a late consumer can
drain or replay it) until then, and looking it up is not activity.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, NoReturn, SupportsIndex

from . import _forksafe
from ._args import (
    check_buffer_size,
    check_history,
    check_policy,
    check_stream_id,
    check_threshold,
    refuse_copy,
)
from ._errors import StreamClosed, StreamExists, StreamNotFound
from ._types import BackpressurePolicy

if TYPE_CHECKING:
    # The pure-Python twin is the typed source of truth; the compiled one mirrors it.
    from ._stream_py import PyEventStream as EventStream

__all__ = ["StreamInfo", "StreamManager"]


@dataclass(frozen=True)
class StreamInfo:
    """A snapshot of one managed stream (``StreamManager.get_stream_info``)."""

    id: str
    buffer_size: int
    current_load: int
    is_closed: bool
    #: Time of the last real operation: a send, a receive, a lookup of the open stream
    #: (timezone-aware, UTC). A waiting sender or receiver is not activity here, though
    #: it keeps the stream from ``cleanup_inactive``.
    last_activity: datetime
    #: Events refused because the stream was full, without waiting (``DROP``, ``try_send``).
    dropped: int = 0
    #: Senders / receivers (threads and tasks) waiting on the stream right now.
    waiting_senders: int = 0
    waiting_receivers: int = 0


def _close_quietly(stream: EventStream) -> None:
    try:
        stream.close()
    except StreamClosed:  # closed by its user (or another thread) already: fine
        pass


class StreamManager:
    """A thread-safe collection of named :class:`EventStream` objects.

    ``buffer_size``, ``policy`` and ``history`` are what new streams get
    (``buffer_size <= 0`` means 100). ``stream_class`` picks the stream implementation;
    ``None`` means the selected ``fastevents.EventStream``.
    """

    #: How many ids ``cleanup_inactive`` examines per hold of the lock.
    _CLEANUP_CHUNK = 1024

    def __init__(
        self,
        buffer_size: int = 100,
        policy: BackpressurePolicy = BackpressurePolicy.BLOCK,
        *,
        stream_class: Callable[..., EventStream] | None = None,
        history: int = 0,
    ) -> None:
        self._buffer_size = check_buffer_size(buffer_size)
        self._policy = check_policy(policy)
        self._history = check_history(history)
        if stream_class is None:
            # Imported here: ``_stream`` picks a twin at import time, and the package
            # imports this module first.
            from ._stream import EventStream as selected

            stream_class = selected
        elif not callable(stream_class):
            raise TypeError(f"stream_class must be a class, not {type(stream_class).__name__}")
        self._stream_class: Callable[..., EventStream] = stream_class
        self._streams: dict[str, EventStream] = {}
        # Stamp of the last lookup of each id, from a counter bumped under the lock, so
        # cleanup_inactive can tell that a stream was fetched while it was deciding.
        self._stamps: dict[str, int] = {}
        self._counter = 0
        self._pending: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        _forksafe.register(self)

    # -- configuration ------------------------------------------------------------------

    @property
    def buffer_size(self) -> int:
        """The buffer size new streams get."""
        return self._buffer_size

    @property
    def policy(self) -> BackpressurePolicy:
        """The backpressure policy new streams get."""
        return self._policy

    @property
    def history(self) -> int:
        """How many received events new streams keep for replay."""
        return self._history

    @property
    def stream_class(self) -> Callable[..., EventStream]:
        """The class new streams are made with."""
        return self._stream_class

    def __repr__(self) -> str:
        with self._lock:
            count = len(self._streams)
        cls = getattr(self._stream_class, "__name__", repr(self._stream_class))
        return (
            f"<StreamManager streams={count} buffer_size={self._buffer_size}"
            f" policy={self._policy.name} history={self._history} stream_class={cls}>"
        )

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        """A manager refuses ``pickle``: it is live state (locks, streams in use)."""
        raise refuse_copy(self)

    def __copy__(self) -> NoReturn:
        raise refuse_copy(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> NoReturn:
        raise refuse_copy(self)

    # -- creation and lookup ------------------------------------------------------------

    def _stamp(self, stream_id: str) -> None:
        """Record a lookup of ``stream_id`` (lock held)."""
        self._counter += 1
        self._stamps[stream_id] = self._counter

    def _obtain(self, stream_id: str, op: str, exist_ok: bool) -> tuple[EventStream, bool]:
        while True:
            with self._lock:
                stream = self._streams.get(stream_id)
                if stream is not None and not stream.closed:
                    if not exist_ok:
                        raise StreamExists(stream_id=stream_id, op=op)
                    self._stamp(stream_id)
                    break
                # None, or closed: a closed stream is replaced by a new one.
                stream = None
                pending = self._pending.get(stream_id)
                if pending is None:
                    mine = self._pending[stream_id] = threading.Event()
                    break
            # Another thread is constructing this stream; wait for it, then look again
            # (it may have failed, or the stream may already be closed and removed).
            pending.wait()
        if stream is not None:
            # Found an existing stream: a lookup is activity. Outside the lock (rule 1).
            stream._touch()
            return stream, False
        try:
            if self._history:
                stream = self._stream_class(
                    self._buffer_size, self._policy, stream_id=stream_id,
                    history=self._history,
                )
            else:  # a 0.1-era stream_class need not know history=
                stream = self._stream_class(self._buffer_size, self._policy, stream_id=stream_id)
            # From here on the stream records its send/receive activity for cleanup.
            stream._touch()
        except BaseException:
            with self._lock:
                if self._pending.get(stream_id) is mine:
                    del self._pending[stream_id]
            mine.set()
            raise
        with self._lock:
            if self._pending.get(stream_id) is mine:
                del self._pending[stream_id]
            # Replacing a closed stream: the new one goes to the end (creation order).
            self._streams.pop(stream_id, None)
            self._streams[stream_id] = stream
            self._stamp(stream_id)
        mine.set()
        return stream, True

    def create_stream(self, stream_id: str) -> EventStream:
        """Create a stream; ``StreamExists`` if ``stream_id`` is taken."""
        return self._obtain(check_stream_id(stream_id), "create", exist_ok=False)[0]

    def get_or_create(self, stream_id: str) -> tuple[EventStream, bool]:
        """Return ``(stream, created)``; concurrent callers for one id share one stream."""
        return self._obtain(check_stream_id(stream_id), "get_or_create", exist_ok=True)

    def get_stream(self, stream_id: str) -> EventStream:
        """Return the stream; ``StreamNotFound`` if there is none with that id.

        A closed stream is still returned (so a late consumer can drain or replay it)
        until ``get_or_create`` / ``create_stream`` replace it; that lookup is not activity.
        """
        check_stream_id(stream_id)
        with self._lock:
            stream = self._streams.get(stream_id)
            if stream is None:
                raise StreamNotFound(stream_id=stream_id, op="get")
            if stream.closed:
                return stream
            self._stamp(stream_id)
        stream._touch()
        return stream

    # -- closing ------------------------------------------------------------------------

    def close_stream(self, stream_id: str) -> None:
        """Close the stream (even if already closed) and forget it."""
        check_stream_id(stream_id)
        with self._lock:
            stream = self._streams.pop(stream_id, None)
            if stream is None:
                raise StreamNotFound(stream_id=stream_id, op="close")
            del self._stamps[stream_id]
        _close_quietly(stream)

    def close_all(self) -> None:
        """Close and forget every stream."""
        with self._lock:
            streams = list(self._streams.values())
            self._streams.clear()
            self._stamps.clear()
        for stream in streams:
            _close_quietly(stream)

    def cleanup_inactive(self, threshold: float | timedelta) -> int:
        """Close and forget streams idle longer than ``threshold``; return how many.

        ``threshold`` is seconds or a ``timedelta``; ``<= 0`` does nothing. A stream is
        active when it is looked up, sent to or received from, and while a sender or a
        receiver waits on it.
        """
        seconds = check_threshold(threshold)
        if seconds <= 0:
            return 0
        with self._lock:
            ids = list(self._streams)  # one C-level copy; the rest goes chunk by chunk
        removed = 0
        chunk_size = self._CLEANUP_CHUNK
        for start in range(0, len(ids), chunk_size):
            with self._lock:
                snapshot = []
                for sid in ids[start:start + chunk_size]:
                    s = self._streams.get(sid)
                    if s is not None:
                        snapshot.append((sid, s, self._stamps[sid]))
            # Measured outside the lock: _idle_seconds takes the stream's lock.
            idle = [(sid, s, st) for sid, s, st in snapshot if s._idle_seconds() > seconds]
            if not idle:
                continue
            gone = []
            with self._lock:
                for sid, s, stamp in idle:
                    # Skip a stream that was replaced, removed or looked up meanwhile.
                    if self._streams.get(sid) is s and self._stamps.get(sid) == stamp:
                        del self._streams[sid]
                        del self._stamps[sid]
                        gone.append(s)
            for s in gone:
                _close_quietly(s)
            removed += len(gone)
        return removed

    # -- inspection ---------------------------------------------------------------------

    def list_streams(self) -> list[str]:
        """The ids of the managed streams, in creation order."""
        with self._lock:
            return list(self._streams)

    def stream_count(self) -> int:
        """How many streams the manager holds (closed ones not yet replaced included)."""
        with self._lock:
            return len(self._streams)

    def __len__(self) -> int:
        """``len(manager)``: the same as :meth:`stream_count`."""
        return self.stream_count()

    def __contains__(self, stream_id: object) -> bool:
        """``id in manager``; anything that is not a non-empty str is simply not in it."""
        # Container semantics: anything that cannot be an id is simply not in here.
        if not isinstance(stream_id, str) or not stream_id:
            return False
        with self._lock:
            return stream_id in self._streams

    @staticmethod
    def _info(stream_id: str, stream: EventStream) -> StreamInfo:
        age = stream._last_activity_age()
        senders, receivers = stream._waiting()
        return StreamInfo(
            id=stream_id,
            buffer_size=stream.buffer_size,
            current_load=len(stream),
            is_closed=stream.closed,
            last_activity=datetime.now(timezone.utc) - timedelta(seconds=age),
            dropped=stream.dropped,
            waiting_senders=senders,
            waiting_receivers=receivers,
        )

    def get_stream_info(self, stream_id: str) -> StreamInfo:
        """A snapshot of one stream; ``StreamNotFound`` if unknown. Not activity."""
        check_stream_id(stream_id)
        with self._lock:
            stream = self._streams.get(stream_id)
        if stream is None:
            raise StreamNotFound(stream_id=stream_id, op="info")
        return self._info(stream_id, stream)

    def list_stream_info(self) -> list[StreamInfo]:
        """Snapshots of every stream, in creation order."""
        with self._lock:
            items = list(self._streams.items())
        return [self._info(sid, s) for sid, s in items]

    # -- fork safety (see _forksafe) ------------------------------------------------------

    def _fork_acquire(self) -> None:
        self._lock.acquire()

    def _fork_release(self) -> None:
        self._lock.release()

    def _fork_reinit(self) -> None:
        self._lock = threading.Lock()
        # The threads constructing pending streams do not exist in the child, and no
        # thread there waits for them; forget them so the ids can be created again.
        self._pending = {}
