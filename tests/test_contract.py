"""The stream contract, written once and run on every backend: both in-process twins and
Redis (a real ``redis-server`` started by the fixtures; see ``_redis_fixtures``).

``stream_factory(buffer_size=100, policy=BLOCK, history=0)`` makes a fresh stream of the
backend under test. What only some backends promise carries a marker:
``in_process_only`` (identity of received objects).
"""

from __future__ import annotations

import asyncio
import copy
import pickle
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

import fastevents as fe
from _bg import Bg
from _redis_fixtures import (  # noqa: F401  (fixtures)
    redis_manager_factory,
    redis_server,
    redis_url,
    unique,
)

BLOCK = fe.BackpressurePolicy.BLOCK
DROP = fe.BackpressurePolicy.DROP

StreamFactory = Callable[..., fe.Stream]


def _cython_param() -> Any:
    reason = None
    if fe.CEventStream is None:
        reason = f"compiled core unavailable: {fe.EXTENSION_IMPORT_ERROR!r}"
    marks = [pytest.mark.c_extension] + ([pytest.mark.skip(reason=reason)] if reason else [])
    return pytest.param("cython", marks=marks)


@pytest.fixture(params=["python", _cython_param(), "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def stream_factory(backend: str, request: pytest.FixtureRequest) -> StreamFactory:
    if backend == "redis":
        managers = request.getfixturevalue("redis_manager_factory")

        def make_redis(
            buffer_size: int = 100, policy: fe.BackpressurePolicy = BLOCK, history: int = 0,
        ) -> fe.Stream:
            m = managers(buffer_size, policy, history=history, socket_timeout=5.0)
            return m.create_stream(unique("s"))  # type: ignore[no-any-return]

        return make_redis

    cls = fe.PyEventStream if backend == "python" else fe.CEventStream

    def make_local(
        buffer_size: int = 100, policy: fe.BackpressurePolicy = BLOCK, history: int = 0,
    ) -> fe.Stream:
        return cls(buffer_size, policy, stream_id=unique("s"), history=history)  # type: ignore[misc]

    return make_local


ManagerFactory = Callable[..., Any]


@pytest.fixture
def manager_factory(backend: str, request: pytest.FixtureRequest) -> ManagerFactory:
    """``manager_factory(buffer_size=100, policy=BLOCK, history=0)``: a fresh manager of
    the backend under test (in-process managers on the twin under test)."""
    if backend == "redis":
        managers = request.getfixturevalue("redis_manager_factory")

        def make_redis(
            buffer_size: int = 100, policy: fe.BackpressurePolicy = BLOCK, history: int = 0,
        ) -> Any:
            return managers(buffer_size, policy, history=history, socket_timeout=5.0)

        return make_redis
    cls = fe.PyEventStream if backend == "python" else fe.CEventStream

    def make_local(
        buffer_size: int = 100, policy: fe.BackpressurePolicy = BLOCK, history: int = 0,
    ) -> Any:
        return fe.StreamManager(
            buffer_size, policy, stream_class=cls, history=history)  # type: ignore[arg-type]

    return make_local


in_process_only = pytest.mark.in_process_only


T0 = datetime(2024, 1, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


def ev(i: int) -> fe.Event:
    """Event ``i``; equal to any other ``ev(i)`` (fixed timestamp)."""
    return fe.Event(fe.EventType.TEXT_DELTA, {"text": str(i)}, timestamp=T0)


def texts(events: list[fe.Event]) -> list[str]:
    return [e.data["text"] for e in events]


# -- sending and receiving ----------------------------------------------------------------


def test_roundtrip_in_order(stream_factory: StreamFactory) -> None:
    s = stream_factory(10)
    sent = [ev(i) for i in range(5)]
    for e in sent:
        s.send(e)
    assert len(s) == 5
    got = [s.receive(timeout=5) for _ in range(5)]
    assert got == sent
    assert len(s) == 0


def test_is_a_stream(stream_factory: StreamFactory) -> None:
    s = stream_factory()
    assert isinstance(s, fe.Stream)


def test_usage_event_roundtrip(stream_factory: StreamFactory) -> None:
    s = stream_factory()
    e = fe.usage_event(1, 2, 3)
    s.send(e)
    got = s.receive(timeout=5)
    assert got == e and got.type == fe.EventType.USAGE and got.data == e.data


@pytest.mark.in_process_only
def test_receive_returns_same_object(backend: str, stream_factory: StreamFactory) -> None:
    if backend == "redis":
        pytest.skip("Redis returns an equal event, not the same object")
    s = stream_factory()
    e = ev(1)
    s.send(e)
    assert s.receive() is e


def test_invalid_events(stream_factory: StreamFactory) -> None:
    s = stream_factory()
    with pytest.raises(fe.InvalidEvent, match="None"):
        s.send(None)  # type: ignore[arg-type]
    with pytest.raises(fe.InvalidEvent):
        s.send("x")  # type: ignore[arg-type]
    with pytest.raises(fe.InvalidEvent):
        s.send(fe.Event(fe.EventType.TEXT_DELTA, {}, timestamp=None))
    with pytest.raises(fe.InvalidEvent):
        s.send_many([ev(1), None])  # type: ignore[list-item]
    assert len(s) == 0


def test_bad_arguments(stream_factory: StreamFactory) -> None:
    s = stream_factory()
    with pytest.raises(ValueError):
        s.receive(timeout=-1)
    with pytest.raises(TypeError):
        s.receive(timeout="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        s.receive_many(0)
    with pytest.raises(TypeError):
        s.policy = "DROP"  # type: ignore[assignment]
    with pytest.raises(ValueError):
        s.policy = 7  # type: ignore[assignment]


def test_bound_and_try_send(stream_factory: StreamFactory) -> None:
    s = stream_factory(3)
    assert s.buffer_size == 3
    assert all(s.try_send(ev(i)) for i in range(3))
    assert s.try_send(ev(3)) is False
    assert len(s) == 3
    assert s.try_receive() == ev(0)
    assert s.try_send(ev(4)) is True
    assert texts(s.receive_many(10)) == ["1", "2", "4"]
    assert s.try_receive() is None


def test_drop_policy(stream_factory: StreamFactory) -> None:
    s = stream_factory(2, DROP)
    assert s.policy == DROP
    s.send(ev(0))
    s.send(ev(1))
    with pytest.raises(fe.StreamFull) as info:
        s.send(ev(2))
    assert info.value.buffer_size == 2
    assert fe.is_stream_full(info.value)
    assert texts(s.receive_many(5)) == ["0", "1"]


def test_policy_switch(stream_factory: StreamFactory) -> None:
    s = stream_factory(1)
    s.set_backpressure_policy(DROP)
    assert s.policy == DROP
    s.policy = BLOCK
    assert s.policy == BLOCK


def test_blocked_sender_keeps_policy_after_switch(stream_factory: StreamFactory) -> None:
    s = stream_factory(1, BLOCK)
    s.send(ev(0))
    bg = Bg(s.send, ev(1), timeout=10)
    time.sleep(0.2)
    s.policy = DROP
    time.sleep(0.2)
    assert bg.waiting
    assert s.receive(timeout=5) == ev(0)
    bg.join()
    assert s.receive(timeout=5) == ev(1)


def test_send_timeout(stream_factory: StreamFactory) -> None:
    s = stream_factory(1)
    s.send(ev(0))
    with pytest.raises(TimeoutError):
        s.send(ev(1), timeout=0)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        s.send(ev(1), timeout=0.2)
    assert 0.15 < time.monotonic() - t0 < 5
    assert len(s) == 1


def test_receive_timeout(stream_factory: StreamFactory) -> None:
    s = stream_factory()
    with pytest.raises(TimeoutError):
        s.receive(timeout=0)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        s.receive(timeout=0.2)
    assert 0.15 < time.monotonic() - t0 < 5
    with pytest.raises(TimeoutError):
        s.receive_many(3, timeout=0.1)


def test_blocked_receiver_woken(stream_factory: StreamFactory) -> None:
    s = stream_factory()
    bg = Bg(s.receive, timeout=10)
    time.sleep(0.1)
    s.send(ev(7))
    assert bg.join() == ev(7)


def test_blocked_sender_woken(stream_factory: StreamFactory) -> None:
    s = stream_factory(1)
    s.send(ev(0))
    bg = Bg(s.send, ev(1), timeout=10)
    time.sleep(0.1)
    assert bg.waiting
    assert s.receive(timeout=5) == ev(0)
    bg.join()
    assert s.receive(timeout=5) == ev(1)


def test_cancel_token(stream_factory: StreamFactory) -> None:
    s = stream_factory(1)
    token = threading.Event()
    bg = Bg(s.receive, cancel=token)
    time.sleep(0.1)
    token.set()
    assert isinstance(bg.error(), fe.Cancelled)
    s.send(ev(0))
    # A token set before a send that has room does not stop it.
    s2 = stream_factory(1)
    s2.send(ev(0), cancel=token)
    bg = Bg(s2.send, ev(1), cancel=(t2 := threading.Event()))
    time.sleep(0.1)
    t2.set()
    assert isinstance(bg.error(), fe.Cancelled)
    assert len(s2) == 1


# -- batches ------------------------------------------------------------------------------


def test_send_many_receive_many(stream_factory: StreamFactory) -> None:
    s = stream_factory(100)
    assert s.send_many([ev(i) for i in range(10)]) == 10
    assert texts(s.receive_many(4)) == ["0", "1", "2", "3"]
    assert texts(s.receive_many(100)) == [str(i) for i in range(4, 10)]


def test_send_many_drop_partial(stream_factory: StreamFactory) -> None:
    s = stream_factory(3, DROP)
    assert s.send_many([ev(i) for i in range(5)]) == 3
    assert texts(s.receive_many(10)) == ["0", "1", "2"]


def test_send_many_blocks_until_all_in(stream_factory: StreamFactory) -> None:
    s = stream_factory(2)
    bg = Bg(s.send_many, [ev(i) for i in range(6)], timeout=10)
    got: list[fe.Event] = []
    while len(got) < 6:
        got.extend(s.receive_many(10, timeout=5))
    assert bg.join() == 6
    assert texts(got) == [str(i) for i in range(6)]


def test_send_many_timeout_carries_sent(stream_factory: StreamFactory) -> None:
    s = stream_factory(2)
    with pytest.raises(TimeoutError) as info:
        s.send_many([ev(i) for i in range(4)], timeout=0.2)
    assert info.value.sent == 2  # type: ignore[attr-defined]


# -- closing ------------------------------------------------------------------------------


def test_close_drains_then_ends(stream_factory: StreamFactory) -> None:
    s = stream_factory()
    s.send_many([ev(0), ev(1)])
    s.close()
    assert s.closed
    with pytest.raises(fe.StreamClosed):
        s.send(ev(2))
    with pytest.raises(fe.StreamClosed):
        s.try_send(ev(2))
    assert list(s) == [ev(0), ev(1)]
    assert s.try_receive() is None
    assert s.receive_many(3) == []
    with pytest.raises(fe.StreamClosed):
        s.receive(timeout=1)
    with pytest.raises(fe.StreamClosed):
        s.close()


def test_close_wakes_waiters(stream_factory: StreamFactory) -> None:
    s = stream_factory(1)
    receiver = Bg(s.receive, timeout=10)
    time.sleep(0.1)
    s.send(ev(0))
    assert receiver.join() == ev(0)
    s.send(ev(1))
    sender = Bg(s.send, ev(2), timeout=10)
    time.sleep(0.1)
    s.close()
    assert isinstance(sender.error(), fe.StreamClosed)
    s2 = stream_factory(1)
    receiver = Bg(s2.receive, timeout=10)
    time.sleep(0.1)
    t0 = time.monotonic()
    s2.close()
    assert isinstance(receiver.error(), fe.StreamClosed)
    assert time.monotonic() - t0 < 2


def test_context_manager(stream_factory: StreamFactory) -> None:
    with stream_factory() as s:
        s.send(ev(0))
    assert s.closed
    assert s.receive() == ev(0)


def test_iteration_ends_on_close(stream_factory: StreamFactory) -> None:
    s = stream_factory(2)
    bg = Bg(lambda: [e for e in s])
    for i in range(5):
        s.send(ev(i), timeout=5)
    s.close()
    assert texts(bg.join()) == [str(i) for i in range(5)]


def test_threads_exactly_once(stream_factory: StreamFactory) -> None:
    s = stream_factory(8)
    n_per, producers = 100, 3
    results: list[list[fe.Event]] = [[] for _ in range(3)]

    def consume(out: list[fe.Event]) -> None:
        for e in s:
            out.append(e)

    consumers = [Bg(consume, r) for r in results]
    prods = [Bg(lambda p=p: [s.send(fe.text_delta_event(f"{p}:{i}"), timeout=10)
                             for i in range(n_per)]) for p in range(producers)]
    for prod in prods:
        prod.join(30)
    s.close()
    for c in consumers:
        c.join(30)
    got = [e.data["text"] for r in results for e in r]
    assert sorted(got) == sorted(f"{p}:{i}" for p in range(producers) for i in range(n_per))
    for r in results:  # per-producer order within each consumer
        for p in range(producers):
            mine = [int(e.data["text"].split(":")[1]) for e in r
                    if e.data["text"].startswith(f"{p}:")]
            assert mine == sorted(mine)


def test_refuses_copy_and_pickle(stream_factory: StreamFactory) -> None:
    s = stream_factory()
    with pytest.raises(TypeError):
        pickle.dumps(s)
    with pytest.raises(TypeError):
        copy.copy(s)


# -- asyncio ------------------------------------------------------------------------------


def test_async_roundtrip(stream_factory: StreamFactory) -> None:
    s = stream_factory(2)

    async def main() -> list[fe.Event]:
        async def produce() -> None:
            for i in range(5):
                await s.asend(ev(i), timeout=5)
            assert await s.asend_many([ev(5), ev(6)], timeout=5) == 2
            s.close()

        task = asyncio.ensure_future(produce())
        got = [e async for e in s]
        await task
        return got

    assert texts(asyncio.run(main())) == [str(i) for i in range(7)]


def test_async_timeouts_and_many(stream_factory: StreamFactory) -> None:
    s = stream_factory(1)

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await s.areceive(timeout=0.1)
        await s.asend(ev(0))
        with pytest.raises(TimeoutError):
            await s.asend(ev(1), timeout=0.1)
        assert texts(await s.areceive_many(5, timeout=1)) == ["0"]
        s.close()
        assert await s.areceive_many(5) == []
        with pytest.raises(fe.StreamClosed):
            await s.areceive()

    asyncio.run(main())


def test_async_woken_by_thread(stream_factory: StreamFactory) -> None:
    s = stream_factory()

    async def main() -> fe.Event:
        threading.Timer(0.1, s.send, args=(ev(9),)).start()
        return await s.areceive(timeout=10)

    assert asyncio.run(main()) == ev(9)


def test_async_drop(stream_factory: StreamFactory) -> None:
    s = stream_factory(1, DROP)

    async def main() -> None:
        await s.asend(ev(0))
        with pytest.raises(fe.StreamFull):
            await s.asend(ev(1))
        assert await s.asend_many([ev(2), ev(3)]) == 0

    asyncio.run(main())


def test_async_cancel_loses_nothing(stream_factory: StreamFactory) -> None:
    s = stream_factory(4)
    total = 60

    async def main() -> list[str]:
        got: list[str] = []

        async def consume() -> None:
            while True:
                got.append((await s.areceive()).data["text"])

        async def produce() -> None:
            for i in range(total):
                await s.asend(ev(i), timeout=10)

        prod = asyncio.ensure_future(produce())
        deadline = time.monotonic() + 30
        while not prod.done() or len(s):
            assert time.monotonic() < deadline
            task = asyncio.ensure_future(consume())
            await asyncio.sleep(0.01)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        await prod
        return got

    got = asyncio.run(main())
    assert sorted(got, key=int) == [str(i) for i in range(total)]
    assert got == sorted(got, key=int)  # one consumer at a time: order kept


# -- sequence numbers, history, resume --------------------------------------------------


def test_sequence_numbers(stream_factory: StreamFactory) -> None:
    s = stream_factory(10)
    assert s.last_seq == 0
    s.send(ev(0))
    s.send_many([ev(1), ev(2)])
    assert s.last_seq == 3
    assert s.receive_entry() == (1, ev(0))
    assert s.try_receive_entry() == (2, ev(1))

    async def main() -> tuple[int, fe.Event]:
        return await s.areceive_entry(timeout=1)

    assert asyncio.run(main()) == (3, ev(2))
    assert s.try_receive_entry() is None


def test_replay_and_history_lost(stream_factory: StreamFactory) -> None:
    s = stream_factory(10, history=3)
    assert s.history == 3
    s.send_many([ev(i) for i in range(5)])
    assert s.replay(0) == []  # nothing received yet
    s.receive_many(5)
    assert s.replay(2) == [(3, ev(2)), (4, ev(3)), (5, ev(4))]
    assert s.replay(4) == [(5, ev(4))]
    assert s.replay(5) == []
    with pytest.raises(fe.HistoryLost) as info:
        s.replay(1)
    assert info.value.oldest == 3
    with pytest.raises(ValueError):
        s.replay(-1)


def test_no_history_is_lost(stream_factory: StreamFactory) -> None:
    s = stream_factory(10)
    s.send(ev(0))
    assert s.replay(0) == []
    s.receive()
    with pytest.raises(fe.HistoryLost):
        s.replay(0)
    assert s.replay(1) == []


def test_entries_resume(stream_factory: StreamFactory) -> None:
    s = stream_factory(10, history=10)
    s.send_many([ev(i) for i in range(4)])
    it = s.entries()
    first = [next(it), next(it)]
    assert first == [(1, ev(0)), (2, ev(1))]
    # Reconnect with the last number handled: the rest, exactly once.
    s.send(ev(4))
    s.close()
    assert list(s.entries(after=1)) == [(2, ev(1)), (3, ev(2)), (4, ev(3)), (5, ev(4))]


def test_aentries(stream_factory: StreamFactory) -> None:
    s = stream_factory(10, history=5)
    s.send_many([ev(i) for i in range(3)])
    s.receive()
    s.close()

    async def main() -> list[tuple[int, fe.Event]]:
        return [e async for e in s.aentries(after=0)]

    assert asyncio.run(main()) == [(1, ev(0)), (2, ev(1)), (3, ev(2))]


def test_dropped_and_instance_id(stream_factory: StreamFactory) -> None:
    s = stream_factory(1, DROP)
    assert s.dropped == 0
    s.send(ev(0))
    with pytest.raises(fe.StreamFull):
        s.send(ev(1))
    assert s.try_send(ev(2)) is False
    assert s.send_many([ev(3), ev(4)]) == 0
    assert s.dropped == 4
    other = stream_factory(1)
    assert s.instance_id
    assert s.instance_id == s.instance_id != other.instance_id


# -- trio ---------------------------------------------------------------------------------


def test_trio_roundtrip_timeout_and_cancel(stream_factory: StreamFactory) -> None:
    trio = pytest.importorskip("trio")
    s = stream_factory(2)

    async def main() -> list[str]:
        got: list[str] = []
        with pytest.raises(TimeoutError):
            await s.areceive(timeout=0.1)
        with trio.move_on_after(0.2):  # a cancelled wait takes nothing
            await s.areceive()

        async def consume() -> None:
            async for e in s:
                got.append(e.data["text"])

        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            for i in range(5):
                await s.asend(ev(i), timeout=5)
            assert await s.asend_many([ev(5), ev(6)], timeout=5) == 2
            threading.Timer(0.2, s.close).start()  # closed from another thread
        return got

    assert trio.run(main) == [str(i) for i in range(7)]


def test_loops_in_several_threads_and_a_thread(stream_factory: StreamFactory) -> None:
    s = stream_factory(3)
    n = 60

    def loop_consumer() -> list[str]:
        async def main() -> list[str]:
            return [e.data["text"] async for e in s]

        return asyncio.run(main())

    def loop_producer(start: int) -> None:
        async def main() -> None:
            for i in range(start, n, 3):
                await s.asend(ev(i), timeout=10)

        asyncio.run(main())

    consumers = [Bg(loop_consumer) for _ in range(2)]
    producers = [Bg(loop_producer, k) for k in range(2)]
    for i in range(2, n, 3):  # and a plain thread sending
        s.send(ev(i), timeout=10)
    for p in producers:
        p.join(30)
    s.close()
    got = [x for c in consumers for x in c.join(30)]
    assert sorted(got, key=int) == [str(i) for i in range(n)]


# -- closing wakes async waiters; cancelled senders --------------------------------------


def test_close_wakes_async_waiters(stream_factory: StreamFactory) -> None:
    s = stream_factory(1)
    full = stream_factory(1)
    full.send(ev(0))

    async def main() -> tuple[BaseException | None, BaseException | None]:
        receiver = asyncio.ensure_future(s.areceive(timeout=20))
        sender = asyncio.ensure_future(full.asend(ev(1), timeout=20))
        await asyncio.sleep(0.3)
        assert not receiver.done() and not sender.done()
        t0 = time.monotonic()
        threading.Thread(target=s.close).start()  # from another thread
        full.close()
        done, _ = await asyncio.wait([receiver, sender], timeout=10)
        assert len(done) == 2
        assert time.monotonic() - t0 < 5
        return receiver.exception(), sender.exception()

    receiver_err, sender_err = asyncio.run(main())
    assert isinstance(receiver_err, fe.StreamClosed)
    assert isinstance(sender_err, fe.StreamClosed)
    assert full.receive(timeout=5) == ev(0)  # buffered events stay receivable


def test_send_many_stopped_by_close_carries_sent(stream_factory: StreamFactory) -> None:
    s = stream_factory(2)
    bg = Bg(s.send_many, [ev(i) for i in range(5)], timeout=20)
    time.sleep(0.3)
    assert bg.waiting
    s.close()
    err = bg.error()
    assert isinstance(err, fe.StreamClosed) and err.sent == 2
    assert texts(s.receive_many(10)) == ["0", "1"]


def test_async_cancelled_senders_never_duplicate(stream_factory: StreamFactory) -> None:
    s = stream_factory(1)
    s.send(ev(-1))

    async def main() -> None:
        for i in range(5):  # blocked senders, cancelled while they wait
            task = asyncio.ensure_future(s.asend(ev(i)))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())
    assert s.receive(timeout=5) == ev(-1)
    assert s.try_receive() is None and s.last_seq == 1


# -- lifecycle through the manager -----------------------------------------------------


def test_manager_lifecycle(manager_factory: ManagerFactory) -> None:
    m = manager_factory(1, DROP, history=2)
    s = m.create_stream("life")
    assert s.history == 2 and s.buffer_size == 1 and s.stream_id == "life"
    s.send(ev(0))
    with pytest.raises(fe.StreamFull):
        s.send(ev(1))
    info = m.get_stream_info("life")
    assert (info.current_load, info.dropped, info.is_closed) == (1, 1, False)
    assert (info.waiting_senders, info.waiting_receivers) == (0, 0)
    s.close()
    # A closed stream is still found (a late consumer drains or replays it) ...
    late = m.get_stream("life")
    assert late.instance_id == s.instance_id and late.closed
    assert late.receive_entry() == (1, ev(0))
    assert late.replay(0) == [(1, ev(0))]
    assert m.get_stream_info("life").is_closed
    # ... until get_or_create / create_stream replace it with a new open one.
    fresh, created = m.get_or_create("life")
    assert created and not fresh.closed and fresh.instance_id != s.instance_id
    assert fresh.last_seq == 0 and fresh.replay(0) == []
    fresh.close()
    again = m.create_stream("life")
    assert not again.closed and again.instance_id not in (s.instance_id, fresh.instance_id)
    assert m.get_or_create("life") == (again, False)
    m.close_stream("life")
    assert again.closed and "life" not in m
    with pytest.raises(fe.StreamNotFound):
        m.get_stream("life")


def test_manager_counts_waiters_and_keeps_waited_streams(
    manager_factory: ManagerFactory,
) -> None:
    m = manager_factory(1)
    idle = m.create_stream("idle")
    waited = m.create_stream("waited")
    full = m.create_stream("full")
    full.send(ev(0))
    receiver = Bg(waited.receive, timeout=30)
    sender = Bg(full.send, ev(1), timeout=30)
    deadline = time.monotonic() + 10
    while True:  # Redis leases the counts within a loop turn
        counts = [(i.waiting_senders, i.waiting_receivers)
                  for i in (m.get_stream_info("waited"), m.get_stream_info("full"))]
        if counts == [(0, 1), (1, 0)]:
            break
        assert time.monotonic() < deadline, counts
        time.sleep(0.05)
    time.sleep(0.6)
    # Idle longer than the threshold: only the stream nobody waits on goes.
    assert m.cleanup_inactive(0.4) == 1
    assert idle.closed and not waited.closed and not full.closed
    assert sorted(m.list_streams()) == ["full", "waited"]
    waited.send(ev(2))
    assert receiver.join() == ev(2)
    assert full.receive(timeout=5) == ev(0)
    sender.join()
    assert full.receive(timeout=5) == ev(1)
