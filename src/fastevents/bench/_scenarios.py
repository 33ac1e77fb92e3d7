"""One function per timed scenario, parametrized by peer and size.

Each function *prepares* a run (builds the queue, starts and parks the threads, makes the
event loop) and returns a `Body`; calling the body does the ``body.ops`` operations that
are timed, and nothing else. The CLI's runner and the pytest-benchmark suites in
``bench/`` time the very same bodies (pytest-benchmark as ``pedantic(target=body)`` with
the preparation as its untimed ``setup``).

The memory scenario (P7) measures rather than times: see `_memory`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from itertools import repeat
from time import perf_counter_ns
from typing import Any

import fastevents as fe

from ._peers import Peer

#: How long the main thread waits for a threaded scenario before calling it stalled.
STALL_SECONDS = 300.0

TOKEN = "Hello"


def sample_event() -> fe.Event:
    """The prebuilt event every queue carries: one text token."""
    return fe.text_delta_event(TOKEN)


class Body:
    """A prepared run: call it once to do ``ops`` operations; then it cleans up."""

    __slots__ = ("_cleanup", "_done", "_run", "ops")

    def __init__(self, run: Callable[[], Any], ops: int,
                 cleanup: Callable[[], None] | None = None) -> None:
        self._run = run
        self.ops = ops
        self._cleanup = cleanup
        self._done = False

    def __call__(self) -> Any:
        """Run (the cleanup included: what pytest-benchmark times)."""
        return self.timed()[1]

    def timed(self) -> tuple[int, Any]:
        """Run; return (nanoseconds of the run alone, its result), then clean up."""
        if self._done:
            raise RuntimeError("a Body runs once; prepare a new one")
        self._done = True
        try:
            t0 = perf_counter_ns()
            result = self._run()
            return perf_counter_ns() - t0, result
        finally:
            if self._cleanup is not None:
                self._cleanup()


# -- P1 ------------------------------------------------------------------------------------


def p1_same_thread(peer: Peer, n: int, *, buffer: int = 100) -> Body:
    """P1: ``put(ev); get()`` n times in one thread, with a prebuilt event."""
    ch = _make(peer, buffer)
    put, get, ev = ch.put, ch.get, sample_event()

    def run() -> None:
        for _ in repeat(None, n):
            put(ev)
            get()

    return Body(run, n)


# -- P2, P3 ----------------------------------------------------------------------------------


def p2_one_to_one(peer: Peer, n: int, *, buffer: int = 100) -> Body:
    """P2: one producer thread -> one consumer thread; ops = events delivered."""
    return _producers_to_consumer(peer, n, buffer, producers=1)


def p3_four_to_one(peer: Peer, n: int, *, buffer: int = 100, producers: int = 4) -> Body:
    """P3: ``producers`` threads -> one consumer thread; ops = events delivered."""
    return _producers_to_consumer(peer, n, buffer, producers=producers)


def _producers_to_consumer(peer: Peer, n: int, buffer: int, producers: int) -> Body:
    ch = _make(peer, buffer)
    per = max(1, n // producers)
    total = per * producers
    ev = sample_event()
    go = threading.Event()
    errors: list[BaseException] = []

    def produce() -> None:
        put = ch.put
        go.wait()
        try:
            for _ in repeat(None, per):
                put(ev)
        except BaseException as exc:  # reported by run(), not as a thread warning
            errors.append(exc)

    def consume() -> None:
        get = ch.get
        go.wait()
        try:
            for _ in repeat(None, total):
                get()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=produce, daemon=True) for _ in range(producers)]
    threads.append(threading.Thread(target=consume, daemon=True))
    for t in threads:
        t.start()

    def run() -> None:
        go.set()
        _join(threads, errors)

    return Body(run, total)


def _join(threads: list[threading.Thread], errors: list[BaseException]) -> None:
    for t in threads:
        t.join(STALL_SECONDS)
        if t.is_alive():
            raise RuntimeError(f"scenario stalled for {STALL_SECONDS:.0f} s")
    if errors:
        raise errors[0]


# -- P4 ------------------------------------------------------------------------------------

#: P4 methods: ``try`` = ``try_put(ev)`` returning False; ``except`` = ``put_nowait(ev)``
#: raising the peer's Full exception (fastevents: ``send`` under DROP -> ``StreamFull``).
P4_METHODS = ("try", "except")


def p4_full_drop(peer: Peer, n: int, *, method: str = "try", buffer: int = 100) -> Body:
    """P4: n sends into a stream that stays full (DROP policy for fastevents)."""
    if method not in P4_METHODS:
        raise ValueError(f"method must be one of {P4_METHODS}, not {method!r}")
    ch = _make(peer, buffer, drop=True)
    ev = sample_event()
    _fill(ch, ev)
    if method == "try":
        try_put = ch.try_put
        if try_put is None:
            raise ValueError(f"{peer.name} has no try_put; use method='except'")

        def run() -> None:
            for _ in repeat(None, n):
                try_put(ev)

    else:
        put_nowait, full = ch.put_nowait, ch.full_exc

        def run() -> None:
            for _ in repeat(None, n):
                try:
                    put_nowait(ev)
                except full:
                    pass

    return Body(run, n)


def _fill(ch: Any, ev: Any) -> None:
    put_nowait, full = ch.put_nowait, ch.full_exc
    for _ in range(10**7):  # a bound, in case a peer never reports full
        try:
            put_nowait(ev)
        except full:
            return
    raise RuntimeError("the queue never became full")


# -- P5 ------------------------------------------------------------------------------------


def p5_build_send_receive(peer: Peer, n: int, *, buffer: int = 100) -> Body:
    """P5: build an event, send it, receive it: the per-token cost.

    fastevents peers build ``fe.text_delta_event(text)``; the others a plain dict stamped
    with ``datetime.now(timezone.utc)``.
    """
    ch = _make(peer, buffer)
    put, get, text = ch.put, ch.get, TOKEN
    if peer.fastevents:
        factory = fe.text_delta_event

        def run() -> None:
            for _ in repeat(None, n):
                put(factory(text))
                get()

    else:
        now, utc = datetime.now, timezone.utc

        def run() -> None:
            for _ in repeat(None, n):
                put({"type": "TextDelta", "data": {"text": text}, "timestamp": now(utc)})
                get()

    return Body(run, n)


# -- P6 ------------------------------------------------------------------------------------

P6_IMPLS = ("fastevents", "stdlib")

if sys.version_info >= (3, 11):
    _fromisoformat = datetime.fromisoformat
else:  # 3.10's fromisoformat does not read "Z"

    def _fromisoformat(s: str) -> datetime:
        return datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith("Z") else s)


def p6_to_json(impl: str, n: int) -> Body:
    """P6: serialize one text event n times (``Event.to_json`` vs stdlib ``json.dumps``)."""
    _check_impl(impl)
    if impl == "fastevents":
        to_json = sample_event().to_json

        def run() -> None:
            for _ in repeat(None, n):
                to_json()

    else:
        d: dict[str, Any] = {"type": "TextDelta", "data": {"text": TOKEN},
                             "timestamp": datetime.now(timezone.utc)}
        dumps = json.dumps

        def run() -> None:
            for _ in repeat(None, n):
                dumps({"type": d["type"], "data": d["data"],
                       "timestamp": d["timestamp"].isoformat()})

    return Body(run, n)


def p6_from_json(impl: str, n: int) -> Body:
    """P6: parse one wire event n times (``Event.from_json`` vs ``json.loads`` +
    ``datetime.fromisoformat``); both read the same string, written by ``to_json``."""
    _check_impl(impl)
    # A fixed timestamp with all six fraction digits: "now" could end in zeros, which
    # to_json trims, and 3.10's fromisoformat reads only 3 or 6 fraction digits.
    wire = fe.Event(fe.EventType.TEXT_DELTA, {"text": TOKEN},
                    datetime(2024, 1, 1, 12, 0, 0, 123457, tzinfo=timezone.utc)).to_json()
    if impl == "fastevents":
        from_json = fe.Event.from_json

        def run() -> None:
            for _ in repeat(None, n):
                from_json(wire)

    else:
        loads, fromiso = json.loads, _fromisoformat

        def run() -> None:
            for _ in repeat(None, n):
                d = loads(wire)
                d["timestamp"] = fromiso(d["timestamp"])

    return Body(run, n)


def _check_impl(impl: str) -> None:
    if impl not in P6_IMPLS:
        raise ValueError(f"impl must be one of {P6_IMPLS}, not {impl!r}")


# -- P8 ------------------------------------------------------------------------------------


def p8_latency(peer: Peer, n: int, *, buffer: int = 100, warmup: int = 200) -> Body:
    """P8: ping-pong over two queues; the body returns n half round trips in ns."""
    ping, pong = _make(peer, buffer), _make(peer, buffer)
    ev = sample_event()
    errors: list[BaseException] = []

    def echo() -> None:
        get, put = ping.get, pong.put
        try:
            for _ in repeat(None, n + warmup):
                put(get())
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=echo, daemon=True)
    t.start()

    def run() -> list[float]:
        clock = perf_counter_ns
        put, get = ping.put, pong.get
        for _ in repeat(None, warmup):
            put(ev)
            get()
        samples = [0] * n
        for i in range(n):
            t0 = clock()
            put(ev)
            get()
            samples[i] = clock() - t0
        _join([t], errors)
        return [s / 2 for s in samples]

    return Body(run, n)


# -- P9, P10 ---------------------------------------------------------------------------------


def p9_async(peer: Peer, n: int, *, buffer: int = 100) -> Body:
    """P9: a producer task and a consumer task on one event loop."""
    loop = asyncio.new_event_loop()
    ch = _make(peer, buffer)
    ev = sample_event()

    async def produce() -> None:
        put = ch.aput
        for _ in repeat(None, n):
            await put(ev)

    async def consume() -> None:
        get = ch.aget
        for _ in repeat(None, n):
            await get()

    async def both() -> None:
        await asyncio.gather(produce(), consume())

    def run() -> None:
        loop.run_until_complete(both())

    def cleanup() -> None:
        try:
            loop.run_until_complete(ch.aclose())
        finally:
            loop.close()

    return Body(run, n, cleanup)


def p10_thread_to_async(peer: Peer, n: int, *, buffer: int = 100) -> Body:
    """P10: a producer thread (blocking puts) -> a consumer task on an event loop.

    fastevents: ``send`` in the thread, ``async for`` on the loop (the producer closes the
    stream to end it). janus / culsans: ``sync_q.put`` -> ``await async_q.get()``.
    ``asyncio.Queue``: the stdlib idiom, ``loop.call_soon_threadsafe(q.put_nowait, ev)``
    into an unbounded queue (the only stdlib way that never blocks the loop).
    """
    loop = asyncio.new_event_loop()
    ev = sample_event()
    go = threading.Event()
    errors: list[BaseException] = []
    if peer.key == "asyncio":
        aq: asyncio.Queue[Any] = asyncio.Queue()
        call = loop.call_soon_threadsafe
        aput = aq.put_nowait

        def put(item: Any) -> None:
            call(aput, item)

        aget, aclose, stream = aq.get, None, None
    else:
        ch = _make(peer, buffer)
        put, aget, aclose = ch.put, ch.aget, ch.aclose
        stream = ch.obj if peer.fastevents else None

    def produce() -> None:
        go.wait()
        try:
            for _ in repeat(None, n):
                put(ev)
        except BaseException as exc:
            errors.append(exc)
        finally:
            if stream is not None:
                stream.close()  # ends the consumer's `async for`

    async def consume() -> None:
        if stream is not None:
            got = 0
            async for _ in stream:
                got += 1
            if got != n and not errors:
                raise RuntimeError(f"received {got} of {n} events")
        else:
            for _ in repeat(None, n):
                await aget()

    t = threading.Thread(target=produce, daemon=True)
    t.start()

    def run() -> None:
        go.set()
        loop.run_until_complete(consume())
        _join([t], errors)

    def cleanup() -> None:
        go.set()  # if run() never started, let the producer thread finish
        try:
            if aclose is not None and stream is None:
                loop.run_until_complete(aclose())
        finally:
            loop.close()

    return Body(run, n, cleanup)


# -- helpers ---------------------------------------------------------------------------------


def _make(peer: Peer, buffer: int, drop: bool = False) -> Any:
    if peer.make is None:
        raise ValueError(f"{peer.name} is unavailable: {peer.reason}")
    return peer.make(buffer, drop)
