"""Sequence numbers, history, replay and resume (issue 10; API.md Part 2).

Both twins through ``stream_cls``. Calls that may block have timeouts or run in
background threads joined with a timeout; nothing asserts an upper bound on timing.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import threading
import time
import weakref
from typing import Any

import pytest

import fastevents as fe
from _bg import JOIN, Bg

BLOCK = fe.BackpressurePolicy.BLOCK
DROP = fe.BackpressurePolicy.DROP


def ev(i: int = 0) -> fe.Event:
    return fe.text_delta_event(str(i))


def num(e: fe.Event) -> int:
    return int(e.data["text"])


class WEvent(fe.Event):
    """An Event that can be weakly referenced (to see when a stream releases it)."""

    __slots__ = ("__weakref__",)


def wev(i: int) -> WEvent:
    return WEvent(fe.EventType.TEXT_DELTA, {"text": str(i)})


# -- sequence numbers ----------------------------------------------------------------------


def test_numbers_follow_acceptance_order(stream_cls: type) -> None:
    s = stream_cls(10)
    assert s.last_seq == 0
    evs = [ev(i) for i in range(6)]
    s.send(evs[0])
    assert s.try_send(evs[1])
    assert s.send_many(evs[2:5]) == 3
    asyncio.run(s.asend(evs[5]))
    assert s.last_seq == 6  # accepted, none received yet
    assert s.receive_entry(timeout=JOIN) == (1, evs[0])
    assert s.try_receive_entry() == (2, evs[1])
    assert s.receive(timeout=JOIN) is evs[2]  # numbered 3, even when not asked for
    assert asyncio.run(s.areceive_entry(timeout=JOIN)) == (4, evs[3])
    assert s.receive_many(1) == [evs[4]]
    seq, got = s.receive_entry(timeout=JOIN)
    assert (seq, got) == (6, evs[5]) and got is evs[5]
    assert s.try_receive_entry() is None
    assert s.last_seq == 6


def test_refused_events_get_no_number(stream_cls: type) -> None:
    s = stream_cls(1, DROP)
    s.send(ev(1))
    with pytest.raises(fe.StreamFull):
        s.send(ev(2))
    assert s.try_send(ev(3)) is False
    assert s.send_many([ev(4), ev(5)]) == 0
    with pytest.raises(fe.InvalidEvent):
        s.send(None)
    assert s.last_seq == 1
    assert s.receive_entry(timeout=JOIN)[0] == 1
    s.send(ev(6))
    assert s.receive_entry(timeout=JOIN)[0] == 2


def test_receive_entry_errors_match_receive(stream_cls: type) -> None:
    s = stream_cls(2, stream_id="e")
    with pytest.raises(TimeoutError):
        s.receive_entry(timeout=0.01)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(fe.Cancelled):
        s.receive_entry(cancel=cancel)
    with pytest.raises(ValueError):
        s.receive_entry(timeout=-1)
    with pytest.raises(TypeError):
        s.receive_entry(timeout="1")
    with pytest.raises(TimeoutError):
        asyncio.run(s.areceive_entry(timeout=0.01))
    s.send(ev(1))
    s.close()
    assert s.receive_entry(timeout=0)[0] == 1
    with pytest.raises(fe.StreamClosed) as info:
        s.receive_entry(timeout=JOIN)
    assert info.value.stream_id == "e"
    with pytest.raises(fe.StreamClosed):
        asyncio.run(s.areceive_entry())
    assert s.try_receive_entry() is None


def test_waiting_receive_entry_gets_the_number(stream_cls: type) -> None:
    s = stream_cls(2)
    s.send(ev(0))
    s.receive()
    bg = Bg(s.receive_entry, timeout=JOIN)
    time.sleep(0.05)
    e = ev(1)
    s.send(e)
    assert bg.join() == (2, e)


def test_many_threaded_receivers_get_unique_numbers(stream_cls: type) -> None:
    """4 producers, 4 receivers: every number 1..N is given exactly once, each with the
    event sent at that position, and each receiver sees its numbers increasing."""
    s = stream_cls(8, history=16)
    per, producers, consumers = 300, 4, 4
    got: list[list[tuple[int, fe.Event]]] = [[] for _ in range(consumers)]

    def produce(p: int) -> None:
        for i in range(per):
            s.send(ev(p * 10_000 + i), timeout=JOIN)

    def consume(c: int) -> None:
        while True:
            try:
                got[c].append(s.receive_entry(timeout=JOIN))
            except fe.StreamClosed:
                return

    cs = [threading.Thread(target=consume, args=(c,)) for c in range(consumers)]
    ps = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for t in cs + ps:
        t.start()
    for t in ps:
        t.join(JOIN)
    s.close()
    for t in cs:
        t.join(JOIN)
    assert not any(t.is_alive() for t in cs + ps)
    for mine in got:
        nums = [n for n, _ in mine]
        assert nums == sorted(nums)
    allgot = sorted((n, num(e)) for mine in got for n, e in mine)
    assert [n for n, _ in allgot] == list(range(1, per * producers + 1))
    # Each producer's events carry increasing numbers (FIFO numbering).
    for p in range(producers):
        mine = [n for n, v in allgot if v // 10_000 == p]
        assert len(mine) == per
    assert s.last_seq == per * producers


# -- history= -------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [True, False, 1.0, "3", None, [1]])
def test_history_type_errors(stream_cls: type, bad: Any) -> None:
    with pytest.raises(TypeError):
        stream_cls(4, history=bad)


def test_history_negative_is_value_error(stream_cls: type) -> None:
    with pytest.raises(ValueError):
        stream_cls(4, history=-1)


def test_history_property(stream_cls: type) -> None:
    assert stream_cls(4).history == 0
    assert stream_cls(4, history=7).history == 7
    assert stream_cls(4, history=10**9).history == 10**9  # nothing allocated up front


def test_replay_keeps_the_last_n_received(stream_cls: type) -> None:
    s = stream_cls(10, history=3, stream_id="h")
    evs = [ev(i) for i in range(6)]
    s.send_many(evs)
    assert s.replay(0) == []  # nothing received yet
    s.receive_many(2)
    assert s.replay(0) == [(1, evs[0]), (2, evs[1])]
    assert s.replay(1) == [(2, evs[1])]
    assert s.replay(2) == []
    assert s.replay(99) == []
    for _ in range(3):
        s.receive()
    # Received 1..5, kept 3..5.
    got = s.replay(2)
    assert got == [(3, evs[2]), (4, evs[3]), (5, evs[4])]
    assert all(g is e for (_, g), e in zip(got, evs[2:5], strict=True))
    with pytest.raises(fe.HistoryLost) as info:
        s.replay(1)
    assert info.value.oldest == 3
    assert info.value.stream_id == "h"
    assert isinstance(info.value, fe.StreamError)
    with pytest.raises(fe.HistoryLost):
        s.replay(0)


def test_replay_without_history(stream_cls: type) -> None:
    s = stream_cls(4)
    assert s.replay(0) == []
    s.send(ev(1))
    assert s.replay(0) == []  # accepted but not received: nothing lost
    s.receive()
    assert s.replay(1) == []
    with pytest.raises(fe.HistoryLost) as info:
        s.replay(0)
    assert info.value.oldest is None


@pytest.mark.parametrize("bad", [-1, -100])
def test_replay_negative_after(stream_cls: type, bad: int) -> None:
    with pytest.raises(ValueError):
        stream_cls(4, history=2).replay(bad)


@pytest.mark.parametrize("bad", [None, 1.0, "1", True])
def test_replay_bad_after_type(stream_cls: type, bad: Any) -> None:
    with pytest.raises(TypeError):
        stream_cls(4, history=2).replay(bad)


@pytest.mark.parametrize("how", ["receive", "receive_many", "iterate", "areceive", "try"])
def test_history_releases_evicted_events(stream_cls: type, how: str) -> None:
    s = stream_cls(100, history=2)
    refs = []
    for i in range(10):
        e = wev(i)
        refs.append(weakref.ref(e))
        s.send(e)
        del e
    if how == "receive":
        for _ in range(10):
            s.receive()
    elif how == "receive_many":
        s.receive_many(4)
        s.receive_many(6)
    elif how == "iterate":
        s.close()
        for _ in s:
            pass
    elif how == "areceive":
        async def main() -> None:
            for _ in range(10):
                await s.areceive()

        asyncio.run(main())
    else:
        while s.try_receive() is not None:
            pass
    gc.collect()
    alive = [r() is not None for r in refs]
    assert alive == [False] * 8 + [True] * 2
    assert [num(e) for _, e in s.replay(8)] == [8, 9]


def test_no_history_keeps_nothing(stream_cls: type) -> None:
    s = stream_cls(4)
    e = wev(1)
    r = weakref.ref(e)
    s.send(e)
    del e
    s.receive()
    gc.collect()
    assert r() is None


def test_history_dies_with_the_stream(stream_cls: type) -> None:
    s = stream_cls(4, history=4)
    e = wev(1)
    r = weakref.ref(e)
    s.send(e)
    del e
    s.receive()
    gc.collect()
    assert r() is not None
    del s
    gc.collect()
    assert r() is None


# -- entries / aentries ---------------------------------------------------------------------


def test_entries_replays_then_goes_live_and_skips_old(stream_cls: type) -> None:
    s = stream_cls(10, history=10)
    evs = [ev(i) for i in range(8)]
    s.send_many(evs[:5])
    for _ in range(3):
        s.receive()  # 1..3 received, 4..5 buffered
    # Resume after 1: replay 2, 3; then live 4, 5, ...
    it = s.entries(after=1)
    assert [n for n, _ in (next(it), next(it), next(it), next(it))] == [2, 3, 4, 5]
    s.send_many(evs[5:])
    s.close()
    assert [n for n, _ in it] == [6, 7, 8]


def test_entries_after_beyond_last_skips_until_then(stream_cls: type) -> None:
    """A consumer that handled up to 4 resumes early: 1..4 arriving later are skipped."""
    s = stream_cls(10, history=10)
    s.send_many([ev(i) for i in range(6)])
    s.close()
    assert [n for n, _ in s.entries(after=4)] == [5, 6]


def test_entries_without_after_is_live_only(stream_cls: type) -> None:
    s = stream_cls(10, history=10)
    s.send_many([ev(i) for i in range(4)])
    s.receive_many(2)
    s.close()
    assert [n for n, _ in s.entries()] == [3, 4]


def test_entries_history_lost(stream_cls: type) -> None:
    s = stream_cls(10, history=1)
    s.send_many([ev(i) for i in range(3)])
    s.receive_many(3)
    with pytest.raises(fe.HistoryLost) as info:
        list(s.entries(after=0))
    assert info.value.oldest == 3


@pytest.mark.parametrize("bad", [-1, 1.5, "x", True])
def test_entries_bad_after_raises_at_call(stream_cls: type, bad: Any) -> None:
    s = stream_cls(4)
    with pytest.raises((TypeError, ValueError)):
        s.entries(after=bad)
    with pytest.raises((TypeError, ValueError)):
        s.aentries(after=bad)


def test_aentries(stream_cls: type) -> None:
    s = stream_cls(4, history=10)

    async def main() -> list[int]:
        await s.asend_many([ev(i) for i in range(3)])
        await s.areceive()
        out = []

        async def produce() -> None:
            for i in range(3, 12):
                await s.asend(ev(i))
            s.close()

        task = asyncio.ensure_future(produce())
        async for n, e in s.aentries(after=0):
            assert num(e) == n - 1
            out.append(n)
        await task
        return out

    assert asyncio.run(asyncio.wait_for(main(), JOIN)) == list(range(1, 13))


def test_resume_with_a_live_producer(stream_cls: type) -> None:
    """A consumer stops mid-stream and resumes with entries(after=last): every event
    exactly once, in order, while a producer thread keeps sending."""
    total = 400
    s = stream_cls(16, history=64)

    def produce() -> None:
        for i in range(total):
            s.send(ev(i), timeout=JOIN)
            if i % 50 == 0:
                time.sleep(0.005)
        s.close()

    producer = threading.Thread(target=produce)
    producer.start()
    seen: list[int] = []
    last = 0
    stops = [50, 120, 121, 300]
    for stop in [*stops, None]:
        for n, e in s.entries(after=last if seen else None):
            assert num(e) == n - 1
            seen.append(n)
            last = n
            if stop is not None and n >= stop:
                break  # the consumer goes away; the next loop resumes it
        if stop is not None:
            time.sleep(0.01)  # meanwhile the producer runs on (and others may receive)
            # Someone else keeps draining while the consumer is away, within history.
            for _ in range(5):
                if s.try_receive() is None:
                    break
    producer.join(JOIN)
    assert not producer.is_alive()
    assert seen == list(range(1, total + 1))


# -- dropped --------------------------------------------------------------------------------


def test_dropped_counts_refusals_without_waiting(stream_cls: type) -> None:
    s = stream_cls(2, DROP)
    assert s.dropped == 0
    s.send_many([ev(1), ev(2)])
    with pytest.raises(fe.StreamFull):
        s.send(ev(3))
    assert s.dropped == 1
    assert s.send_many([ev(4), ev(5), ev(6)]) == 0
    assert s.dropped == 4
    assert s.try_send(ev(7)) is False
    assert s.dropped == 5
    with pytest.raises(fe.StreamFull):
        asyncio.run(s.asend(ev(8)))
    assert s.dropped == 6
    s.receive()
    assert asyncio.run(s.asend_many([ev(9), ev(10), ev(11)])) == 1
    assert s.dropped == 8


def test_dropped_ignores_waits_and_other_errors(stream_cls: type) -> None:
    s = stream_cls(1, BLOCK)
    s.send(ev(1))
    with pytest.raises(TimeoutError):
        s.send(ev(2), timeout=0.01)
    with pytest.raises(TimeoutError):
        s.send_many([ev(2)], timeout=0)
    with pytest.raises(TimeoutError):
        asyncio.run(s.asend(ev(2), timeout=0.01))
    with pytest.raises(fe.InvalidEvent):
        s.send(None)
    assert s.dropped == 0
    assert s.try_send(ev(3)) is False  # try_send counts under any policy
    assert s.dropped == 1
    s.close()
    with pytest.raises(fe.StreamClosed):
        s.send(ev(4))
    assert s.dropped == 1


# -- instance_id ------------------------------------------------------------------------------


def test_instance_id_is_stable_and_distinct(stream_cls: type) -> None:
    a, b = stream_cls(4), stream_cls(4)
    ida = a.instance_id
    assert isinstance(ida, str) and ida
    assert a.instance_id == ida
    assert b.instance_id != ida
    ids = {stream_cls(1).instance_id for _ in range(1000)}
    assert len(ids) == 1000


def test_instance_id_differs_across_processes(stream_cls: type) -> None:
    code = (
        "import fastevents as fe, sys; "
        f"cls = getattr(fe, {stream_cls.__name__!r}); print(cls(1).instance_id)"
    )
    ids = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        ).stdout.strip()
        for _ in range(2)
    }
    assert len(ids) == 2 and "" not in ids


# -- manager hooks ------------------------------------------------------------------------------


def test_waiting_counts_sync_and_async_waiters(stream_cls: type) -> None:
    s = stream_cls(1)
    assert s._waiting() == (0, 0)
    receivers = [Bg(s.receive, timeout=JOIN) for _ in range(2)]

    async def areceiver() -> Any:
        return await s.areceive(timeout=JOIN)

    areceivers = [Bg(asyncio.run, areceiver()) for _ in range(1)]
    deadline = time.monotonic() + JOIN
    while s._waiting() != (0, 3) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert s._waiting() == (0, 3)
    assert s._idle_seconds() == 0.0
    for i in range(3):
        s.send(ev(i))
    for bg in receivers + areceivers:
        bg.join()
    s.send(ev(9))
    senders = [Bg(s.send, ev(10), timeout=JOIN)]

    async def asender() -> None:
        await s.asend(ev(11), timeout=JOIN)

    asenders = [Bg(asyncio.run, asender())]
    while s._waiting() != (2, 0) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert s._waiting() == (2, 0)
    s.close()
    for bg in senders + asenders:
        assert isinstance(bg.error(), fe.StreamClosed)
    assert s._waiting() == (0, 0)


def test_last_activity_age_ignores_waiters(stream_cls: type) -> None:
    s = stream_cls(1)
    s.send(ev(1))
    s.receive()
    bg = Bg(s.receive, timeout=JOIN)
    time.sleep(0.2)
    assert s._idle_seconds() == 0.0  # a waiter keeps it from looking idle...
    assert s._last_activity_age() >= 0.15  # ...but is not activity
    s.send(ev(2))
    bg.join()
    assert s._last_activity_age() < 0.15


# -- one Stream type ----------------------------------------------------------------------------


def test_every_stream_is_a_stream(stream_cls: type) -> None:
    s = stream_cls(1)
    assert isinstance(s, fe.Stream)
    assert issubclass(stream_cls, fe.Stream)
    assert isinstance(fe.EventStream(1), fe.Stream)


def test_concurrent_receivers_and_replays_agree(stream_cls: type) -> None:
    """Threads receive (sync and async) while another thread replays over a small
    history: every replay is a contiguous run of numbers ending at most at the last
    received one, and pairs each number with the very event received under it."""
    s = stream_cls(4, history=8)
    total = 1500
    received: dict[int, fe.Event] = {}
    replays: list[list[tuple[int, fe.Event]]] = []
    lost = 0
    lock = threading.Lock()
    stop = threading.Event()

    def produce() -> None:
        for i in range(total):
            s.send(ev(i), timeout=JOIN)
            if i % 100 == 0:
                time.sleep(0.002)  # let the replayer in, whatever the core's speed
        s.close()

    def receive_sync() -> None:
        while True:
            try:
                n, e = s.receive_entry(timeout=JOIN)
            except fe.StreamClosed:
                return
            with lock:
                received[n] = e

    def receive_async() -> None:
        async def main() -> None:
            while True:
                try:
                    n, e = await s.areceive_entry(timeout=JOIN)
                except fe.StreamClosed:
                    return
                with lock:
                    received[n] = e

        asyncio.run(main())

    def replayer() -> None:
        nonlocal lost
        while not stop.is_set():
            after = max(0, s.last_seq - 6)  # usually within history=8: replays something
            try:
                got = s.replay(after)
            except fe.HistoryLost as exc:
                assert exc.oldest is not None and exc.oldest > after + 1
                lost += 1
                continue
            if got:
                nums = [n for n, _ in got]
                assert nums == list(range(after + 1, after + 1 + len(nums)))
                assert len(nums) <= 8
                replays.append(got)

    threads = [threading.Thread(target=f) for f in
               (produce, receive_sync, receive_sync, receive_async, replayer)]
    for t in threads:
        t.start()
    for t in threads[:4]:
        t.join(JOIN * 3)
    stop.set()
    threads[4].join(JOIN)
    assert not any(t.is_alive() for t in threads)
    assert sorted(received) == list(range(1, total + 1))
    assert all(num(e) == n - 1 for n, e in received.items())
    for got in replays:
        for n, e in got:
            assert received[n] is e
    assert replays, "the replayer never saw anything"
