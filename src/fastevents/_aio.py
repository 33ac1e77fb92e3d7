"""The asyncio side of a stream, written once for both twins.

A twin provides a handful of primitives, each of them one short critical section:

``_new_waiter(loop)``
    a waiter object with a ``fut`` attribute (a future of ``loop``).
``_recv_or_park(w)`` -> ``(code, event)``
    take an event (``GOT``); or report the stream closed and drained (``CLOSED``); or,
    when it is empty, link ``w`` into the receivers' waiter list (``PARKED``) or, with
    ``w=None``, report it (``EMPTY``). The check and the parking are atomic, so a sender
    that adds an event right after this sees the waiter and wakes it: no lost wake-ups.
``_send_or_park(w, event, op)`` -> code
    the same for a sender: ``SENT``, ``PARKED``, ``FULL`` (``w=None``); raises
    ``StreamClosed`` on a closed stream.
``_send_some(batch, start, op)`` -> int
    push as many of ``batch[start:]`` as fit under one lock (so a batch stays contiguous
    while there is room); raises ``StreamClosed`` on a closed stream, even for nothing.
``_unpark(w)`` -> bool
    remove ``w`` if it is still parked (True); False means a waker already took it off the
    list to wake it, i.e. this waiter has consumed a wake-up.
``_pass_wake(receivers)``
    hand a consumed wake-up on to the next waiter, when there is something for it.

Wakers resolve the future itself when they run on the waiter's loop, and with
``loop.call_soon_threadsafe`` otherwise; they do so only when a waiter is parked, so the
fast paths cost nothing extra. A woken waiter takes its own item after waking, so a task
cancelled at any point can neither lose nor duplicate an event: if it was cancelled after
a wake-up it passes the wake-up on.
"""

from __future__ import annotations

import asyncio
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


class _Waiter(Protocol):
    fut: asyncio.Future[Any]


class _AsyncStream(Protocol):
    policy: BackpressurePolicy

    @property
    def stream_id(self) -> str | None: ...

    def _new_waiter(self, loop: asyncio.AbstractEventLoop) -> Any: ...
    def _recv_or_park(self, w: Any) -> tuple[int, Event | None]: ...
    def _send_or_park(self, w: Any, event: Event, op: str) -> int: ...
    def _send_some(self, batch: list[Event], start: int, op: str) -> int: ...
    def _unpark(self, w: Any) -> bool: ...
    def _pass_wake(self, receivers: bool) -> None: ...
    def _error(
        self, cls: type[StreamError], op: str, detail: str | None = None
    ) -> StreamError: ...
    def _timeout_error(self, op: str) -> TimeoutError: ...


def resolve(fut: asyncio.Future[Any], value: Any = None) -> None:
    if not fut.done():
        fut.set_result(value)


def wake(loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any]) -> bool:
    """Wake a parked task; called by the twins outside their critical section.

    False when the waiter's loop is closed: that task will never run again, so the
    caller must hand the wake-up on to another waiter instead of losing it.
    """
    if asyncio._get_running_loop() is loop:
        # Same thread as the waiter's loop: no need for the self-pipe round trip.
        resolve(fut)
        return True
    try:
        loop.call_soon_threadsafe(resolve, fut)
    except RuntimeError:
        return False
    return True


async def _wait(
    stream: _AsyncStream, w: _Waiter, loop: asyncio.AbstractEventLoop,
    deadline: float | None, receivers: bool,
) -> None:
    """Await a wake-up (or the deadline) for a parked waiter, leaving it unparked."""
    timer = None
    if deadline is not None:
        timer = loop.call_at(deadline, resolve, w.fut, _TIMED_OUT)
    try:
        await w.fut
    except BaseException:
        # Cancelled (or interrupted). If a waker had already picked us, its wake-up
        # would be lost with us: hand it on.
        if not stream._unpark(w):
            stream._pass_wake(receivers)
        raise
    finally:
        if timer is not None:
            timer.cancel()
    if w.fut.result() is _TIMED_OUT:
        # Our own timer fired; make sure we are off the list. If a waker raced the timer,
        # the caller's final attempt takes what the wake-up was for.
        stream._unpark(w)


def _expired(loop: asyncio.AbstractEventLoop, deadline: float | None) -> bool:
    return deadline is not None and loop.time() >= deadline


async def receive(stream: _AsyncStream, timeout: float | None, op: str = "receive") -> Event:
    """``areceive``: the next event; ``StreamClosed`` once closed and drained."""
    loop = None
    deadline = None
    while True:
        # Try without a waiter first: after a wake-up this usually succeeds, and a
        # waiter costs a future.
        code, event = stream._recv_or_park(None)
        if code == GOT:
            return event  # type: ignore[return-value]
        if code == CLOSED:
            raise stream._error(StreamClosed, op)
        if loop is None:
            loop = asyncio.get_running_loop()
            deadline = None if timeout is None else loop.time() + timeout
        if _expired(loop, deadline):
            raise stream._timeout_error(op)
        w = stream._new_waiter(loop)
        code, event = stream._recv_or_park(w)
        if code == GOT:
            return event  # type: ignore[return-value]
        if code == CLOSED:
            raise stream._error(StreamClosed, op)
        await _wait(stream, w, loop, deadline, receivers=True)


async def receive_many(
    stream: _AsyncStream, max_items: int, timeout: float | None
) -> list[Event]:
    """``areceive_many``: wait for one event, then take up to ``max_items`` buffered."""
    try:
        first = await receive(stream, timeout, op="receive_many")
    except StreamClosed:
        return []
    batch = [first]
    while len(batch) < max_items:
        code, event = stream._recv_or_park(None)
        if code != GOT:
            break
        batch.append(event)  # type: ignore[arg-type]
    return batch


async def send(stream: _AsyncStream, event: Event, timeout: float | None) -> None:
    """``asend`` after the event was validated."""
    policy = stream.policy  # read once: a later switch does not affect this send
    code = stream._send_or_park(None, event, "send")
    if code == SENT:
        return
    if policy == BackpressurePolicy.DROP:
        raise stream._error(StreamFull, "send")
    await send_blocking(stream, event, timeout, "send")


async def send_blocking(
    stream: _AsyncStream, event: Event, timeout: float | None, op: str
) -> None:
    """Wait for room and send; the caller's own attempt found the stream full."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    while True:
        if _expired(loop, deadline):
            raise stream._timeout_error(op)
        w = stream._new_waiter(loop)
        if stream._send_or_park(w, event, op) == SENT:
            return
        await _wait(stream, w, loop, deadline, receivers=False)
        # Woken (or timed out): one attempt without a waiter before parking again.
        if stream._send_or_park(None, event, op) == SENT:
            return


async def send_many(
    stream: _AsyncStream, batch: list[Event], timeout: float | None
) -> int:
    """``asend_many`` after the batch was validated."""
    policy = stream.policy
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    sent = 0
    try:
        while True:
            sent += stream._send_some(batch, sent, "send_many")
            if sent >= len(batch) or policy == BackpressurePolicy.DROP:
                break
            # Full: wait for room for the next event (the wait pushes it).
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            await send_blocking(stream, batch[sent], remaining, "send_many")
            sent += 1
    except (StreamClosed, TimeoutError) as exc:
        exc.sent = sent  # type: ignore[union-attr]  # TimeoutError is the builtin
        raise
    return sent
