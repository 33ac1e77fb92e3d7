"""EventStream's async API driven through anyio, on its asyncio *and* trio backends
(GitHub-style issue #4; issue 10 for trio).

anyio's cancel scopes cancel a task with ``Task.cancel()`` (again on every loop iteration
until the task leaves the scope), so these tests check that a scope cancelling a waiting
``areceive`` / ``asend`` loses and duplicates nothing. Every test body runs under
``anyio.fail_after`` and threads are joined with a timeout, so a bug fails rather than
hangs. Both twins, through ``stream_cls`` (conftest.py).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import fastevents as fe

anyio = pytest.importorskip("anyio")

GUARD = 10.0
JOIN = 10.0


def ev(i: int = 0) -> fe.Event:
    return fe.text_delta_event(str(i))


def num(e: fe.Event) -> int:
    return int(e.data["text"])


BACKEND = "asyncio"


@pytest.fixture(params=["asyncio", "trio"], autouse=True)
def backend(request: pytest.FixtureRequest) -> str:
    """Every test runs on both anyio backends (trio: issue 10)."""
    global BACKEND
    if request.param == "trio":
        pytest.importorskip("trio")
    BACKEND = request.param
    return BACKEND


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    async def guarded() -> Any:
        with anyio.fail_after(GUARD):
            return await main()

    return anyio.run(guarded, backend=BACKEND)


def drain(s: Any) -> list[fe.Event]:
    out = []
    while (e := s.try_receive()) is not None:
        out.append(e)
    return out


def test_task_group_producers_and_consumers(stream_cls: type) -> None:
    """3 producer tasks, 3 consumer tasks and a consumer in a worker thread."""

    async def main() -> None:
        s = stream_cls(4)
        per = 150
        sent = {p: [ev(p * 1000 + i) for i in range(per)] for p in range(3)}
        got: dict[str, list[fe.Event]] = {}
        remaining = 3

        async def produce(p: int) -> None:
            nonlocal remaining
            for k, e in enumerate(sent[p]):
                if k % 30 == 0:
                    await s.asend_many(sent[p][k : k + 5])
                elif k % 30 < 5:
                    continue
                else:
                    await s.asend(e)
            remaining -= 1
            if remaining == 0:
                s.close()

        async def consume(name: str) -> None:
            got[name] = [e async for e in s]

        def consume_sync() -> None:
            got["thread"] = list(s)

        async with anyio.create_task_group() as tg:
            for k in range(3):
                tg.start_soon(consume, f"c{k}")
            tg.start_soon(anyio.to_thread.run_sync, consume_sync)
            for p in range(3):
                tg.start_soon(produce, p)

        everything = [e for lst in got.values() for e in lst]
        assert Counter(map(id, everything)) == Counter(
            id(e) for lst in sent.values() for e in lst
        ), "lost or duplicated events"
        for name, lst in got.items():
            for p in sent:
                mine = [num(e) for e in lst if num(e) // 1000 == p]
                assert mine == sorted(mine), f"{name} saw producer {p} out of order"

    run(main)


def test_cancel_scope_cancels_waiting_areceive_and_loses_nothing(stream_cls: type) -> None:
    async def main() -> None:
        s = stream_cls(4)
        result = None
        with anyio.move_on_after(0.05) as scope:
            result = await s.areceive()
        assert scope.cancelled_caught and result is None

        with anyio.CancelScope() as scope2:
            scope2.cancel()
            await s.areceive()  # cancelled at once
        assert scope2.cancelled_caught

        # the cancelled waiters are gone: the next event reaches the next receiver
        e = ev(1)
        got: list[fe.Event] = []

        async def recv() -> None:
            got.append(await s.areceive())

        async with anyio.create_task_group() as tg:
            tg.start_soon(recv)
            await anyio.sleep(0.01)
            await s.asend(e)
        assert got == [e] and got[0] is e
        assert len(s) == 0

    run(main)


def test_cancel_scope_cancels_waiting_asend_and_enqueues_nothing(stream_cls: type) -> None:
    async def main() -> None:
        s = stream_cls(1)
        s.send(ev(0))
        with anyio.move_on_after(0.05) as scope:
            await s.asend(ev(9))
        assert scope.cancelled_caught
        with anyio.move_on_after(0.05) as scope:
            await s.asend_many([ev(7), ev(8)])
        assert scope.cancelled_caught
        assert [num(e) for e in drain(s)] == [0]

    run(main)


def test_scope_cancelled_right_after_a_wake_up_loses_nothing(stream_cls: type) -> None:
    """Two receivers wait; one event arrives and the first receiver's scope is cancelled
    in the same loop iteration. (anyio does not cancel a task whose future is already
    resolved, so "first" may keep the event; or it is cancelled and passes the wake-up
    on.) Either way the event is received exactly once and a second event reaches the
    receiver still waiting: no stall."""

    async def main() -> None:
        s = stream_cls(4)
        got: dict[str, Any] = {}
        scopes: dict[str, Any] = {}

        async def recv(name: str) -> None:
            with anyio.CancelScope() as scope:
                scopes[name] = scope
                got[name] = await s.areceive()
                return
            got[name] = "cancelled"

        e, e2 = ev(1), ev(2)
        async with anyio.create_task_group() as tg:
            tg.start_soon(recv, "first")
            await anyio.sleep(0.01)
            tg.start_soon(recv, "second")
            await anyio.sleep(0.01)
            s.try_send(e)  # wakes "first" ...
            scopes["first"].cancel()  # ... whose scope is cancelled before it runs
            await anyio.sleep(0.01)
            s.try_send(e2)
        if got["first"] == "cancelled":
            assert got["second"] is e
            assert drain(s) == [e2]
        else:
            assert got["first"] is e and got["second"] is e2
            assert len(s) == 0

    run(main)


def test_fail_after_on_areceive_raises_timeout_and_loses_nothing(stream_cls: type) -> None:
    async def main() -> None:
        s = stream_cls(4)
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.05):
                await s.areceive()
        e = ev(1)
        s.send(e)
        assert await s.areceive() is e

    run(main)


def test_scope_timeouts_racing_a_thread_lose_nothing(stream_cls: type) -> None:
    """A thread sends while a task receives with very short cancel scopes: every event
    is either received by the task or still in the stream, exactly once."""

    async def main() -> None:
        s = stream_cls(3)
        n = 300
        sent = [ev(i) for i in range(n)]
        rng = random.Random(4)
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
            with anyio.move_on_after(rng.choice([0, 0.0001, 0.0005, 0.002])) as scope:
                try:
                    got.append(await s.areceive())
                except fe.StreamClosed:
                    break
            cancelled += scope.cancelled_caught
        await anyio.to_thread.run_sync(th.join, JOIN)
        assert not th.is_alive()
        assert Counter(map(id, got)) == Counter(map(id, sent)), "lost or duplicated events"
        assert [num(e) for e in got] == list(range(n))  # one receiver: FIFO
        assert cancelled > 0

    run(main)


def test_random_scope_cancellation_many_tasks(stream_cls: type) -> None:
    """4 senders and 4 receivers, each call in its own cancel scope that a chaos task
    cancels at random: completed sends are received exactly once, cancelled ones never."""

    async def main() -> None:
        rng = random.Random(7)
        s = stream_cls(rng.randint(1, 8))
        n = 240
        events = [ev(i) for i in range(n)]
        todo = list(range(n))
        completed: list[int] = []
        cancelled: list[int] = []
        got: list[int] = []
        live_scopes: list[Any] = []
        senders_left = 4

        async def sender() -> None:
            nonlocal senders_left
            while todo:
                i = todo.pop(0)
                with anyio.CancelScope() as scope:
                    live_scopes.append(scope)
                    try:
                        await s.asend(events[i])
                        completed.append(i)
                    finally:
                        live_scopes.remove(scope)
                if scope.cancelled_caught:
                    cancelled.append(i)
                await anyio.sleep(0)
            senders_left -= 1
            if senders_left == 0:
                s.close()

        async def receiver() -> None:
            while True:
                for _ in range(rng.randint(0, 4)):  # slow consumers: senders wait too
                    await anyio.sleep(0)
                with anyio.CancelScope() as scope:
                    live_scopes.append(scope)
                    try:
                        e = await s.areceive()
                    except fe.StreamClosed:
                        return
                    finally:
                        live_scopes.remove(scope)
                    assert e is events[num(e)]
                    got.append(num(e))
                await anyio.sleep(0)

        async def chaos() -> None:
            while not s.closed:
                for _ in range(rng.randint(0, 3)):
                    await anyio.sleep(0)
                if live_scopes and rng.random() < 0.6:
                    rng.choice(live_scopes).cancel()

        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(receiver)
            for _ in range(4):
                tg.start_soon(sender)
            tg.start_soon(chaos)

        assert len(set(got)) == len(got), "duplicated events"
        assert not set(got) & set(cancelled), "an event whose asend was cancelled arrived"
        assert sorted(got) == sorted(completed), "lost events"
        assert sorted(completed + cancelled) == list(range(n))
        assert cancelled, "the chaos task never cancelled a waiting asend"

    run(main)


def test_entries_and_batches_resume(stream_cls: type) -> None:
    """areceive_entry, areceive_many and aentries (replay, then live) on both backends."""

    async def main() -> None:
        s = stream_cls(2, history=4)

        async def produce() -> None:
            for i in range(10):
                await s.asend(ev(i))
            assert await s.asend_many([ev(10), ev(11)]) == 2
            s.close()

        seqs: list[int] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            seq, first = await s.areceive_entry()
            assert (seq, num(first)) == (1, 0)
            batch = await s.areceive_many(3)
            assert 1 <= len(batch) <= 2
            # Resume after 1: the batch comes back from history, then the live events.
            async for seq, e in s.aentries(after=1):
                assert num(e) == seq - 1
                seqs.append(seq)
        assert seqs == list(range(2, 13))

    run(main)
