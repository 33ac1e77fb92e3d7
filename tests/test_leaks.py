"""No leaks (issue #5), both twins.

* Every event is released once it is received, dropped (``StreamFull``, ``try_send``
  False, a timed-out or cancelled or refused send, the unsent tail of ``send_many``), or
  once its stream is closed and drained, or deallocated while still holding it.
  Checked with weak references: through an object inside ``data`` (a plain ``Event``
  takes the compiled core's fast validation path) and through an ``Event`` subclass that
  has ``__weakref__`` (the slow path).
* ``sys.getrefcount`` of an event is the same before and after every API path.
* ``tracemalloc``: the traced memory stays flat over a million events sent and received
  (after a warm-up; a small constant slack), mixing the sync paths.
* The compiled core's C allocations (the ring) are invisible to tracemalloc, so the
  process RSS (``/proc/self/statm``) is checked over many create/fill/destroy cycles.

Set ``FASTEVENTS_SLOW=1`` (or ``-m slow``) for the heavier variants.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
import tracemalloc
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import fastevents as fe

BLOCK = fe.BackpressurePolicy.BLOCK
DROP = fe.BackpressurePolicy.DROP

CPYTHON = sys.implementation.name == "cpython"
needs_refcounts = pytest.mark.skipif(not CPYTHON, reason="sys.getrefcount is CPython's")


def slow_enabled(config: pytest.Config) -> bool:
    if os.environ.get("FASTEVENTS_SLOW") == "1":
        return True
    expr = config.getoption("markexpr", "") or ""
    return "slow" in expr and "not slow" not in expr


@pytest.fixture
def slow(request: pytest.FixtureRequest) -> bool:
    return slow_enabled(request.config)


@pytest.fixture(autouse=True)
def _skip_slow_by_default(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("slow") and not slow_enabled(request.config):
        pytest.skip("heavy run: give -m slow or set FASTEVENTS_SLOW=1")


class Payload:
    """Something weak-referenceable to put in an event's data."""


class WEvent(fe.Event):
    """An Event with a weakref slot (a subclass: the compiled core validates it slowly)."""

    __slots__ = ("__weakref__",)


class Tracker:
    """Makes events and remembers weak references to them (or to their payload)."""

    def __init__(self) -> None:
        self.refs: list[weakref.ref[Any]] = []

    def plain(self, i: int = 0) -> fe.Event:
        p = Payload()
        self.refs.append(weakref.ref(p))
        return fe.Event(fe.EventType.TEXT_DELTA, {"text": str(i), "payload": p})

    def sub(self, i: int = 0) -> fe.Event:
        e = WEvent(fe.EventType.TEXT_DELTA, {"text": str(i)})
        self.refs.append(weakref.ref(e))
        return e

    def make(self, kind: str, i: int = 0) -> fe.Event:
        return self.plain(i) if kind == "plain" else self.sub(i)

    def alive(self) -> int:
        if not CPYTHON:
            gc.collect()
        return sum(r() is not None for r in self.refs)


KINDS = ["plain", "subclass"]


def run_path(fn: Callable[[Tracker], Any]) -> Tracker:
    """Run fn (which makes events and uses them) and return its tracker: once fn has
    returned, nothing but the stream code could still hold an event."""
    t = Tracker()
    fn(t)
    return t


def swallow(call: Callable[[], Any], *errors: type[BaseException]) -> None:
    try:
        call()
    except errors:
        pass


# -- events are released -------------------------------------------------------------------


def path_send_receive(cls: type, kind: str) -> Callable[[Tracker], None]:
    def fn(t: Tracker) -> None:
        s = cls(8)
        s.send(t.make(kind, 1))
        s.receive()
        assert s.try_send(t.make(kind, 2))
        s.try_receive()
        s.send_many([t.make(kind, i) for i in range(5)])
        s.receive_many(3)
        s.receive_many(10)
        s.send(t.make(kind, 3))
        s.close()
        list(s)
    return fn


def path_drop(cls: type, kind: str) -> Callable[[Tracker], None]:
    def fn(t: Tracker) -> None:
        s = cls(1, DROP)
        s.send(fe.text_delta_event("keep"))
        swallow(lambda: s.send(t.make(kind)), fe.StreamFull)
        assert s.try_send(t.make(kind)) is False
        assert s.send_many([t.make(kind), t.make(kind)]) == 0
        s.policy = BLOCK
        swallow(lambda: s.send(t.make(kind), timeout=0), TimeoutError)
        swallow(lambda: s.send(t.make(kind), timeout=0.01), TimeoutError)
        swallow(lambda: s.send_many([t.make(kind)] * 3, timeout=0.01), TimeoutError)
        tok = threading.Event()
        tok.set()
        swallow(lambda: s.send(t.make(kind), cancel=tok), fe.Cancelled)
        s.close()
        swallow(lambda: s.send(t.make(kind)), fe.StreamClosed)
        swallow(lambda: s.try_send(t.make(kind)), fe.StreamClosed)
        swallow(lambda: s.send_many([t.make(kind)]), fe.StreamClosed)
        # An invalid batch: nothing enqueued, nothing kept.
        swallow(lambda: cls(4).send_many([t.make(kind), None]), fe.InvalidEvent)
    return fn


def path_partial_send_many(cls: type, kind: str) -> Callable[[Tracker], None]:
    def fn(t: Tracker) -> None:
        s = cls(3, DROP)
        assert s.send_many([t.make(kind, i) for i in range(7)]) == 3  # 4 dropped
        s2 = cls(3, BLOCK)
        swallow(lambda: s2.send_many([t.make(kind, i) for i in range(7)], timeout=0.01),
                TimeoutError)
        assert len(s2) == 3
        s.close()
        s2.close()
        list(s)
        s2.receive_many(10)
    return fn


def path_close_drain(cls: type, kind: str) -> Callable[[Tracker], None]:
    def fn(t: Tracker) -> None:
        s = cls(50)
        s.send_many([t.make(kind, i) for i in range(20)])
        s.close()
        while s.try_receive() is not None:
            pass
    return fn


def path_dealloc_buffered(cls: type, kind: str) -> Callable[[Tracker], None]:
    def fn(t: Tracker) -> None:
        s = cls(10)
        s.send_many([t.make(kind, i) for i in range(7)])
        # A wrapped ring (head moved on, then refilled past the end).
        s2 = cls(4)
        s2.send_many([t.make(kind, i) for i in range(4)])
        s2.receive_many(3)
        s2.send_many([t.make(kind, i) for i in range(3)])
        # A large one (past the compiled core's shrink threshold), closed, not drained.
        s3 = cls(5000)
        s3.send_many([t.make(kind, i) for i in range(3000)])
        s3.close()
        assert t.alive() == 7 + 4 - 3 + 3 + 3000
        del s, s2, s3
    return fn


def send_from_thread(s: Any, e: fe.Event) -> None:
    threading.Thread(target=s.send, args=(e,)).start()


def path_async(cls: type, kind: str) -> Callable[[Tracker], None]:
    def fn(t: Tracker) -> None:
        async def main() -> None:
            s = cls(2)
            await s.asend(t.make(kind))
            await s.areceive()
            await s.asend_many([t.make(kind) for _ in range(2)])
            await s.areceive_many(5)
            # A parked sender that times out, and one that is cancelled.
            await s.asend_many([t.make(kind), t.make(kind)])
            try:
                await s.asend(t.make(kind), timeout=0.01)
            except TimeoutError:
                pass
            task = asyncio.ensure_future(s.asend(t.make(kind)))
            await asyncio.sleep(0.01)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            del task
            s.policy = DROP
            try:
                await s.asend(t.make(kind))
            except fe.StreamFull:
                pass
            # A parked receiver woken by a thread.
            await s.areceive_many(5)
            s.policy = BLOCK
            loop = asyncio.get_running_loop()
            e = t.make(kind)
            loop.call_later(0.01, send_from_thread, s, e)
            del e
            await s.areceive(timeout=5)
            s.close()
            try:
                await s.asend(t.make(kind))
            except fe.StreamClosed:
                pass
            async for _ in s:
                pass
        asyncio.run(main())
    return fn


PATHS = {
    "send_receive": path_send_receive,
    "drop_and_refused": path_drop,
    "partial_send_many": path_partial_send_many,
    "close_drain": path_close_drain,
    "dealloc_buffered": path_dealloc_buffered,
    "async": path_async,
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", list(PATHS))
def test_events_are_released(stream_cls: type, path: str, kind: str) -> None:
    t = run_path(PATHS[path](stream_cls, kind))
    for _ in range(20):  # a helper thread (async path) may still be finishing
        if t.alive() == 0:
            break
        threading.Event().wait(0.01)
    assert t.refs, "the path made no events"
    assert t.alive() == 0, f"{t.alive()} of {len(t.refs)} events still alive after {path}"


def test_events_released_when_stream_collected_with_waiters(stream_cls: type) -> None:
    """A stream dropped while an asyncio sender is parked on it (task never resumed)."""
    t = Tracker()

    async def main() -> None:
        s = stream_cls(1)
        s.send(t.plain())
        task = asyncio.ensure_future(s.asend(t.plain()))
        await asyncio.sleep(0.01)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(main())
    gc.collect()
    assert t.alive() == 0


# -- refcounts balanced on every path ---------------------------------------------------------


def refcount_cases(cls: type) -> Iterator[tuple[str, Callable[[fe.Event], Any]]]:
    def send_receive(e: fe.Event) -> None:
        s = cls(2)
        s.send(e)
        assert s.receive() is e

    def try_send_receive(e: fe.Event) -> None:
        s = cls(2)
        assert s.try_send(e)
        assert s.try_receive() is e
        assert s.try_receive() is None

    def try_send_false(e: fe.Event) -> None:
        s = cls(1)
        s.send(fe.text_delta_event("x"))
        assert s.try_send(e) is False

    def stream_full(e: fe.Event) -> None:
        s = cls(1, DROP)
        s.send(fe.text_delta_event("x"))
        swallow(lambda: s.send(e), fe.StreamFull)

    def stream_closed(e: fe.Event) -> None:
        s = cls(1)
        s.close()
        swallow(lambda: s.send(e), fe.StreamClosed)
        swallow(lambda: s.try_send(e), fe.StreamClosed)
        swallow(lambda: s.send_many([e, e]), fe.StreamClosed)

    def timeout_and_cancel(e: fe.Event) -> None:
        s = cls(1)
        s.send(fe.text_delta_event("x"))
        swallow(lambda: s.send(e, timeout=0), TimeoutError)
        swallow(lambda: s.send(e, timeout=0.005), TimeoutError)
        tok = threading.Event()
        tok.set()
        swallow(lambda: s.send(e, cancel=tok), fe.Cancelled)

    def send_many_partial(e: fe.Event) -> None:
        s = cls(3, DROP)
        assert s.send_many([e] * 5) == 3
        assert s.receive_many(10) == [e] * 3
        s2 = cls(2)
        swallow(lambda: s2.send_many([e] * 4, timeout=0.005), TimeoutError)
        assert s2.receive_many(5) == [e] * 2

    def receive_many_and_iterate(e: fe.Event) -> None:
        s = cls(10)
        s.send_many([e] * 6)
        assert s.receive_many(2) == [e, e]
        assert len(s.receive_many(1)) == 1
        s.close()
        assert list(s) == [e] * 3

    def invalid_batch(e: fe.Event) -> None:
        s = cls(10)
        swallow(lambda: s.send_many([e, e, None]), fe.InvalidEvent)
        assert len(s) == 0

    def dealloc_buffered(e: fe.Event) -> None:
        s = cls(10)
        s.send_many([e] * 4)
        del s

    def async_paths(e: fe.Event) -> None:
        async def main() -> None:
            s = cls(2)
            await s.asend(e)
            assert await s.areceive() is e
            try:
                await s.asend_many([e, e, e], timeout=0.005)
            except TimeoutError:
                pass
            assert await s.areceive_many(5) == [e, e]
            await s.asend(e)
            await s.asend(e)
            try:
                await s.asend(e, timeout=0.005)  # parks, then times out
            except TimeoutError:
                pass
            task = asyncio.ensure_future(s.asend(e))
            await asyncio.sleep(0.005)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            del task
            s.policy = DROP
            try:
                await s.asend(e)
            except fe.StreamFull:
                pass
            s.close()
            try:
                await s.asend(e)
            except fe.StreamClosed:
                pass
            assert [x async for x in s] == [e, e]
        asyncio.run(main())

    yield from [
        ("send_receive", send_receive), ("try_send_receive", try_send_receive),
        ("try_send_false", try_send_false), ("stream_full", stream_full),
        ("stream_closed", stream_closed), ("timeout_and_cancel", timeout_and_cancel),
        ("send_many_partial", send_many_partial),
        ("receive_many_and_iterate", receive_many_and_iterate),
        ("invalid_batch", invalid_batch), ("dealloc_buffered", dealloc_buffered),
        ("async_paths", async_paths),
    ]


@needs_refcounts
@pytest.mark.parametrize("kind", KINDS)
def test_refcounts_balanced(stream_cls: type, kind: str) -> None:
    unbalanced = {}
    for name, case in refcount_cases(stream_cls):
        e = fe.text_delta_event("r") if kind == "plain" else WEvent(fe.EventType.TEXT_DELTA, {})
        case(e)  # warm-up: caches, interned strings, first-time allocations
        gc.collect()
        before = sys.getrefcount(e)
        for _ in range(2):
            case(e)
        after = sys.getrefcount(e)
        if after != before:  # a reference cycle (asyncio, tracebacks) may hold it: collect
            gc.collect()
            after = sys.getrefcount(e)
        if after != before:
            unbalanced[name] = (before, after)
    assert not unbalanced, f"refcount of the event changed (before, after): {unbalanced}"


# -- memory stays flat ---------------------------------------------------------------------


POOL = [fe.text_delta_event(str(i)) for i in range(64)]


def churn(cls: type, n: int, fresh: bool = True) -> None:
    """Push n events through the sync API, mixing every non-blocking path.

    With ``fresh`` every event is new. Without it the plain send/receive loop reuses a pool
    of events 7 times out of 8 (tracemalloc's cost is per allocation), so that what is
    traced is mostly what the stream itself allocates; every other path still gets new
    events, so a leaked event would still show as growth.
    """
    mk = fe.text_delta_event
    pool = POOL
    s = cls(16)
    d = cls(1, DROP)
    d.send(mk("x"))
    done = 0
    while done < n:
        for i in range(96):
            s.send(mk("a") if fresh or i % 8 == 0 else pool[i & 63])
            s.receive()
        assert s.try_send(mk("b"))
        s.try_receive()
        s.send_many([mk("c") for _ in range(16)])
        s.receive_many(16)
        s.send_many([mk("c") for _ in range(8)], timeout=0)
        s.receive_many(3, timeout=0)
        for _ in s.receive_many(16):
            pass
        try:
            d.send(mk("d"))
        except fe.StreamFull:
            pass
        d.try_send(mk("e"))
        done += 96 + 1 + 16 + 8 + 2
    s.close()
    assert len(s) == 0


def traced_growth(cls: type, n: int) -> int:
    churn(cls, 20_000, fresh=False)  # warm-up (free lists, caches)
    gc.collect()
    tracemalloc.start()
    try:
        churn(cls, 20_000, fresh=False)
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        churn(cls, n, fresh=False)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()


def test_tracemalloc_flat_over_a_million_events(stream_cls: type, slow: bool) -> None:
    # The pure twin under tracemalloc costs ~5 us an event: a million only with -m slow
    # (test_allocated_blocks_flat_over_a_million_events does a million on it cheaply).
    n = 1_000_000 if (stream_cls is not fe.PyEventStream or slow) else 200_000
    growth = traced_growth(stream_cls, n)
    print(f"\ntracemalloc growth over {n} events ({stream_cls.__name__}): {growth} bytes")
    # One leaked event is ~200 bytes: a leak on any path would be megabytes here.
    assert growth < 64 * 1024


@pytest.mark.skipif(not hasattr(sys, "getallocatedblocks"), reason="CPython only")
def test_allocated_blocks_flat_over_a_million_events(stream_cls: type) -> None:
    """The same without tracemalloc's cost, a million events on both twins."""
    churn(stream_cls, 20_000)
    gc.collect()
    base = sys.getallocatedblocks()
    churn(stream_cls, 1_000_000)
    gc.collect()
    growth = sys.getallocatedblocks() - base
    assert growth < 500, f"{growth} more blocks allocated after a million events"


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="Linux /proc needed")
def test_rss_flat_over_stream_create_destroy(stream_cls: type, slow: bool) -> None:
    """Streams made, filled (growing the ring, wrapping it) and dropped full."""
    batch = [fe.text_delta_event(str(i)) for i in range(2000)]  # shared: only rings churn
    rounds = 3000 if slow else 600

    def cycle(k: int) -> None:
        for _ in range(k):
            s = stream_cls(5000)
            s.send_many(batch)
            s.receive_many(700)
            s.send_many(batch[:500])  # the ring wraps
            s2 = stream_cls(3)
            s2.send_many(batch[:3])
            if _ % 2:
                s.close()
            del s, s2

    cycle(100)  # warm-up: the allocator's arenas settle
    gc.collect()
    base = rss_bytes()
    cycle(rounds)
    gc.collect()
    growth = rss_bytes() - base
    print(f"\nRSS growth over {rounds} streams of ~2800 events ({stream_cls.__name__}): "
          f"{growth / 1024:.0f} KiB")
    # A leaked ring is >= 22 KiB a stream: a leak would be >= 13 MiB here.
    assert growth < 8 * 1024 * 1024
