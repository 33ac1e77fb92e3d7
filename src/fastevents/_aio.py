"""The async side of a stream (asyncio and trio), written once for both twins.

Parkers
-------
A task that must wait is represented by a *parker*, made here for the running async
library (``_runtime()``): :class:`AsyncioParker` (a future of the running loop) or
:class:`TrioParker` (a ``trio.Event`` plus the run's token). The twins only call,
outside their critical section and with the GIL held, the two methods below. (One
shortcut: the compiled twin parks an asyncio task that waits without a timeout on an
``AsyncioParker`` it builds itself and yields that parker's future from its awaitable,
with no coroutine of this module; it then resolves the future directly when woken on
the loop's own thread, as ``wake()`` would, and follows the rules below for the rest.)

``parker.wake() -> bool``
    wake the task, from any thread. ``False`` means the wake-up was not, or may not
    be, taken: the asyncio loop is closed or not running (stopped after
    ``run_until_complete``), or the trio run has finished. The twin must then hand the
    wake-up on (``_pass_wake``). ``wake()`` may raise (e.g. ``KeyboardInterrupt``
    inside ``call_soon_threadsafe``); the twin then treats that waiter as not woken,
    hands the wake-up on too, wakes every other waiter of the chain, and re-raises the
    first exception afterwards.
``parker.alive_after_fork() -> bool``
    called in a child process right after ``os.fork()``, in the forking thread: whether
    the task can still run there (its loop or trio run belongs to the forking thread).
    Waiters for which it is ``False`` are unlinked and dropped by the twin.

Primitives a twin provides to this module (each one short critical section)
---------------------------------------------------------------------------
``_new_waiter(parker)``
    a fresh, unparked waiter object; the twin stores ``parker`` as ``w.parker``.
``_recv_or_park(w)`` -> ``(code, seq, event)``
    take the next event (``GOT``; ``seq`` is its sequence number, and taking it records
    it in the history ring in the same critical section); or report the stream closed
    and drained (``CLOSED``); or, when it is empty, append ``w`` to the receivers'
    waiter list (``PARKED``) or, with ``w=None``, report it (``EMPTY``). ``seq`` is 0
    and ``event`` ``None`` unless ``GOT``. The check and the parking are atomic, so a
    sender that adds an event right after this sees the waiter: no lost wake-ups.
``_send_or_park(w, event, op)`` -> code
    the same for a sender: ``SENT``, ``PARKED``, ``FULL`` (``w=None``); raises
    ``StreamClosed`` on a closed stream.
``_send_some(batch, start, op)`` -> int
    push as many of ``batch[start:]`` as fit under one lock (so a batch stays contiguous
    while there is room); raises ``StreamClosed`` on a closed stream, even for nothing.
``_count_dropped(n)``
    add ``n`` to ``dropped`` (events refused under ``DROP`` by ``asend`` / ``asend_many``).
``_unpark(w)`` -> bool
    remove ``w`` if it is still parked (True); False means a waker already took it off
    the list to wake it, i.e. this waiter has consumed a wake-up.
``_pass_wake(receivers)``
    hand a consumed wake-up on to the next waiter, when there is something for it
    (receivers: an event buffered or the stream closed; senders: room or closed).
``replay(after)``, ``len(stream)``
    the public methods (``replay`` for :func:`aentries` / :func:`iter_entries`; ``len``
    as a size hint by :func:`receive_many`, read without any guarantee).

Rules both twins follow when waking (the compiled ``_wake`` is therefore not
``noexcept``):

- async waiters are woken FIFO, each through ``w.parker.wake()``;
- waking a chain never stops at an exception: every waiter is woken, a waiter whose
  ``wake()`` returned ``False`` or raised has its wake-up handed on (``_pass_wake``,
  guarded the same way), then the first exception goes to :func:`raise_after_waking`
  (a Ctrl-C is re-delivered rather than raised, so the call keeps its result);
- a woken waiter takes its own item after waking (this module retries the operation),
  so a task cancelled at any point can neither lose nor duplicate an event: if it was
  cancelled after a wake-up it passes the wake-up on. Spurious wake-ups are harmless.

``import fastevents`` never imports trio: it is looked up in ``sys.modules`` only when a
task has to wait (a trio run has imported it by then).
"""

from __future__ import annotations

import _thread
import asyncio
import signal
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

from ._errors import StreamClosed, StreamError, StreamFull
from ._event import Event
from ._types import BackpressurePolicy

GOT = 0  # also SENT
SENT = 0
CLOSED = 1
PARKED = 2
EMPTY = 3  # also FULL
FULL = 3

_TIMED_OUT = object()


class Parker(Protocol):
    def wake(self) -> bool: ...
    def alive_after_fork(self) -> bool: ...
    async def wait(self, deadline: float | None) -> bool: ...


class _AsyncStream(Protocol):
    policy: BackpressurePolicy

    @property
    def stream_id(self) -> str | None: ...

    def __len__(self) -> int: ...
    def _new_waiter(self, parker: Any) -> Any: ...
    def _recv_or_park(self, w: Any) -> tuple[int, int, Event | None]: ...
    def _send_or_park(self, w: Any, event: Event, op: str) -> int: ...
    def _send_some(self, batch: list[Event], start: int, op: str) -> int: ...
    def _count_dropped(self, n: int) -> None: ...
    def _unpark(self, w: Any) -> bool: ...
    def _pass_wake(self, receivers: bool) -> None: ...
    def _error(
        self, cls: type[StreamError], op: str, detail: str | None = None
    ) -> StreamError: ...
    def _timeout_error(self, op: str) -> TimeoutError: ...
    def replay(self, after: int) -> list[tuple[int, Event]]: ...


def resolve(fut: asyncio.Future[Any], value: Any = None) -> None:
    if not fut.done():
        fut.set_result(value)


def raise_after_waking(exc: BaseException) -> None:
    """The end of a wake-up pass that hit an exception, run by both twins.

    The pass runs after the caller's own operation took effect (an event taken or
    accepted, the stream closed), so raising from that call would lose what it did: a
    receive's event would be gone with the exception. A ``KeyboardInterrupt`` raised
    on the main thread (Ctrl-C arriving inside ``call_soon_threadsafe``) is therefore
    re-delivered instead, as a new SIGINT that Python raises at its next check, as if
    the key had been pressed a moment later; the call returns its result. Any other
    exception (a bug, a ``MemoryError``), or a ``KeyboardInterrupt`` that cannot be
    re-delivered (another thread, SIGINT not handled by Python), is raised as before.
    """
    if (isinstance(exc, KeyboardInterrupt)
            and threading.current_thread() is threading.main_thread()
            and callable(signal.getsignal(signal.SIGINT))):
        _thread.interrupt_main(signal.SIGINT)
        return
    raise exc


# -- asyncio ------------------------------------------------------------------------------


class AsyncioParker:
    """A task of an asyncio loop waiting on a future of that loop."""

    __slots__ = ("loop", "fut", "thread")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.fut: asyncio.Future[Any] = loop.create_future()
        # The thread running the loop (we are on it): after fork only its loop survives.
        self.thread = threading.get_ident()

    def wake(self) -> bool:
        loop = self.loop
        if asyncio._get_running_loop() is loop:
            # Same thread as the waiter's loop: no need for the self-pipe round trip.
            resolve(self.fut)
            return True
        try:
            loop.call_soon_threadsafe(resolve, self.fut)
        except RuntimeError:  # the loop is closed: this task will never run again
            return False
        # Scheduled; but a loop that is stopped (not closed) may never run it, and a live
        # task elsewhere would starve with the item buffered. Report it not taken: the
        # twin hands the wake-up on, and if this loop runs again its task just retries.
        return loop.is_running()

    def alive_after_fork(self) -> bool:
        return self.thread == threading.get_ident()

    async def wait(self, deadline: float | None) -> bool:
        """Await the wake-up; False when the deadline (loop time) passed first."""
        timer = None
        if deadline is not None:
            timer = self.loop.call_at(deadline, resolve, self.fut, _TIMED_OUT)
        try:
            await self.fut
        finally:
            if timer is not None:
                timer.cancel()
        return self.fut.result() is not _TIMED_OUT


class _AsyncioRuntime:
    __slots__ = ("loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def time(self) -> float:
        return self.loop.time()

    def parker(self) -> AsyncioParker:
        return AsyncioParker(self.loop)


# -- trio ---------------------------------------------------------------------------------


class TrioParker:
    """A task of a trio run waiting on a ``trio.Event``."""

    __slots__ = ("trio", "token", "event", "thread")

    def __init__(self, trio: Any, token: Any) -> None:
        self.trio = trio
        self.token = token
        self.event = trio.Event()
        self.thread = threading.get_ident()

    def wake(self) -> bool:
        if threading.get_ident() == self.thread and _current_trio_token(self.trio) is self.token:
            # Inside the waiter's own run (trio.Event is not thread-safe, but this is
            # its thread): set it directly.
            self.event.set()
            return True
        try:
            self.token.run_sync_soon(self.event.set)
        except self.trio.RunFinishedError:  # the run is over: the task will never run
            return False
        return True

    def alive_after_fork(self) -> bool:
        return self.thread == threading.get_ident()

    async def wait(self, deadline: float | None) -> bool:
        """Wait for the wake-up; False when the deadline (trio clock) passed first.

        The caller's own cancel scopes apply as for any trio checkpoint.
        """
        if deadline is None:
            await self.event.wait()
            return True
        with self.trio.move_on_at(deadline):
            await self.event.wait()
        return bool(self.event.is_set())


class _TrioRuntime:
    __slots__ = ("trio", "token")

    def __init__(self, trio: Any, token: Any) -> None:
        self.trio = trio
        self.token = token

    def time(self) -> float:
        return float(self.trio.current_time())

    def parker(self) -> TrioParker:
        return TrioParker(self.trio, self.token)


def _current_trio_token(trio: Any) -> Any:
    try:
        return trio.lowlevel.current_trio_token()
    except RuntimeError:  # not inside a trio run (on this thread)
        return None


# -- which library is running us ------------------------------------------------------------


def _runtime() -> _AsyncioRuntime | _TrioRuntime:
    """The async library driving the current task (only asked when a task must wait)."""
    loop = asyncio._get_running_loop()
    if loop is not None:
        return _AsyncioRuntime(loop)
    trio = sys.modules.get("trio")
    if trio is not None:
        token = _current_trio_token(trio)
        if token is not None:
            return _TrioRuntime(trio, token)
    name = "none"
    sniffio = sys.modules.get("sniffio")
    if sniffio is not None:
        try:
            name = sniffio.current_async_library()
        except Exception:  # sniffio.AsyncLibraryNotFoundError
            pass
    raise RuntimeError(
        "fastevents: the async stream methods need a running asyncio event loop or trio "
        f"run (anyio works on either backend); async library found: {name}"
    )


# -- the async operations -------------------------------------------------------------------


async def _wait(
    stream: _AsyncStream, w: Any, parker: Parker, deadline: float | None, receivers: bool,
) -> None:
    """Wait for a wake-up (or the deadline) for a parked waiter, leaving it unparked."""
    try:
        if deadline is None and isinstance(parker, AsyncioParker):
            # The common case without its coroutine level (this is every suspension of
            # a producer/consumer pair): without a timer, wait() would just await fut.
            await parker.fut
            woken = True
        else:
            woken = await parker.wait(deadline)
    except BaseException:
        # Cancelled (or interrupted). If a waker had already picked us, its wake-up
        # would be lost with us: hand it on.
        if not stream._unpark(w):
            stream._pass_wake(receivers)
        raise
    if not woken:
        # Our own deadline; make sure we are off the list. If a waker raced the timer,
        # the caller's final attempt takes what the wake-up was for.
        stream._unpark(w)


def _expired(rt: _AsyncioRuntime | _TrioRuntime, deadline: float | None) -> bool:
    return deadline is not None and rt.time() >= deadline


async def receive_entry(
    stream: _AsyncStream, timeout: float | None, op: str = "receive"
) -> tuple[int, Event]:
    """``areceive_entry``: ``(seq, event)``; ``StreamClosed`` once closed and drained."""
    rt = None
    deadline = None
    while True:
        # Try without a waiter first: after a wake-up this usually succeeds, and a
        # waiter costs a future.
        code, seq, event = stream._recv_or_park(None)
        if code == GOT:
            return seq, event  # type: ignore[return-value]
        if code == CLOSED:
            raise stream._error(StreamClosed, op)
        if rt is None:
            rt = _runtime()
            deadline = None if timeout is None else rt.time() + timeout
        if _expired(rt, deadline):
            raise stream._timeout_error(op)
        parker = rt.parker()
        w = stream._new_waiter(parker)
        code, seq, event = stream._recv_or_park(w)
        if code == GOT:
            return seq, event  # type: ignore[return-value]
        if code == CLOSED:
            raise stream._error(StreamClosed, op)
        await _wait(stream, w, parker, deadline, receivers=True)


async def receive(stream: _AsyncStream, timeout: float | None, op: str = "receive") -> Event:
    """``areceive``: the next event; ``StreamClosed`` once closed and drained."""
    return (await receive_entry(stream, timeout, op))[1]


async def receive_many(
    stream: _AsyncStream, max_items: int, timeout: float | None
) -> list[Event]:
    """``areceive_many``: wait for one event, then take up to ``max_items`` buffered."""
    try:
        first = await receive(stream, timeout, op="receive_many")
    except StreamClosed:
        return []
    # Size the list before taking more (len is only a hint here), so that a MemoryError
    # cannot strike between taking an event and keeping it (issue 9, item 6).
    batch: list[Any] = [None] * min(max_items, len(stream) + 1)
    batch[0] = first
    k = 1
    while k < max_items:
        code, _, event = stream._recv_or_park(None)
        if code != GOT:
            break
        if k < len(batch):
            batch[k] = event
        else:  # more arrived since the hint
            batch.append(event)
        k += 1
    del batch[k:]
    return batch


async def send(stream: _AsyncStream, event: Event, timeout: float | None) -> None:
    """``asend`` after the event was validated."""
    policy = stream.policy  # read once: a later switch does not affect this send
    code = stream._send_or_park(None, event, "send")
    if code == SENT:
        return
    if policy == BackpressurePolicy.DROP:
        stream._count_dropped(1)
        raise stream._error(StreamFull, "send")
    await send_blocking(stream, event, timeout, "send")


async def send_blocking(
    stream: _AsyncStream, event: Event, timeout: float | None, op: str
) -> None:
    """Wait for room and send; the caller's own attempt found the stream full."""
    rt = _runtime()
    deadline = None if timeout is None else rt.time() + timeout
    while True:
        if _expired(rt, deadline):
            raise stream._timeout_error(op)
        parker = rt.parker()
        w = stream._new_waiter(parker)
        if stream._send_or_park(w, event, op) == SENT:
            return
        await _wait(stream, w, parker, deadline, receivers=False)
        # Woken (or timed out): one attempt without a waiter before parking again.
        if stream._send_or_park(None, event, op) == SENT:
            return


async def send_many(
    stream: _AsyncStream, batch: list[Event], timeout: float | None
) -> int:
    """``asend_many`` after the batch was validated."""
    policy = stream.policy
    rt = None
    deadline = None
    sent = 0
    try:
        while True:
            sent += stream._send_some(batch, sent, "send_many")
            if sent >= len(batch):
                break
            if policy == BackpressurePolicy.DROP:
                stream._count_dropped(len(batch) - sent)
                break
            if rt is None:
                rt = _runtime()
                deadline = None if timeout is None else rt.time() + timeout
            # Full: wait for room for the next event (the wait pushes it).
            remaining = None if deadline is None else max(0.0, deadline - rt.time())
            await send_blocking(stream, batch[sent], remaining, "send_many")
            sent += 1
    except (StreamClosed, TimeoutError) as exc:
        exc.sent = sent  # type: ignore[union-attr]  # TimeoutError is the builtin
        raise
    return sent


async def aentries(
    stream: _AsyncStream, after: int | None
) -> AsyncIterator[tuple[int, Event]]:
    """``aentries(after)``: ``replay(after)``, then live entries until closed and drained.

    Entries numbered ``<= after`` that are received later are consumed and skipped, so
    a consumer resuming with the last number it handled sees each later event once.
    """
    if after is not None:
        for entry in stream.replay(after):
            yield entry
    while True:
        try:
            seq, event = await receive_entry(stream, None)
        except StreamClosed:
            return
        if after is None or seq > after:
            yield seq, event


class _SyncEntries(Protocol):
    def replay(self, after: int) -> list[tuple[int, Event]]: ...
    def receive_entry(self) -> tuple[int, Event]: ...


def iter_entries(stream: _SyncEntries, after: int | None) -> Iterator[tuple[int, Event]]:
    """``entries(after)``, the blocking twin of :func:`aentries` (shared by both twins)."""
    if after is not None:
        yield from stream.replay(after)
    while True:
        try:
            seq, event = stream.receive_entry()
        except StreamClosed:
            return
        if after is None or seq > after:
            yield seq, event
