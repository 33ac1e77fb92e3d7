"""P7: memory per stream, per managed stream, and for 100 000 streams in one manager.

How it is measured, and what each method can and cannot see:

* ``tracemalloc`` sees every allocation made through Python's allocators
  (``PyObject_Malloc``, ``PyMem_Malloc`` and ``PyMem_RawMalloc``). That covers everything
  of ``queue.Queue``, ``asyncio.Queue``, janus, culsans and the pure-Python stream, and
  the compiled stream's object itself (its mutex and two condition variables are
  embedded in the object, so they are counted).
* It cannot see ``malloc()`` called directly from C: the compiled stream's ring of event
  pointers. The ring is allocated on first use and grows with use up to ``buffer_size``
  slots, so a fresh stream has none. For a *used* stream that part is measured as the
  change of glibc's ``mallinfo2()`` heap counters, with tracemalloc off (Python's own
  small objects live in mmap'd arenas that ``mallinfo2`` does not count). Without glibc,
  the ring is computed from its growth rule instead, and the method says so.
* For 100 000 managed streams the process's resident set (``/proc/self/statm``) is also
  reported; it sees everything but may under-count when freed memory is reused.
"""

from __future__ import annotations

import ctypes
import gc
import os
import queue
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import fastevents as fe

from ._peers import Peer
from ._scenarios import sample_event

#: tracemalloc measures CPython's allocators; elsewhere (PyPy) P7 is skipped.
SUPPORTED = sys.implementation.name == "cpython"
UNSUPPORTED_REASON = f"tracemalloc measures CPython's allocators, not {sys.implementation.name}'s"

# The compiled ring's growth rule (see _stream_c.pyx: MIN_RING, doubling, capped at
# buffer_size), used only where mallinfo2 is unavailable.
_MIN_RING = 8
_POINTER = ctypes.sizeof(ctypes.c_void_p)


def ring_bytes(filled: int, buffer_size: int) -> int:
    """Bytes of the compiled ring after ``filled`` events were buffered at once."""
    if filled <= 0:
        return 0
    cap = _MIN_RING
    while cap < filled:
        cap *= 2
    return min(cap, buffer_size) * _POINTER


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]


def _mallinfo_reader() -> Callable[[], int] | None:
    try:
        fn = ctypes.CDLL(None).mallinfo2
    except (AttributeError, OSError, TypeError):
        return None
    fn.restype = _MallInfo2
    fn.argtypes = []

    def in_use() -> int:
        info = fn()
        return int(info.uordblks + info.hblkhd)

    return in_use


_MALLINFO = _mallinfo_reader()


def rss_bytes() -> int | None:
    """The resident set size from /proc/self/statm, or None off Linux."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _traced_per_object(make: Callable[[], Any], k: int) -> float:
    objs: list[Any] = [None] * k  # allocated before the first reading
    gc.collect()
    own = not tracemalloc.is_tracing()
    if own:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(k):
            objs[i] = make()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        if own:
            tracemalloc.stop()
    del objs
    return (after - before) / k


def _malloc_per_object(make: Callable[[], Any], k: int) -> float | None:
    if _MALLINFO is None or tracemalloc.is_tracing():
        return None
    objs: list[Any] = [None] * k
    gc.collect()
    before = _MALLINFO()
    for i in range(k):
        objs[i] = make()
    after = _MALLINFO()
    del objs
    return max(0.0, (after - before) / k)


def _maker(peer: Peer) -> Callable[[int, bool], Any]:
    if peer.make is None:
        raise ValueError(f"{peer.name} is unavailable: {peer.reason}")
    return peer.make


def _fresh(peer: Peer, buffer: int) -> Callable[[], Any]:
    """A factory of new, never used queues."""
    make_channel = _maker(peer)

    def make() -> Any:
        ch = make_channel(buffer, False)
        _CLOSERS.append(ch.close)
        return ch.obj

    return make


#: Close functions of the queues a measurement made: called once it is over, so that a
#: peer that warns when dropped open (anyio's memory streams) stays quiet.
_CLOSERS: list[Callable[[], Any]] = []


def _close_all() -> None:
    while _CLOSERS:
        _CLOSERS.pop()()


def _used(peer: Peer, buffer: int) -> Callable[[], Any]:
    """A factory of queues that have carried ``buffer`` events at once and been drained."""
    make_channel = _maker(peer)
    ev = sample_event()

    def make() -> Any:
        ch = make_channel(buffer, False)
        _CLOSERS.append(ch.close)
        for _ in range(buffer):
            ch.put_nowait(ev)
        for _ in range(buffer):
            ch.get_nowait()
        return ch.obj

    return make


def stream_memory(peer: Peer, k: int, *, buffer: int = 100, used: bool = False) -> dict[str, Any]:
    """Bytes per queue of ``peer`` (fresh, or ``used``: filled to ``buffer`` then drained).

    Returns ``bytes`` (the total), ``traced`` (tracemalloc), ``untraced`` (C malloc
    outside tracemalloc's view: the compiled ring) and ``method``.
    """
    make = _used(peer, buffer) if used else _fresh(peer, buffer)
    try:
        traced = _traced_per_object(make, k)
    finally:
        _close_all()
    untraced = 0.0
    method = "tracemalloc"
    if peer.key == "fe-c":
        if not used:
            method = "tracemalloc (no ring before the first send)"
        else:
            try:
                measured = _malloc_per_object(make, k)
            finally:
                _close_all()
            if measured is not None:
                untraced = measured
                method = "tracemalloc + mallinfo2 (C ring)"
            else:
                untraced = float(ring_bytes(buffer, buffer))
                method = "tracemalloc + computed ring size"
    return {"bytes": traced + untraced, "traced": traced, "untraced": untraced,
            "method": method}


def managed_stream_memory(stream_class: Any, k: int, *, buffer: int = 100) -> float:
    """Bytes per stream made by ``StreamManager.create_stream`` (id string included)."""
    holder: list[Any] = []

    def make_all() -> None:
        m = fe.StreamManager(buffer, stream_class=stream_class)
        create = m.create_stream
        for i in range(k):
            create(f"stream-{i:06d}")
        holder.append(m)

    gc.collect()
    own = not tracemalloc.is_tracing()
    if own:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        make_all()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        if own:
            tracemalloc.stop()
    holder.clear()
    return (after - before) / k


def many_streams(stream_class: Any, count: int = 100_000, *, buffer: int = 100,
                 trace: bool = False) -> dict[str, Any]:
    """Create ``count`` streams in one StreamManager: seconds, RSS growth, traced MB.

    ``stream_class`` may also be ``"queue.Queue"``: a plain dict of ``queue.Queue(buffer)``
    filled the same way, for reference. The timed pass runs without tracemalloc (which
    slows allocation down); ``trace=True`` adds a second, traced pass for the total.
    """

    def build() -> Any:
        if stream_class == "queue.Queue":
            d: dict[str, Any] = {}
            for i in range(count):
                d[f"stream-{i:06d}"] = queue.Queue(buffer)
            return d
        m = fe.StreamManager(buffer, stream_class=stream_class)
        create = m.create_stream
        for i in range(count):
            create(f"stream-{i:06d}")
        return m

    gc.collect()
    rss0 = rss_bytes()
    t0 = time.perf_counter_ns()
    built = build()
    seconds = (time.perf_counter_ns() - t0) / 1e9
    rss1 = rss_bytes()
    del built
    gc.collect()
    traced_mb = None
    if trace:
        holder: list[Any] = []
        own = not tracemalloc.is_tracing()
        if own:
            tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            holder.append(build())
            traced_mb = (tracemalloc.get_traced_memory()[0] - before) / 1e6
        finally:
            if own:
                tracemalloc.stop()
        holder.clear()
        gc.collect()
    rss_mb = None if rss0 is None or rss1 is None else (rss1 - rss0) / 1e6
    return {"streams": count, "create_s": seconds, "rss_mb": rss_mb, "traced_mb": traced_mb}


__all__ = ["managed_stream_memory", "many_streams", "ring_bytes", "rss_bytes", "stream_memory"]
