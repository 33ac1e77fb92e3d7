"""The pure-Python stream twin: a deque under one lock, two conditions, async waiter lists.

Sequence numbers come from one counter (the buffer is FIFO: the k-th event taken is
number k); history is a bounded deque of the last received events.

It runs wherever the compiled core cannot (PyPy, no compiler, FASTEVENTS_NO_EXTENSIONS=1)
and is the behavioural reference for ``_stream_c.pyx``: the same tests run against both.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator
from itertools import islice
from time import monotonic
from types import TracebackType
from typing import Any

from . import _aio, _forksafe
from ._args import (
    check_after,
    check_buffer_size,
    check_cancel,
    check_event,
    check_events,
    check_history,
    check_max_items,
    check_policy,
    check_timeout,
    stream_error,
    timeout_error,
)
from ._errors import Cancelled, HistoryLost, StreamClosed, StreamError, StreamFull
from ._event import Event
from ._stream_abc import Stream
from ._types import BackpressurePolicy

# Waits are cut into slices so that Ctrl-C, a cancel token and the deadline are noticed
# promptly even though nothing signals the condition for them.
WAIT_SLICE = 0.05

_BLOCK = BackpressurePolicy.BLOCK
_DROP = BackpressurePolicy.DROP


class _Waiter:
    """A parked task: its parker (made by ``_aio``) and its place in a waiter list."""

    __slots__ = ("parker", "parked", "receiver")

    def __init__(self, parker: _aio.Parker) -> None:
        self.parker = parker
        self.parked = False
        self.receiver = False


class PyEventStream(Stream):
    """A bounded, thread-safe event stream with sync and async APIs (pure Python).

    ``buffer_size`` (``<= 0`` means 100) bounds the events accepted and not yet
    received; ``policy`` says what a send into a full stream does; ``history`` is how
    many received events are kept for :meth:`replay`; ``stream_id`` names the stream in
    its errors (a manager sets it).
    """

    __slots__ = (
        "_buffer_size", "_policy", "_stream_id", "_buf", "_closed", "_last_activity",
        "_lock", "_not_empty", "_not_full", "_send_waiting", "_recv_waiting",
        "_asend_waiters", "_arecv_waiters",
        # Sequence numbers: the k-th event received has number k (the buffer is FIFO),
        # so one counter gives every number, and last_seq = _popped + len(_buf).
        "_popped", "_history", "_hist", "_dropped", "_instance_id",
        "__weakref__",
    )

    def __init__(
        self,
        buffer_size: int = 100,
        policy: BackpressurePolicy = BackpressurePolicy.BLOCK,
        *,
        stream_id: str | None = None,
        history: int = 0,
    ) -> None:
        if stream_id is not None and not isinstance(stream_id, str):
            raise TypeError(f"stream_id must be a str or None, not {type(stream_id).__name__}")
        self._buffer_size = check_buffer_size(buffer_size)
        self._policy = check_policy(policy)
        self._history = check_history(history)
        self._stream_id = stream_id
        self._buf: deque[Event] = deque()
        self._closed = False
        self._last_activity = monotonic()
        self._send_waiting = 0  # threads blocked in a sync send
        self._recv_waiting = 0
        self._asend_waiters: deque[_Waiter] = deque()
        self._arecv_waiters: deque[_Waiter] = deque()
        self._popped = 0
        # The last `history` received events, oldest first; the newest has number
        # _popped. A deque grows with use, so a large history costs nothing up front.
        self._hist: deque[Event] | None = (
            deque(maxlen=self._history) if self._history else None
        )
        self._dropped = 0
        self._instance_id: str | None = None
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
        """The most events the stream holds accepted and not yet received."""
        return self._buffer_size

    @property
    def stream_id(self) -> str | None:
        """The id the stream's errors name (set by a manager), or ``None``."""
        return self._stream_id

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (buffered events stay receivable)."""
        return self._closed

    @property
    def policy(self) -> BackpressurePolicy:
        """What a send into a full stream does: ``BLOCK`` (wait) or ``DROP`` (raise)."""
        return self._policy

    @policy.setter
    def policy(self, value: BackpressurePolicy) -> None:
        self._policy = check_policy(value)

    def set_backpressure_policy(self, policy: BackpressurePolicy) -> None:
        """Set :attr:`policy` (the Go package's spelling). Waiting senders keep waiting."""
        self._policy = check_policy(policy)

    @property
    def last_seq(self) -> int:
        """The sequence number of the last accepted event (0 before any)."""
        with self._lock:
            return self._popped + len(self._buf)

    @property
    def history(self) -> int:
        """How many of the most recently received events are kept for :meth:`replay`."""
        return self._history

    @property
    def dropped(self) -> int:
        """How many events were refused because the stream was full, without waiting
        (``send`` / ``send_many`` under ``DROP``, ``try_send`` returning ``False``)."""
        return self._dropped

    @property
    def instance_id(self) -> str:
        """An opaque token naming this stream object (random, made on first read)."""
        iid = self._instance_id
        if iid is None:
            with self._lock:
                if self._instance_id is None:
                    self._instance_id = os.urandom(8).hex()
                iid = self._instance_id
        return iid

    def __len__(self) -> int:
        """How many events are buffered now."""
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

    def _take(self) -> Event:
        """Take the next event (one is buffered): number it, keep it in history."""
        event = self._buf.popleft()
        self._popped += 1
        if self._hist is not None:
            self._hist.append(event)  # evicts (releases) the oldest once full
        self._last_activity = monotonic()
        return event

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
        """Send ``event``. Full: under ``DROP`` raise ``StreamFull`` at once; under
        ``BLOCK`` wait for room (``timeout`` → ``TimeoutError``, ``cancel`` set →
        ``Cancelled``, closed meanwhile → ``StreamClosed``)."""
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
                    self._dropped += 1
                    raise self._error(StreamFull, op)
                self._wait_for_room(timeout, cancel, op)
            self._buf.append(event)
            self._last_activity = monotonic()
            woken = self._wake_receivers(1)
        if woken:
            self._wake_all(woken)

    def try_send(self, event: Event) -> bool:
        """Send without waiting: ``False`` (and counted in :attr:`dropped`) when full."""
        check_event(event, self._stream_id, "try_send")
        with self._lock:
            if self._closed:
                raise self._error(StreamClosed, "try_send")
            if len(self._buf) >= self._buffer_size:
                self._dropped += 1
                return False
            self._buf.append(event)
            self._last_activity = monotonic()
            woken = self._wake_receivers(1)
        if woken:
            self._wake_all(woken)
        return True

    def send_many(self, events: Iterable[Event], *, timeout: float | None = None) -> int:
        """Validate every event, then enqueue them in order; return how many went in.

        Under ``DROP`` enqueue what fits (the rest counts in :attr:`dropped`); under
        ``BLOCK`` wait until all are in. Stopping early (close, timeout) the exception
        carries ``sent``.
        """
        batch = check_events(events, self._stream_id, "send_many")
        t = check_timeout(timeout)
        policy = self._policy
        deadline = None if t is None else monotonic() + t
        sent = 0
        try:
            while True:
                sent += self._send_some(batch, sent, "send_many")
                if sent >= len(batch):
                    break
                if policy == _DROP:
                    self._count_dropped(len(batch) - sent)
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
        if woken:
            self._wake_all(woken)
        return len(chunk)

    def _count_dropped(self, n: int) -> None:
        with self._lock:
            self._dropped += n

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
        """The next event, waiting for one; ``StreamClosed`` once closed and drained
        (``timeout`` → ``TimeoutError``, ``cancel`` set → ``Cancelled``)."""
        # One critical section for both: the number costs nothing to read here.
        return self.receive_entry(timeout=timeout, cancel=cancel)[1]

    def receive_entry(self, *, timeout: float | None = None,
                      cancel: threading.Event | None = None) -> tuple[int, Event]:
        """Like :meth:`receive`, with the event's sequence number: ``(seq, event)``."""
        t = check_timeout(timeout)
        check_cancel(cancel)
        with self._lock:
            if not self._buf and not self._wait_for_event(t, cancel, "receive"):
                raise self._error(StreamClosed, "receive")
            event = self._take()
            seq = self._popped
            woken = self._wake_senders(1)
        if woken:
            self._wake_all(woken)
        return seq, event

    def try_receive(self) -> Event | None:
        """The next event if one is buffered, else ``None`` (never waits)."""
        entry = self.try_receive_entry()
        return None if entry is None else entry[1]

    def try_receive_entry(self) -> tuple[int, Event] | None:
        """Like :meth:`try_receive`, with the event's sequence number."""
        with self._lock:
            if not self._buf:
                return None
            event = self._take()
            seq = self._popped
            woken = self._wake_senders(1)
        if woken:
            self._wake_all(woken)
        return seq, event

    def receive_many(self, max_items: int, *, timeout: float | None = None) -> list[Event]:
        """Wait for one event, then return up to ``max_items`` of those buffered
        (``[]`` once closed and drained; ``timeout`` → ``TimeoutError``)."""
        n = check_max_items(max_items)
        t = check_timeout(timeout)
        with self._lock:
            if not self._buf and not self._wait_for_event(t, None, "receive_many"):
                return []
            buf = self._buf
            # Build the result before taking anything: a MemoryError here leaves every
            # event in the stream (issue 9, item 6).
            batch = list(islice(buf, min(n, len(buf))))
            for _ in batch:
                buf.popleft()
            self._popped += len(batch)
            if self._hist is not None:
                self._hist.extend(batch)
            self._last_activity = monotonic()
            woken = self._wake_senders(len(batch))
        if woken:
            self._wake_all(woken)
        return batch

    def replay(self, after: int) -> list[tuple[int, Event]]:
        """Kept, already-received events numbered above ``after``, oldest first.

        ``HistoryLost`` (with ``.oldest``) when a received event numbered above
        ``after`` is no longer kept; ``after < 0`` is a ``ValueError``.
        """
        after = check_after(after)
        with self._lock:
            popped = self._popped
            if after >= popped:
                return []
            hist = self._hist
            kept = len(hist) if hist is not None else 0
            oldest = popped - kept + 1
            if after + 1 < oldest:
                raise HistoryLost(
                    f"events {after + 1}..{oldest - 1} are no longer kept"
                    f" (history={self._history})",
                    stream_id=self._stream_id, op="replay",
                    oldest=oldest if kept else None,
                )
            assert hist is not None  # kept > 0 here
            start = after + 1 - oldest
            return list(enumerate(islice(hist, start, None), after + 1))

    def entries(self, after: int | None = None) -> Iterator[tuple[int, Event]]:
        """Iterate ``(seq, event)``: ``replay(after)`` (when given), then
        :meth:`receive_entry` until closed and drained; later events numbered
        ``<= after`` are skipped."""
        if after is not None:
            after = check_after(after)
        return _aio.iter_entries(self, after)

    def __iter__(self) -> Iterator[Event]:
        """Iterate the events, blocking for each, until closed and drained."""
        return self

    def __next__(self) -> Event:
        """The next event (blocking); ``StopIteration`` once closed and drained."""
        with self._lock:
            if not self._buf and not self._wait_for_event(None, None, "receive"):
                raise StopIteration
            event = self._take()
            woken = self._wake_senders(1)
        if woken:
            self._wake_all(woken)
        return event

    def close(self) -> None:
        """Close: buffered events stay receivable, waiting senders get
        ``StreamClosed``, waiting receivers drain then end. Twice → ``StreamClosed``."""
        with self._lock:
            if self._closed:
                raise self._error(StreamClosed, "close")
            self._closed = True
            self._not_empty.notify_all()
            self._not_full.notify_all()
            woken = _unlink(self._arecv_waiters, len(self._arecv_waiters))
            woken += _unlink(self._asend_waiters, len(self._asend_waiters))
        if woken:
            self._wake_all(woken)

    def __enter__(self) -> PyEventStream:
        """``with stream:`` closes the stream on exit (if still open)."""
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Close the stream if it is still open (exceptions propagate unchanged)."""
        if not self._closed:
            try:
                self.close()
            except StreamClosed:  # closed by another thread meanwhile
                pass

    # -- async API (asyncio or trio) --------------------------------------------------

    async def asend(self, event: Event, *, timeout: float | None = None) -> None:
        """:meth:`send` from a task (asyncio or trio); waits without blocking the loop."""
        check_event(event, self._stream_id, "send")
        await _aio.send(self, event, check_timeout(timeout))

    async def areceive(self, *, timeout: float | None = None) -> Event:
        """:meth:`receive` from a task (asyncio or trio)."""
        return await _aio.receive(self, check_timeout(timeout))

    async def areceive_entry(self, *, timeout: float | None = None) -> tuple[int, Event]:
        """:meth:`receive_entry` from a task (asyncio or trio)."""
        return await _aio.receive_entry(self, check_timeout(timeout))

    async def asend_many(self, events: Iterable[Event], *,
                         timeout: float | None = None) -> int:
        """:meth:`send_many` from a task (asyncio or trio)."""
        batch = check_events(events, self._stream_id, "send_many")
        return await _aio.send_many(self, batch, check_timeout(timeout))

    async def areceive_many(self, max_items: int, *,
                            timeout: float | None = None) -> list[Event]:
        """:meth:`receive_many` from a task (asyncio or trio)."""
        n = check_max_items(max_items)
        return await _aio.receive_many(self, n, check_timeout(timeout))

    def aentries(self, after: int | None = None) -> AsyncIterator[tuple[int, Event]]:
        """:meth:`entries` for ``async for`` (asyncio or trio)."""
        if after is not None:
            after = check_after(after)
        return _aio.aentries(self, after)

    def __aiter__(self) -> AsyncIterator[Event]:
        """``async for event in stream``: ends when closed and drained."""
        return self

    async def __anext__(self) -> Event:
        """The next event from a task; ``StopAsyncIteration`` once closed and drained."""
        try:
            return await _aio.receive(self, None)
        except StreamClosed:
            raise StopAsyncIteration from None

    # -- primitives for _aio (see its docstring) --------------------------------------

    def _new_waiter(self, parker: _aio.Parker) -> _Waiter:
        return _Waiter(parker)

    def _recv_or_park(self, w: _Waiter | None) -> tuple[int, int, Event | None]:
        with self._lock:
            if self._buf:
                event = self._take()
                seq = self._popped
                woken = self._wake_senders(1)
            elif self._closed:
                return _aio.CLOSED, 0, None
            elif w is None:
                return _aio.EMPTY, 0, None
            else:
                w.parked = True
                w.receiver = True
                self._arecv_waiters.append(w)
                return _aio.PARKED, 0, None
        if woken:
            self._wake_all(woken)
        return _aio.GOT, seq, event

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
        if woken:
            self._wake_all(woken)
        return _aio.SENT

    def _unpark(self, w: _Waiter) -> bool:
        with self._lock:
            if not w.parked:
                return False
            w.parked = False
            (self._arecv_waiters if w.receiver else self._asend_waiters).remove(w)
            return True

    def _handoff(self, receivers: int, senders: int) -> list[_Waiter]:
        """Unlink waiters to take over wake-ups that were not taken, when there is
        something for them (an event or room, or the stream closed)."""
        with self._lock:
            woken: list[_Waiter] = []
            if receivers and (self._buf or self._closed):
                woken = self._wake_receivers(receivers)
            if senders and (len(self._buf) < self._buffer_size or self._closed):
                woken += self._wake_senders(senders)
            return woken

    def _pass_wake(self, receivers: bool) -> None:
        woken = self._handoff(1, 0) if receivers else self._handoff(0, 1)
        if woken:
            self._wake_all(woken)

    def _wake_all(self, waiters: list[_Waiter]) -> None:
        """Wake unlinked waiters, FIFO (lock not held).

        A wake-up that a waiter cannot take (``wake()`` False: dead or stopped loop,
        finished trio run) or that failed with an exception is handed on, so it is never
        lost; an exception (e.g. Ctrl-C inside ``call_soon_threadsafe``) stops neither
        the other wake-ups nor the hand-offs; the first one goes to
        ``_aio.raise_after_waking`` at the end (a Ctrl-C is re-delivered, not raised:
        this call's own operation has taken effect and must not be lost).
        """
        first: BaseException | None = None
        while waiters:
            lost_r = lost_s = 0
            for w in waiters:
                try:
                    if w.parker.wake():
                        continue
                except BaseException as exc:
                    if first is None:
                        first = exc
                if w.receiver:
                    lost_r += 1
                else:
                    lost_s += 1
            waiters = []
            if lost_r or lost_s:
                try:
                    waiters = self._handoff(lost_r, lost_s)
                except BaseException as exc:
                    if first is None:
                        first = exc
        if first is not None:
            try:
                _aio.raise_after_waking(first)
            finally:
                first = None  # no reference cycle through the traceback

    # -- manager hooks ----------------------------------------------------------------

    def _touch(self) -> None:
        self._last_activity = monotonic()

    def _idle_seconds(self) -> float:
        with self._lock:
            if (self._send_waiting or self._recv_waiting
                    or self._asend_waiters or self._arecv_waiters):
                return 0.0
            return max(0.0, monotonic() - self._last_activity)

    def _waiting(self) -> tuple[int, int]:
        """(senders, receivers) waiting now, sync and async together."""
        with self._lock:
            return (self._send_waiting + len(self._asend_waiters),
                    self._recv_waiting + len(self._arecv_waiters))

    def _last_activity_age(self) -> float:
        """Seconds since the last real operation (waiters do not count)."""
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
        # Nor do the tasks of other threads' loops or trio runs: drop their waiters, or
        # the child's first wake-up would be spent on one (issue 9, item 3).
        for waiters in (self._arecv_waiters, self._asend_waiters):
            alive = [w for w in waiters if _alive_after_fork(w)]
            if len(alive) != len(waiters):
                for w in waiters:
                    w.parked = False
                waiters.clear()
                for w in alive:
                    w.parked = True
                    waiters.append(w)
        if self._arecv_waiters or self._asend_waiters:
            # A wake-up may have been in flight to a task that is gone: give one to a
            # surviving waiter (a spurious wake-up is harmless).
            woken = self._handoff(1, 1)
            if woken:
                self._wake_all(woken)


def _alive_after_fork(w: _Waiter) -> bool:
    try:
        return bool(w.parker.alive_after_fork())
    except Exception:
        return False


def _unlink(waiters: deque[_Waiter], n: int) -> list[_Waiter]:
    """Take up to n parked waiters off a list (lock held), FIFO; they are woken after
    unlock."""
    if not waiters:
        return []
    taken = []
    for _ in range(min(n, len(waiters))):
        w = waiters.popleft()
        w.parked = False
        taken.append(w)
    return taken
