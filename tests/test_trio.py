"""The async API under trio (issue 10): waiting, timeouts, trio's own cancel scopes,
cancellation (nothing lost, nothing duplicated), and trio mixed with threads and with
asyncio loops in other threads. anyio's trio backend runs tests/test_anyio.py.

Both twins through ``stream_cls``. Every trio run is guarded by ``trio.fail_after``
and threads are joined with a timeout, so a bug fails rather than hangs.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import fastevents as fe

trio = pytest.importorskip("trio")

GUARD = 10.0
JOIN = 10.0


def ev(i: int = 0) -> fe.Event:
    return fe.text_delta_event(str(i))


def num(e: fe.Event) -> int:
    return int(e.data["text"])


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    async def guarded() -> Any:
        with trio.fail_after(GUARD):
            return await main()

    return trio.run(guarded)


def drain(s: Any) -> list[fe.Event]:
    out = []
    while (e := s.try_receive()) is not None:
        out.append(e)
    return out


def test_import_does_not_import_trio() -> None:
    code = "import sys, fastevents; print('trio' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "False"


def test_unknown_async_library_gets_a_clear_error(stream_cls: type) -> None:
    """Driven by hand (no asyncio loop, no trio run): a wait is a clear RuntimeError."""
    s = stream_cls(1)
    coro = s.areceive()
    with pytest.raises(RuntimeError, match="asyncio event loop or trio"):
        coro.send(None)
    s.send(ev(1))
    coro = s.asend(ev(2))
    with pytest.raises(RuntimeError, match="asyncio event loop or trio"):
        coro.send(None)
    assert [num(e) for e in drain(s)] == [1]


# -- waiting and waking -------------------------------------------------------------------------


def test_receiver_woken_by_a_task_of_the_same_run(stream_cls: type) -> None:
    async def main() -> None:
        s = stream_cls(2)
        got: list[Any] = []

        async def recv() -> None:
            got.append(await s.areceive())
            got.append(await s.areceive_entry())

        async with trio.open_nursery() as n:
            n.start_soon(recv)
            await trio.sleep(0.02)  # recv is parked now
            e1, e2 = ev(1), ev(2)
            await s.asend(e1)
            await trio.sleep(0.02)
            s.send(e2)  # a sync send from the trio thread wakes it too
        assert got[0] is e1 and got[1] == (2, e2)

    run(main)


def test_receiver_woken_by_a_thread(stream_cls: type) -> None:
    async def main() -> None:
        s = stream_cls(2)
        sent = [ev(i) for i in range(50)]

        def produce() -> None:
            for e in sent:
                s.send(e, timeout=JOIN)
                time.sleep(0.001)
            s.close()

        th = threading.Thread(target=produce, daemon=True)
        th.start()
        got = [e async for e in s]
        await trio.to_thread.run_sync(th.join, JOIN)
        assert got == sent and all(a is b for a, b in zip(got, sent, strict=True))

    run(main)


def test_sender_waits_for_room_freed_by_a_thread(stream_cls: type) -> None:
    async def main() -> None:
        s = stream_cls(1)
        got: list[fe.Event] = []

        def consume() -> None:
            got.extend(s)

        th = threading.Thread(target=consume, daemon=True)
        sent = [ev(i) for i in range(40)]
        th.start()
        await s.asend(sent[0])
        assert await s.asend_many(sent[1:]) == 39
        s.close()
        await trio.to_thread.run_sync(th.join, JOIN)
        assert got == sent

    run(main)


def test_areceive_many_and_aentries(stream_cls: type) -> None:
    async def main() -> None:
        s = stream_cls(8, history=8)
        got: list[Any] = []

        async def recv() -> None:
            got.append(await s.areceive_many(5))

        async with trio.open_nursery() as n:
            n.start_soon(recv)
            await trio.sleep(0.02)
            await s.asend_many([ev(i) for i in range(3)])
        assert [num(e) for e in got[0]] == [0, 1, 2]

        async def produce() -> None:
            for i in range(3, 10):
                await s.asend(ev(i))
                await trio.sleep(0)
            s.close()

        entries = []
        async with trio.open_nursery() as n:
            n.start_soon(produce)
            async for seq, e in s.aentries(after=1):
                entries.append((seq, num(e)))
        assert entries == [(seq, seq - 1) for seq in range(2, 11)]

    run(main)


# -- timeouts and trio's cancel scopes ------------------------------------------------------------


def test_timeout_argument(stream_cls: type) -> None:
    async def main() -> None:
        s = stream_cls(1, stream_id="t")
        with pytest.raises(TimeoutError):
            await s.areceive(timeout=0.02)
        with pytest.raises(TimeoutError):
            await s.areceive_entry(timeout=0.02)
        with pytest.raises(TimeoutError):
            await s.areceive_many(3, timeout=0.02)
        s.send(ev(0))
        with pytest.raises(TimeoutError) as info:
            await s.asend(ev(1), timeout=0.02)
        assert "stream t" in str(info.value)
        with pytest.raises(TimeoutError) as info:
            await s.asend_many([ev(2)], timeout=0.02)
        assert info.value.sent == 0  # type: ignore[attr-defined]
        with pytest.raises(TimeoutError):
            await s.asend(ev(3), timeout=0)
        assert [num(e) for e in drain(s)] == [0]
        # Nothing stale is left behind: the next receiver gets the next event.
        e = ev(4)
        s.send(e)
        assert await s.areceive(timeout=JOIN) is e

    run(main)


def test_cancel_scopes_lose_nothing(stream_cls: type) -> None:
    async def main() -> None:
        s = stream_cls(1)
        with trio.move_on_after(0.02) as scope:
            await s.areceive()
        assert scope.cancelled_caught
        with trio.CancelScope() as scope2:
            scope2.cancel()
            await s.areceive()
        assert scope2.cancelled_caught
        with pytest.raises(trio.TooSlowError):
            with trio.fail_after(0.02):
                await s.areceive_entry()
        e = ev(1)
        s.send(e)
        with trio.move_on_after(0.02) as scope:
            await s.asend(ev(2))  # full: waits, then is cancelled
        assert scope.cancelled_caught
        with trio.move_on_after(0.02) as scope:
            await s.asend_many([ev(3), ev(4)])
        assert scope.cancelled_caught
        assert drain(s) == [e]
        assert s._waiting() == (0, 0)  # no cancelled waiter is left parked
        # The cancelled waiters are gone: a new receiver gets the next event.
        got = []

        async def recv() -> None:
            got.append(await s.areceive())

        async with trio.open_nursery() as n:
            n.start_soon(recv)
            await trio.sleep(0.02)
            e5 = ev(5)
            await s.asend(e5)
        assert got == [e5]

    run(main)


def test_scope_deadline_shorter_than_timeout(stream_cls: type) -> None:
    async def main() -> None:
        s = stream_cls(1)
        with trio.move_on_after(0.02) as scope:
            await s.areceive(timeout=JOIN)
        assert scope.cancelled_caught
        with pytest.raises(TimeoutError):
            with trio.move_on_after(JOIN):
                await s.areceive(timeout=0.02)

    run(main)


def test_woken_then_cancelled_receiver_passes_the_wake_up_on(stream_cls: type) -> None:
    """Two receivers wait; one event arrives and the first one's scope is cancelled in
    the same tick: the event is received exactly once and nothing stalls."""

    async def main() -> None:
        s = stream_cls(4)
        got: dict[str, Any] = {}
        scopes: dict[str, Any] = {}

        async def recv(name: str) -> None:
            with trio.CancelScope() as scope:
                scopes[name] = scope
                got[name] = await s.areceive()
                return
            got[name] = "cancelled"

        e, e2 = ev(1), ev(2)
        async with trio.open_nursery() as n:
            n.start_soon(recv, "first")
            await trio.sleep(0.02)
            n.start_soon(recv, "second")
            await trio.sleep(0.02)
            s.try_send(e)  # wakes "first" ...
            scopes["first"].cancel()  # ... whose scope is cancelled before it runs
            await trio.sleep(0.02)
            s.try_send(e2)
        if got["first"] == "cancelled":
            assert got["second"] is e
            assert drain(s) == [e2]
        else:
            assert got["first"] is e and got["second"] is e2
            assert len(s) == 0

    run(main)


def test_random_cancellation_with_a_thread_producer(stream_cls: type) -> None:
    async def main() -> None:
        s = stream_cls(3)
        n = 300
        sent = [ev(i) for i in range(n)]
        rng = random.Random(5)
        got: list[fe.Event] = []
        cancelled = 0

        def produce() -> None:
            for i, e in enumerate(sent):
                s.send(e, timeout=JOIN)
                if i % 7 == 0:
                    time.sleep(0.0005)
            s.close()

        th = threading.Thread(target=produce, daemon=True)
        th.start()
        while True:
            with trio.move_on_after(rng.choice([0, 0.0001, 0.0005, 0.002])) as scope:
                try:
                    got.append(await s.areceive())
                except fe.StreamClosed:
                    break
            cancelled += scope.cancelled_caught
        await trio.to_thread.run_sync(th.join, JOIN)
        assert Counter(map(id, got)) == Counter(map(id, sent)), "lost or duplicated events"
        assert [num(e) for e in got] == list(range(n))
        assert cancelled > 0

    run(main)


def test_random_cancellation_of_senders_and_receivers(stream_cls: type) -> None:
    """4 senders and 4 receivers in trio, a chaos task cancelling their scopes: completed
    sends arrive exactly once, cancelled ones never."""

    async def main() -> None:
        rng = random.Random(11)
        s = stream_cls(rng.randint(1, 6))
        n = 240
        events = [ev(i) for i in range(n)]
        todo = list(range(n))
        completed: list[int] = []
        cancelled: list[int] = []
        got: list[int] = []
        live: list[Any] = []
        senders_left = 4

        async def sender() -> None:
            nonlocal senders_left
            while todo:
                i = todo.pop(0)
                with trio.CancelScope() as scope:
                    live.append(scope)
                    try:
                        await s.asend(events[i])
                        completed.append(i)
                    finally:
                        live.remove(scope)
                if scope.cancelled_caught:
                    cancelled.append(i)
                await trio.sleep(0)
            senders_left -= 1
            if senders_left == 0:
                s.close()

        async def receiver() -> None:
            while True:
                for _ in range(rng.randint(0, 4)):
                    await trio.sleep(0)
                with trio.CancelScope() as scope:
                    live.append(scope)
                    try:
                        e = await s.areceive()
                    except fe.StreamClosed:
                        return
                    finally:
                        live.remove(scope)
                    got.append(num(e))
                await trio.sleep(0)

        async def chaos() -> None:
            while not s.closed:
                for _ in range(rng.randint(0, 3)):
                    await trio.sleep(0)
                if live and rng.random() < 0.6:
                    rng.choice(live).cancel()

        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(receiver)
            for _ in range(4):
                nursery.start_soon(sender)
            nursery.start_soon(chaos)

        assert len(set(got)) == len(got), "duplicated events"
        assert not set(got) & set(cancelled)
        assert sorted(got) == sorted(completed), "lost events"
        assert sorted(completed + cancelled) == list(range(n))
        assert cancelled

    run(main)


# -- trio, asyncio and threads on one stream ------------------------------------------------------


def test_trio_asyncio_and_threads_share_one_stream(stream_cls: type) -> None:
    """Producers: a trio task, an asyncio task (loop in another thread), a thread.
    Consumers: the same three kinds. Every event is received exactly once, in each
    producer's order."""
    s = stream_cls(2)
    per = 150
    sent = {p: [ev(p * 1000 + i) for i in range(per)] for p in range(3)}
    got: dict[str, list[fe.Event]] = {}
    left = [3]
    lock = threading.Lock()

    def done_producing() -> None:
        with lock:
            left[0] -= 1
            if left[0] == 0:
                s.close()

    async def trio_main() -> None:
        async def produce() -> None:
            for e in sent[0]:
                await s.asend(e)
            done_producing()

        async def consume() -> None:
            got["trio"] = [e async for e in s]

        async with trio.open_nursery() as n:
            n.start_soon(consume)
            n.start_soon(produce)

    async def asyncio_main() -> None:
        async def produce() -> None:
            for e in sent[1]:
                await s.asend(e)
            done_producing()

        async def consume() -> None:
            got["asyncio"] = [e async for e in s]

        await asyncio.gather(produce(), consume())

    def thread_produce() -> None:
        for e in sent[2]:
            s.send(e, timeout=JOIN)
        done_producing()

    def thread_consume() -> None:
        got["thread"] = list(s)

    errors: list[BaseException] = []

    def guarded(fn: Callable[[], Any]) -> Callable[[], None]:
        def body() -> None:
            try:
                fn()
            except BaseException as exc:
                errors.append(exc)

        return body

    threads = [
        threading.Thread(target=guarded(lambda: run(trio_main)), daemon=True),
        threading.Thread(
            target=guarded(lambda: asyncio.run(asyncio.wait_for(asyncio_main(), GUARD))),
            daemon=True,
        ),
        threading.Thread(target=guarded(thread_produce), daemon=True),
        threading.Thread(target=guarded(thread_consume), daemon=True),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN + GUARD)
    assert not any(t.is_alive() for t in threads), "hung"
    assert not errors, errors
    everything = [e for lst in got.values() for e in lst]
    assert Counter(map(id, everything)) == Counter(
        id(e) for lst in sent.values() for e in lst
    ), "lost or duplicated events"
    for name, lst in got.items():
        for p in sent:
            mine = [num(e) for e in lst if num(e) // 1000 == p]
            assert mine == sorted(mine), f"{name} saw producer {p} out of order"


def test_two_trio_runs_in_two_threads(stream_cls: type) -> None:
    """A trio run in one thread receives what a trio run in another thread sends."""
    s = stream_cls(1)
    sent = [ev(i) for i in range(100)]
    got: list[fe.Event] = []

    async def produce() -> None:
        for e in sent:
            await s.asend(e)
        s.close()

    async def consume() -> None:
        got.extend([e async for e in s])

    a = threading.Thread(target=run, args=(consume,), daemon=True)
    b = threading.Thread(target=run, args=(produce,), daemon=True)
    a.start()
    time.sleep(0.02)
    b.start()
    a.join(JOIN + GUARD)
    b.join(JOIN + GUARD)
    assert not a.is_alive() and not b.is_alive()
    assert got == sent
