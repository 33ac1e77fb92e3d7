"""What asend / areceive / areceive_entry / __anext__ return behaves as a coroutine.

The compiled twin returns a small awaitable (not a coroutine object) from these methods
so that a call that completes at once costs no coroutine; these tests pin down that it
is still driven like one, on both twins: nothing happens until it is awaited, asyncio
(create_task, wait_for, gather) and anyio accept it, and throw / close / reuse behave.
"""

from __future__ import annotations

import asyncio
import collections.abc
from typing import Any

import anyio
import pytest

import fastevents as fe


def ev(i: int = 0) -> fe.Event:
    return fe.text_delta_event(str(i))


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 10.0))


def test_they_are_coroutines(stream_cls: type) -> None:
    s = stream_cls(4)
    for aw in (s.asend(ev()), s.areceive(), s.areceive_entry(), s.__anext__()):
        assert isinstance(aw, collections.abc.Coroutine)
        assert asyncio.iscoroutine(aw)
        aw.close()
    assert len(s) == 0


def test_nothing_happens_until_awaited(stream_cls: type) -> None:
    s = stream_cls(4)
    s.asend(ev(1)).close()               # made, never awaited: nothing sent
    assert len(s) == 0 and s.last_seq == 0
    s.send(ev(2))
    s.areceive().close()                 # made, never awaited: nothing taken
    s.areceive_entry().close()
    s.__anext__().close()
    assert len(s) == 1
    assert s.receive().data["text"] == "2"


def test_a_task_cancelled_before_it_starts_takes_nothing(stream_cls: type) -> None:
    s = stream_cls(4)
    s.send(ev(1))

    async def main() -> None:
        t = asyncio.create_task(s.areceive())
        t.cancel()                       # before its first step
        with pytest.raises(asyncio.CancelledError):
            await t

    run(main())
    assert len(s) == 1


def test_create_task_wait_for_gather(stream_cls: type) -> None:
    s = stream_cls(2)

    async def main() -> list[Any]:
        getter = asyncio.create_task(s.areceive())     # waits: empty
        await asyncio.sleep(0)
        await asyncio.wait_for(s.asend(ev(1)), 5.0)
        got = await asyncio.wait_for(getter, 5.0)
        with pytest.raises(asyncio.TimeoutError):  # the builtin one from 3.11 on
            await asyncio.wait_for(s.areceive(), 0.05)
        await asyncio.gather(s.asend(ev(2)), s.asend(ev(3)))
        rest = await asyncio.gather(s.areceive_entry(), s.areceive())
        return [got, *rest]

    got, entry, last = run(main())
    assert got.data["text"] == "1"
    assert entry == (2, entry[1]) and entry[1].data["text"] == "2"
    assert last.data["text"] == "3"


def test_anyio_task_group(stream_cls: type) -> None:
    s = stream_cls(1)
    got: list[str] = []

    async def consume() -> None:
        async for e in s:
            got.append(e.data["text"])

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            for i in range(5):
                await s.asend(ev(i))
            s.close()

    anyio.run(main)
    assert got == ["0", "1", "2", "3", "4"]


def test_driven_by_hand(stream_cls: type) -> None:
    s = stream_cls(1)
    s.send(ev(7))
    aw = s.areceive().__await__()
    with pytest.raises(StopIteration) as info:
        aw.send(None)
    assert info.value.value.data["text"] == "7"
    with pytest.raises(RuntimeError):
        aw.send(None)                    # like a finished coroutine
    fresh = s.asend(ev(8))
    with pytest.raises(KeyError):
        fresh.throw(KeyError("x"))       # not started: the exception comes out
    assert len(s) == 0


def test_throw_while_waiting_leaves_the_stream_consistent(stream_cls: type) -> None:
    """An exception thrown into a parked receive unparks it; a later event is kept."""
    s = stream_cls(1)

    async def main() -> None:
        t = asyncio.create_task(s.areceive())
        await asyncio.sleep(0.01)
        assert s._waiting() == (0, 1)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        assert s._waiting() == (0, 0)
        await s.asend(ev(1))
        assert (await s.areceive()).data["text"] == "1"

    run(main())


def test_anext_ends_when_closed(stream_cls: type) -> None:
    s = stream_cls(2)

    async def main() -> list[str]:
        out = []

        async def later() -> None:
            await asyncio.sleep(0.01)
            await s.asend(ev(1))
            s.close()

        t = asyncio.create_task(later())
        async for e in s:                # waits (slow path), then ends on close
            out.append(e.data["text"])
        await t
        with pytest.raises(StopAsyncIteration):
            await s.__anext__()
        return out

    assert run(main()) == ["1"]


def test_closed_and_errors_at_await(stream_cls: type) -> None:
    s = stream_cls(1, fe.BackpressurePolicy.DROP)

    async def main() -> None:
        await s.asend(ev(1))
        with pytest.raises(fe.StreamFull):
            await s.asend(ev(2))
        with pytest.raises(fe.InvalidEvent):
            await s.asend(None)
        s.close()
        with pytest.raises(fe.StreamClosed):
            await s.asend(ev(3))
        assert (await s.areceive()).data["text"] == "1"
        with pytest.raises(fe.StreamClosed):
            await s.areceive()
        with pytest.raises(ValueError):
            await s.areceive(timeout=-1)

    run(main())
    assert s.dropped == 1


# -- a wait without a timeout on asyncio (the compiled twin parks on a future it yields
#    itself, with no coroutine of its own): the same rules as a coroutine's wait ----------


def test_parked_by_hand_then_closed_leaves_no_waiter(stream_cls: type) -> None:
    """close() on a parked awaitable takes it off the waiter list; a later event goes to
    the next receiver, not to the abandoned one."""
    s = stream_cls(1)

    async def main() -> None:
        aw = s.areceive().__await__()
        fut = aw.send(None)                       # parks: yields what the task waits on
        assert isinstance(fut, asyncio.Future)
        assert s._waiting() == (0, 1)
        aw.close()
        assert s._waiting() == (0, 0)
        t = asyncio.create_task(s.areceive())
        await asyncio.sleep(0)
        await s.asend(ev(5))
        assert (await asyncio.wait_for(t, 5)).data["text"] == "5"

    run(main())


def test_parked_by_hand_then_dropped_leaves_no_waiter(stream_cls: type) -> None:
    """An awaitable dropped while parked leaves the list, as a coroutine's finalizer
    closes it: otherwise a wake-up would go to nobody and the next receiver stall."""
    import gc

    s = stream_cls(1)

    async def main() -> None:
        aw = s.areceive().__await__()
        aw.send(None)
        assert s._waiting() == (0, 1)
        del aw
        gc.collect()
        assert s._waiting() == (0, 0)
        t = asyncio.create_task(s.areceive())
        await asyncio.sleep(0)
        await s.asend(ev(6))
        assert (await asyncio.wait_for(t, 5)).data["text"] == "6"

    run(main())


def test_parked_sender_resumed_after_room_sends_once(stream_cls: type) -> None:
    """A parked send, driven by hand, resumed once room appeared: sent exactly once."""
    s = stream_cls(1)
    s.send(ev(0))

    async def main() -> None:
        aw = s.asend(ev(1)).__await__()
        assert isinstance(aw.send(None), asyncio.Future)
        assert s._waiting() == (1, 0)
        assert s.try_receive().data["text"] == "0"   # room: wakes the sender
        with pytest.raises(StopIteration):
            aw.send(None)
        assert s._waiting() == (0, 0)
        assert [e.data["text"] for e in s.receive_many(10, timeout=1)] == ["1"]

    run(main())


def test_woken_waiters_on_one_loop_get_each_event_once(stream_cls: type) -> None:
    """Many tasks parked without timeouts on one loop, fed by the loop and by a thread:
    every event is delivered once, and no task is left waiting."""
    import threading

    s = stream_cls(4)
    n_tasks, per_task = 8, 250

    async def main() -> list[str]:
        got: list[str] = []

        async def consume() -> None:
            async for e in s:
                got.append(e.data["text"])

        async def produce(k: int) -> None:
            for i in range(per_task):
                await s.asend(ev(k * 10_000 + i))

        consumers = [asyncio.create_task(consume()) for _ in range(n_tasks)]
        th = threading.Thread(target=lambda: [s.send(ev(90_000 + i)) for i in range(per_task)])
        th.start()
        await asyncio.gather(*(produce(k) for k in range(n_tasks)))
        await asyncio.to_thread(th.join, 10)
        s.close()
        await asyncio.wait_for(asyncio.gather(*consumers), 10)
        return got

    got = run(main())
    want = [str(k * 10_000 + i) for k in range(n_tasks) for i in range(per_task)]
    want += [str(90_000 + i) for i in range(per_task)]
    assert sorted(got) == sorted(want)
