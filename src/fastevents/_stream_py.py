"""The pure-Python stream twin: a deque under one lock, two conditions, async waiter lists.

It runs wherever the compiled core cannot (PyPy, no compiler, FASTEVENTS_NO_EXTENSIONS=1)
and is the behavioural reference for ``_stream_c.pyx``: the same tests run against both.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator
from time import monotonic
from types import TracebackType
from typing import Any

from . import _aio, _forksafe
from ._args import (
    check_buffer_size,
    check_cancel,
    check_event,
    check_events,
    check_max_items,
    check_policy,
    check_timeout,
    stream_error,
    timeout_error,
)
from ._errors import Cancelled, StreamClosed, StreamError, StreamFull
from ._event import Event
from ._types import BackpressurePolicy

# Waits are cut into slices so that Ctrl-C, a cancel token and the deadline are noticed
# promptly even though nothing signals the condition for them.
WAIT_SLICE = 0.05

_BLOCK = BackpressurePolicy.BLOCK
_DROP = BackpressurePolicy.DROP


class _Waiter:
    """A parked asyncio task: its loop and the future it awaits."""

    __slots__ = ("loop", "fut", "parked", "receiver")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.fut: asyncio.Future[Any] = loop.create_future()
        self.parked = False
        self.receiver = False


class PyEventStream:
    """A bounded, thread-safe event stream with sync and async APIs (pure Python)."""

    __slots__ = (
        "_buffer_size", "_policy", "_stream_id", "_buf", "_closed", "_last_activity",
        "_lock", "_not_empty", "_not_full", "_send_waiting", "_recv_waiting",
        "_asend_waiters", "_arecv_waiters", "__weakref__",
    )

    def __init__(
        self,
        buffer_size: int = 100,
        policy: BackpressurePolicy = BackpressurePolicy.BLOCK,
        *,
        stream_id: str | None = None,
    ) -> None:
        if stream_id is not None and not isinstance(stream_id, str):
            raise TypeError(f"stream_id must be a str or None, not {type(stream_id).__name__}")
        self._buffer_size = check_buffer_size(buffer_size)
        self._policy = check_policy(policy)
        self._stream_id = stream_id
        self._buf: deque[Event] = deque()
        self._closed = False
        self._last_activity = monotonic()
        self._send_waiting = 0  # threads blocked in a sync send
        self._recv_waiting = 0
        self._asend_waiters: deque[_Waiter] = deque()
        self._arecv_waiters: deque[_Waiter] = deque()
        self._new_locks()
        _forksafe.register(self)

    def _new_locks(self) -> None:
        # An RLock, though never re-entered: Condition.wait() re-takes a plain Lock with an
        # interruptible acquire, so a Ctrl-C landing while the lock is contended leaves it
        # released, and the `with` block then releases a lock this thread does not hold.
        # RLock's _acquire_restore (C) re-takes it without being interruptible.
        self._lock = threading.RLock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)

    # -- properties -------------------------------------------------------------------

    @property
    def buffer_size(self) -> int:
        return self._buffer_size

    @property
    def stream_id(self) -> str | None:
        return self._stream_id

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def policy(self) -> BackpressurePolicy:
        return self._policy

    @policy.setter
    def policy(self, value: BackpressurePolicy) -> None:
        self._policy = check_policy(value)

    def set_backpressure_policy(self, policy: BackpressurePolicy) -> None:
        self._policy = check_policy(policy)

    def __len__(self) -> int:
        return len(self._buf)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<PyEventStream id={self._stream_id!r} {state} {len(self._buf)}/{self._buffer_size}"
            f" policy={self._policy.name}>"
        )

    # -- errors -----------------------------------------------------------------------

    def _error(self, cls: type[StreamError], op: str, detail: str | None = None) -> StreamError:
        return stream_error(cls, self._stream_id, op, self._buffer_size, detail)

    def _timeout_error(self, op: str) -> TimeoutError:
        return timeout_error(self._stream_id, op)

    # -- the critical sections (always called with self._lock held) -------------------

    def _wake_receivers(self, n: int) -> list[_Waiter]:
        """After adding n events: signal sync receivers, unlink async ones to wake."""
        if self._recv_waiting:
            if n == 1:
                self._not_empty.notify()
            else:
                self._not_empty.notify_all()
        return _unlink(self._arecv_waiters, n)

    def _wake_senders(self, n: int) -> list[_Waiter]:
        if self._send_waiting:
            if n == 1:
                self._not_full.notify()
            else:
                self._not_full.notify_all()
        return _unlink(self._asend_waiters, n)

    # -- sync API ---------------------------------------------------------------------

    def send(self, event: Event, *, timeout: float | None = None,
             cancel: threading.Event | None = None) -> None:
        check_event(event, self._stream_id, "send")
        t = check_timeout(timeout)
        check_cancel(cancel)
        # The policy is read once: a later switch does not affect this send.
        self._send(event, t, cancel, "send", self._policy)

    def _send(self, event: Event, timeout: float | None, cancel: Any, op: str,
              policy: BackpressurePolicy) -> None:
        """Enqueue one validated event, waiting under BLOCK; raises on failure."""
        with self._lock:
            if self._closed:
                raise self._error(StreamClosed, op)
            if len(self._buf) >= self._buffer_size:
                if policy == _DROP:
                    raise self._error(StreamFull, op)
                self._wait_for_room(timeout, cancel, op)
            self._buf.append(event)
            self._last_activity = monotonic()
            woken = self._wake_receivers(1)
        self._wake_all(woken)

    def try_send(self, event: Event) -> bool:
        check_event(event, self._stream_id, "try_send")
        with self._lock:
            if self._closed:
                raise self._error(StreamClosed, "try_send")
            if len(self._buf) >= self._buffer_size:
                return False
            self._buf.append(event)
            self._last_activity = monotonic()
            woken = self._wake_receivers(1)
        self._wake_all(woken)
        return True

    def send_many(self, events: Iterable[Event], *, timeout: float | None = None) -> int:
        batch = check_events(events, self._stream_id, "send_many")
        t = check_timeout(timeout)
        policy = self._policy
        deadline = None if t is None else monotonic() + t
        sent = 0
        try:
            while True:
                sent += self._send_some(batch, sent, "send_many")
                if sent >= len(batch) or policy == _DROP:
                    break
                # Full: wait for room for the next event (the wait pushes it).
                remaining = None if deadline is None else max(0.0, deadline - monotonic())
                self._send(batch[sent], remaining, None, "send_many", _BLOCK)
                sent += 1
        except (StreamClosed, TimeoutError) as exc:
            exc.sent = sent  # type: ignore[union-attr]  # TimeoutError is the builtin
            raise
        return sent

    def _send_some(self, batch: list[Event], start: int, op: str) -> int:
        """Push as many of batch[start:] as fit, under one lock; returns how many."""
        with self._lock:
            if self._closed:
                raise self._error(StreamClosed, op)
            chunk = batch[start:start + self._buffer_size - len(self._buf)]
            if not chunk:
                return 0
            self._buf.extend(chunk)
            self._last_activity = monotonic()
            woken = self._wake_receivers(len(chunk))
        self._wake_all(woken)
        return len(chunk)

    def _next_slice(self, deadline: float | None, cancel: Any, op: str) -> float:
        """How long the next wait slice may be; raises once cancelled or past the deadline."""
        if cancel is not None and cancel.is_set():
            raise self._error(Cancelled, op)
        if deadline is None:
            return WAIT_SLICE
        remaining = deadline - monotonic()
        if remaining <= 0:
            raise self._timeout_error(op)
        return min(WAIT_SLICE, remaining)

    def _wait_for_room(self, timeout: float | None, cancel: Any, op: str) -> None:
        """Wait (lock held) until there is room; raise on close, timeout, cancel."""
        deadline = None if timeout is None else monotonic() + timeout
        self._send_waiting += 1
        try:
            while len(self._buf) >= self._buffer_size:
                if self._closed:
                    raise self._error(StreamClosed, op)
                self._not_full.wait(self._next_slice(deadline, cancel, op))
            if self._closed:
                raise self._error(StreamClosed, op)
        finally:
            self._send_waiting -= 1

    def _wait_for_event(self, timeout: float | None, cancel: Any, op: str) -> bool:
        """Wait (lock held) until an event is buffered; False when closed and drained."""
        deadline = None if timeout is None else monotonic() + timeout
        self._recv_waiting += 1
        try:
            while not self._buf:
                if self._closed:
                    return False
                self._not_empty.wait(self._next_slice(deadline, cancel, op))
            return True
        finally:
            self._recv_waiting -= 1

    def receive(self, *, timeout: float | None = None,
                cancel: threading.Event | None = None) -> Event:
        t = check_timeout(timeout)
        check_cancel(cancel)
        with self._lock:
            if not self._buf and not self._wait_for_event(t, cancel, "receive"):
                raise self._error(StreamClosed, "receive")
            event = self._buf.popleft()
            self._last_activity = monotonic()
            woken = self._wake_senders(1)
        self._wake_all(woken)
        return event

    def try_receive(self) -> Event | None:
        with self._lock:
            if not self._buf:
                return None
            event = self._buf.popleft()
            self._last_activity = monotonic()
            woken = self._wake_senders(1)
        self._wake_all(woken)
        return event

    def receive_many(self, max_items: int, *, timeout: float | None = None) -> list[Event]:
        n = check_max_items(max_items)
        t = check_timeout(timeout)
        with self._lock:
            if not self._buf and not self._wait_for_event(t, None, "receive_many"):
                return []
            buf = self._buf
            batch = [buf.popleft() for _ in range(min(n, len(buf)))]
            self._last_activity = monotonic()
            woken = self._wake_senders(len(batch))
        self._wake_all(woken)
        return batch

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        with self._lock:
            if not self._buf and not self._wait_for_event(None, None, "receive"):
                raise StopIteration
            event = self._buf.popleft()
            self._last_activity = monotonic()
            woken = self._wake_senders(1)
        self._wake_all(woken)
        return event

    def close(self) -> None:
        with self._lock:
            if self._closed:
                raise self._error(StreamClosed, "close")
            self._closed = True
            self._not_empty.notify_all()
            self._not_full.notify_all()
            woken = _unlink(self._arecv_waiters, len(self._arecv_waiters))
            woken += _unlink(self._asend_waiters, len(self._asend_waiters))
        self._wake_all(woken)

    def __enter__(self) -> PyEventStream:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self._closed:
            try:
                self.close()
            except StreamClosed:  # closed by another thread meanwhile
                pass

    # -- asyncio API ------------------------------------------------------------------

    async def asend(self, event: Event, *, timeout: float | None = None) -> None:
        check_event(event, self._stream_id, "send")
        await _aio.send(self, event, check_timeout(timeout))

    async def areceive(self, *, timeout: float | None = None) -> Event:
        return await _aio.receive(self, check_timeout(timeout))

    async def asend_many(self, events: Iterable[Event], *,
                         timeout: float | None = None) -> int:
        batch = check_events(events, self._stream_id, "send_many")
        return await _aio.send_many(self, batch, check_timeout(timeout))

    async def areceive_many(self, max_items: int, *,
                            timeout: float | None = None) -> list[Event]:
        n = check_max_items(max_items)
        return await _aio.receive_many(self, n, check_timeout(timeout))

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        try:
            return await _aio.receive(self, None)
        except StreamClosed:
            raise StopAsyncIteration from None

    # -- primitives for _aio (see its docstring) --------------------------------------

    def _new_waiter(self, loop: asyncio.AbstractEventLoop) -> _Waiter:
        return _Waiter(loop)

    def _recv_or_park(self, w: _Waiter | None) -> tuple[int, Event | None]:
        with self._lock:
            if self._buf:
                event = self._buf.popleft()
                self._last_activity = monotonic()
                woken = self._wake_senders(1)
            elif self._closed:
                return _aio.CLOSED, None
            elif w is None:
                return _aio.EMPTY, None
            else:
                w.parked = True
                w.receiver = True
                self._arecv_waiters.append(w)
                return _aio.PARKED, None
        self._wake_all(woken)
        return _aio.GOT, event

    def _send_or_park(self, w: _Waiter | None, event: Event, op: str) -> int:
        with self._lock:
            if self._closed:
                raise self._error(StreamClosed, op)
            if len(self._buf) < self._buffer_size:
                self._buf.append(event)
                self._last_activity = monotonic()
                woken = self._wake_receivers(1)
            elif w is None:
                return _aio.FULL
            else:
                w.parked = True
                self._asend_waiters.append(w)
                return _aio.PARKED
        self._wake_all(woken)
        return _aio.SENT

    def _unpark(self, w: _Waiter) -> bool:
        with self._lock:
            if not w.parked:
                return False
            w.parked = False
            (self._arecv_waiters if w.receiver else self._asend_waiters).remove(w)
            return True

    def _pass_wake(self, receivers: bool) -> None:
        with self._lock:
            if receivers:
                woken = self._wake_receivers(1) if self._buf or self._closed else []
            else:
                full = len(self._buf) >= self._buffer_size
                woken = self._wake_senders(1) if not full or self._closed else []
        self._wake_all(woken)

    def _wake_all(self, waiters: list[_Waiter]) -> None:
        """Wake unlinked waiters (lock not held); a wake-up a dead loop cannot take is
        handed on, so it is never lost."""
        for w in waiters:
            if not _aio.wake(w.loop, w.fut):
                self._pass_wake(w.receiver)

    # -- manager hooks ----------------------------------------------------------------

    def _touch(self) -> None:
        self._last_activity = monotonic()

    def _idle_seconds(self) -> float:
        with self._lock:
            if (self._send_waiting or self._recv_waiting
                    or self._asend_waiters or self._arecv_waiters):
                return 0.0
            return max(0.0, monotonic() - self._last_activity)

    # -- fork safety (see _forksafe) ---------------------------------------------------

    def _fork_acquire(self) -> None:
        self._lock.acquire()

    def _fork_release(self) -> None:
        self._lock.release()

    def _fork_reinit(self) -> None:
        # Threads that were waiting in the parent do not exist in the child.
        self._new_locks()
        self._send_waiting = 0
        self._recv_waiting = 0


def _unlink(waiters: deque[_Waiter], n: int) -> list[_Waiter]:
    """Take up to n parked waiters off a list (lock held); they are woken after unlock."""
    if not waiters:
        return []
    taken = []
    for _ in range(min(n, len(waiters))):
        w = waiters.popleft()
        w.parked = False
        taken.append(w)
    return taken
