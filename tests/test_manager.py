"""StreamManager and StreamInfo (API.md "StreamManager"), for both stream twins.

``manager_factory`` (conftest.py) builds managers whose streams are of the twin under
test. Idleness is tested with small thresholds and short sleeps; nothing asserts an upper
bound on timing, and every blocking call has a timeout.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import fastevents as fe
from _bg import JOIN, Bg

BLOCK = fe.BackpressurePolicy.BLOCK
DROP = fe.BackpressurePolicy.DROP

# Seconds. A stream left alone for IDLE_SLEEP is idle past THRESHOLD (a lower bound, so
# deterministic); a stream used just before cleanup_inactive(THRESHOLD) would need the
# thread to stall for THRESHOLD between two statements to be misjudged.
THRESHOLD = 0.1
IDLE_SLEEP = 0.2

Factory = Callable[..., fe.StreamManager]


def ev(i: int = 0) -> fe.Event:
    return fe.text_delta_event(str(i))


# -- construction ------------------------------------------------------------------------


def test_defaults(manager_factory: Factory, stream_cls: type) -> None:
    m = manager_factory()
    assert m.buffer_size == 100
    assert m.policy == BLOCK
    assert len(m) == 0
    assert m.stream_count() == 0
    assert m.list_streams() == []
    assert m.list_stream_info() == []
    s = m.create_stream("a")
    assert type(s) is stream_cls
    assert s.buffer_size == 100
    assert s.policy == BLOCK
    assert s.stream_id == "a"


@pytest.mark.parametrize("size", [0, -5])
def test_non_positive_buffer_size_means_100(manager_factory: Factory, size: int) -> None:
    m = manager_factory(size)
    assert m.buffer_size == 100
    assert m.create_stream("a").buffer_size == 100


def test_new_streams_get_the_managers_settings(manager_factory: Factory) -> None:
    m = manager_factory(3, DROP)
    assert (m.buffer_size, m.policy) == (3, DROP)
    s = m.create_stream("x")
    assert (s.buffer_size, s.policy, s.stream_id) == (3, DROP, "x")
    s2, created = m.get_or_create("y")
    assert created and (s2.buffer_size, s2.policy, s2.stream_id) == (3, DROP, "y")
    m2 = manager_factory(buffer_size=9, policy=BLOCK)
    assert m2.create_stream("z").buffer_size == 9


def test_default_stream_class_is_the_selected_event_stream() -> None:
    m = fe.StreamManager(5)
    s = m.create_stream("sel")
    assert isinstance(s, fe.EventStream)
    m.close_all()


@pytest.mark.parametrize("size", ["10", 3.5, None, True])
def test_bad_buffer_size(manager_factory: Factory, size: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        manager_factory(size)


@pytest.mark.parametrize("policy", [7, -1, "BLOCK", None, 0.0])
def test_bad_policy(manager_factory: Factory, policy: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        manager_factory(10, policy)


def test_repr(manager_factory: Factory) -> None:
    m = manager_factory(5, DROP)
    m.create_stream("a")
    r = repr(m)
    assert "StreamManager" in r
    assert "1" in r and "DROP" in r


# -- create / get / get_or_create -------------------------------------------------------


def test_create_and_get(manager_factory: Factory) -> None:
    m = manager_factory(10)
    a = m.create_stream("a")
    b = m.create_stream("b")
    assert a is not b
    assert m.get_stream("a") is a
    assert m.get_stream("b") is b
    assert len(m) == 2 and m.stream_count() == 2
    assert sorted(m.list_streams()) == ["a", "b"]
    assert "a" in m and "b" in m and "c" not in m


def test_create_existing_raises_stream_exists(manager_factory: Factory) -> None:
    m = manager_factory(10)
    a = m.create_stream("dup")
    with pytest.raises(fe.StreamExists) as info:
        m.create_stream("dup")
    exc = info.value
    assert isinstance(exc, fe.StreamError)
    assert "already exists" in str(exc)
    assert "dup" in str(exc)
    assert exc.stream_id == "dup"
    assert str(exc).startswith("stream dup: ")
    assert m.get_stream("dup") is a  # the original is untouched
    assert not a.closed
    assert len(m) == 1


def test_get_unknown_raises_stream_not_found(manager_factory: Factory) -> None:
    m = manager_factory(10)
    with pytest.raises(fe.StreamNotFound) as info:
        m.get_stream("nope")
    assert info.value.stream_id == "nope"
    assert "nope" in str(info.value)
    assert fe.is_stream_not_found(info.value)
    assert isinstance(info.value, fe.StreamError)


def test_get_or_create(manager_factory: Factory) -> None:
    m = manager_factory(10)
    s, created = m.get_or_create("g")
    assert created is True
    s2, created2 = m.get_or_create("g")
    assert created2 is False
    assert s2 is s
    assert m.get_stream("g") is s
    assert len(m) == 1


def test_streams_errors_name_their_id(manager_factory: Factory) -> None:
    m = manager_factory(1, DROP)
    s = m.create_stream("chat-42")
    s.send(ev(1))
    with pytest.raises(fe.StreamFull) as full:
        s.send(ev(2))
    assert "chat-42" in str(full.value)
    s.close()
    with pytest.raises(fe.StreamClosed) as closed:
        s.send(ev(3))
    assert closed.value.stream_id == "chat-42"
    assert "chat-42" in str(closed.value)


# -- ids ---------------------------------------------------------------------------------


def _id_methods(m: fe.StreamManager) -> list[Callable[[Any], Any]]:
    return [m.create_stream, m.get_stream, m.get_or_create, m.close_stream, m.get_stream_info]


def test_empty_id_is_value_error(manager_factory: Factory) -> None:
    m = manager_factory(10)
    m.create_stream("a")
    for method in _id_methods(m):
        with pytest.raises(ValueError, match=r"^stream ID cannot be empty$"):
            method("")
    assert ("" in m) is False
    assert m.list_streams() == ["a"]


@pytest.mark.parametrize("bad", [None, 1, b"a", ("a",)])
def test_non_str_id_is_type_error(manager_factory: Factory, bad: Any) -> None:
    m = manager_factory(10)
    for method in _id_methods(m):
        with pytest.raises(TypeError):
            method(bad)
    assert len(m) == 0


def test_contains_is_plain(manager_factory: Factory) -> None:
    m = manager_factory(10)
    m.create_stream("x")
    assert "x" in m
    assert "y" not in m
    assert "" not in m
    # Container semantics: what cannot be an id is simply not in the manager.
    assert 1 not in m
    assert None not in m


# -- closing -----------------------------------------------------------------------------


def test_close_stream(manager_factory: Factory) -> None:
    m = manager_factory(10)
    s = m.create_stream("c")
    s.send(ev(1))
    m.close_stream("c")
    assert s.closed
    assert "c" not in m
    assert len(m) == 0
    with pytest.raises(fe.StreamNotFound):
        m.get_stream("c")
    # Buffered events stay receivable on the closed stream.
    assert s.receive(timeout=1).data["text"] == "1"
    # The id is free again, for a new stream.
    s2 = m.create_stream("c")
    assert s2 is not s and not s2.closed


def test_close_stream_tolerates_an_already_closed_stream(manager_factory: Factory) -> None:
    m = manager_factory(10)
    s = m.create_stream("c")
    s.close()
    m.close_stream("c")  # no StreamClosed from the second close
    assert "c" not in m


def test_close_unknown_raises_stream_not_found(manager_factory: Factory) -> None:
    m = manager_factory(10)
    with pytest.raises(fe.StreamNotFound) as info:
        m.close_stream("ghost")
    assert "ghost" in str(info.value)
    m.create_stream("once")
    m.close_stream("once")
    with pytest.raises(fe.StreamNotFound):
        m.close_stream("once")


def test_close_stream_wakes_its_waiters(manager_factory: Factory) -> None:
    m = manager_factory(1)
    s = m.create_stream("w")
    receiver = Bg(s.receive, timeout=JOIN)
    time.sleep(0.1)
    m.close_stream("w")
    with pytest.raises(fe.StreamClosed):
        receiver.join()


def test_close_all(manager_factory: Factory) -> None:
    m = manager_factory(10)
    m.close_all()  # empty: fine
    streams = [m.create_stream(f"s{i}") for i in range(5)]
    streams[2].close()  # an already closed one is tolerated
    m.close_all()
    assert all(s.closed for s in streams)
    assert len(m) == 0 and m.list_streams() == []
    m.create_stream("s0")  # usable afterwards
    assert len(m) == 1


def test_list_and_count(manager_factory: Factory) -> None:
    m = manager_factory(10)
    ids = [f"id-{i}" for i in range(10)]
    for sid in ids:
        m.create_stream(sid)
    assert sorted(m.list_streams()) == sorted(ids)
    assert m.stream_count() == len(m) == 10
    m.close_stream("id-3")
    assert "id-3" not in m.list_streams()
    assert m.stream_count() == len(m) == 9
    listed = m.list_streams()
    listed.append("mutating the copy")
    assert len(m.list_streams()) == 9


# -- info --------------------------------------------------------------------------------


def test_stream_info(manager_factory: Factory) -> None:
    m = manager_factory(8, DROP)
    before = datetime.now(timezone.utc)
    s = m.create_stream("info")
    s.send_many([ev(1), ev(2), ev(3)])
    info = m.get_stream_info("info")
    assert isinstance(info, fe.StreamInfo)
    assert info.id == "info"
    assert info.buffer_size == 8
    assert info.current_load == 3
    assert info.is_closed is False
    assert isinstance(info.last_activity, datetime)
    assert info.last_activity.tzinfo is not None
    assert info.last_activity.utcoffset() == timedelta(0)
    # Lower bounds only, with slack for clock granularity.
    assert info.last_activity >= before - timedelta(seconds=1)
    assert info.last_activity <= datetime.now(timezone.utc) + timedelta(seconds=1)

    s.receive(timeout=1)
    s.close()
    info2 = m.get_stream_info("info")
    assert info2.current_load == 2
    assert info2.is_closed is True


def test_stream_info_reflects_idleness(manager_factory: Factory) -> None:
    m = manager_factory(8)
    m.create_stream("quiet")
    time.sleep(IDLE_SLEEP)
    info = m.get_stream_info("quiet")
    assert datetime.now(timezone.utc) - info.last_activity >= timedelta(seconds=THRESHOLD)
    m.get_stream("quiet")  # a lookup is activity
    fresh = m.get_stream_info("quiet")
    assert fresh.last_activity > info.last_activity


def test_stream_info_is_a_frozen_snapshot(manager_factory: Factory) -> None:
    m = manager_factory(8)
    s = m.create_stream("snap")
    info = m.get_stream_info("snap")
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(info, "current_load", 5)
    s.send(ev(1))
    assert info.current_load == 0  # a snapshot, not a view
    assert m.get_stream_info("snap").current_load == 1
    fields = {f.name for f in dataclasses.fields(fe.StreamInfo)}
    assert fields == {
        "id", "buffer_size", "current_load", "is_closed", "last_activity",
        "dropped", "waiting_senders", "waiting_receivers",  # issue 10
    }
    assert "snap" in repr(info)


def test_stream_info_unknown(manager_factory: Factory) -> None:
    m = manager_factory(8)
    with pytest.raises(fe.StreamNotFound) as info:
        m.get_stream_info("missing")
    assert "missing" in str(info.value)


def test_list_stream_info(manager_factory: Factory) -> None:
    m = manager_factory(4)
    for i in range(3):
        m.create_stream(f"L{i}").send_many([ev(j) for j in range(i)])
    infos = m.list_stream_info()
    assert sorted(i.id for i in infos) == ["L0", "L1", "L2"]
    assert {i.id: i.current_load for i in infos} == {"L0": 0, "L1": 1, "L2": 2}
    assert all(i.buffer_size == 4 and not i.is_closed for i in infos)
    assert all(i.last_activity.tzinfo is not None for i in infos)


# -- cleanup_inactive --------------------------------------------------------------------


def test_cleanup_removes_idle_streams(manager_factory: Factory) -> None:
    m = manager_factory(4)
    idle = m.create_stream("idle")
    kept = m.create_stream("kept")
    time.sleep(IDLE_SLEEP)
    m.get_stream("kept")  # lookup = activity
    assert m.cleanup_inactive(THRESHOLD) == 1
    assert idle.closed and "idle" not in m
    assert not kept.closed and "kept" in m


def test_cleanup_with_timedelta(manager_factory: Factory) -> None:
    m = manager_factory(4)
    a = m.create_stream("a")
    m.create_stream("b")
    time.sleep(IDLE_SLEEP)
    m.get_or_create("b")  # a lookup through get_or_create counts too
    assert m.cleanup_inactive(timedelta(seconds=THRESHOLD)) == 1
    assert a.closed
    assert m.list_streams() == ["b"]


def test_cleanup_keeps_recent_streams(manager_factory: Factory) -> None:
    m = manager_factory(4)
    for i in range(3):
        m.create_stream(f"r{i}")
    assert m.cleanup_inactive(60) == 0
    assert m.cleanup_inactive(timedelta(minutes=5)) == 0
    assert len(m) == 3


@pytest.mark.parametrize("threshold", [0, -1, 0.0, -0.5, timedelta(0), timedelta(seconds=-3)])
def test_cleanup_non_positive_threshold_is_a_no_op(
    manager_factory: Factory, threshold: Any
) -> None:
    m = manager_factory(4)
    s = m.create_stream("old")
    time.sleep(IDLE_SLEEP)
    assert m.cleanup_inactive(threshold) == 0
    assert "old" in m and not s.closed


@pytest.mark.parametrize("threshold", [True, False, "1", None, object(), [1]])
def test_cleanup_bad_threshold(manager_factory: Factory, threshold: Any) -> None:
    m = manager_factory(4)
    m.create_stream("x")
    time.sleep(IDLE_SLEEP)
    with pytest.raises(TypeError):
        m.cleanup_inactive(threshold)
    assert "x" in m


def test_cleanup_nan_threshold(manager_factory: Factory) -> None:
    m = manager_factory(4)
    m.create_stream("x")
    with pytest.raises(ValueError):
        m.cleanup_inactive(float("nan"))
    assert m.cleanup_inactive(float("inf")) == 0
    assert "x" in m


def test_cleanup_counts_sends_as_activity(manager_factory: Factory) -> None:
    m = manager_factory(4)
    s = m.create_stream("sending")
    time.sleep(IDLE_SLEEP)
    s.send(ev(1))  # no lookup, only traffic
    assert m.cleanup_inactive(THRESHOLD) == 0
    assert "sending" in m and not s.closed
    time.sleep(IDLE_SLEEP)
    assert s.try_send(ev(2))
    assert m.cleanup_inactive(THRESHOLD) == 0
    time.sleep(IDLE_SLEEP)
    s.send_many([ev(3)])
    assert m.cleanup_inactive(THRESHOLD) == 0


def test_cleanup_counts_receives_as_activity(manager_factory: Factory) -> None:
    m = manager_factory(8)
    s = m.create_stream("receiving")
    s.send_many([ev(i) for i in range(4)])
    for take in (lambda: s.receive(timeout=1), s.try_receive,
                 lambda: s.receive_many(1, timeout=1), lambda: next(iter(s))):
        time.sleep(IDLE_SLEEP)
        assert take() is not None
        assert m.cleanup_inactive(THRESHOLD) == 0
        assert "receiving" in m and not s.closed


def test_busy_stream_survives_cleanup(manager_factory: Factory) -> None:
    """The Go package counted only lookups, so it closed streams that were in use."""
    m = manager_factory(4)
    busy = m.create_stream("busy")
    quiet = m.create_stream("quiet")
    threshold = 0.25
    end = time.monotonic() + threshold + IDLE_SLEEP
    removed = 0
    while time.monotonic() < end:
        busy.send(ev(1), timeout=1)
        removed += m.cleanup_inactive(threshold)
        busy.receive(timeout=1)
        removed += m.cleanup_inactive(threshold)
        time.sleep(0.01)
    assert "busy" in m and not busy.closed
    assert removed == 1
    assert "quiet" not in m and quiet.closed


def test_stream_with_blocked_receiver_is_not_idle(manager_factory: Factory) -> None:
    m = manager_factory(4)
    s = m.create_stream("waiting")
    receiver = Bg(s.receive, timeout=JOIN)
    time.sleep(IDLE_SLEEP)  # the receiver has been waiting longer than the threshold
    assert m.cleanup_inactive(THRESHOLD) == 0
    assert "waiting" in m and not s.closed
    e = ev(7)
    s.send(e)
    assert receiver.join() is e


def test_stream_with_blocked_sender_is_not_idle(manager_factory: Factory) -> None:
    m = manager_factory(1, BLOCK)
    s = m.create_stream("full")
    s.send(ev(1))
    sender = Bg(s.send, ev(2), timeout=JOIN)
    time.sleep(IDLE_SLEEP)
    assert m.cleanup_inactive(THRESHOLD) == 0
    assert "full" in m and not s.closed
    assert s.receive(timeout=1).data["text"] == "1"
    sender.join()
    assert s.receive(timeout=1).data["text"] == "2"


def test_stream_idle_after_its_waiter_left(manager_factory: Factory) -> None:
    m = manager_factory(4)
    s = m.create_stream("left")
    with pytest.raises(TimeoutError):
        s.receive(timeout=0.05)
    time.sleep(IDLE_SLEEP)
    assert m.cleanup_inactive(THRESHOLD) == 1
    assert s.closed


def test_cleanup_closes_and_counts_streams_closed_by_their_user(
    manager_factory: Factory,
) -> None:
    m = manager_factory(4)
    s = m.create_stream("self-closed")
    s.close()
    time.sleep(IDLE_SLEEP)
    assert m.cleanup_inactive(THRESHOLD) == 1
    assert "self-closed" not in m


def test_cleanup_wakes_nobody_it_should_not(manager_factory: Factory) -> None:
    # A removed stream is closed: its buffered events are still receivable.
    m = manager_factory(4)
    s = m.create_stream("buffered")
    s.send(ev(1))
    time.sleep(IDLE_SLEEP)
    assert m.cleanup_inactive(THRESHOLD) == 1
    assert s.closed and len(s) == 1
    assert s.receive(timeout=1).data["text"] == "1"


# -- concurrency -------------------------------------------------------------------------


def test_concurrent_get_or_create_creates_once(stream_cls: type) -> None:
    constructed: list[str] = []
    lock = threading.Lock()

    def counting(*args: Any, **kwargs: Any) -> Any:
        with lock:
            constructed.append(kwargs["stream_id"])
        time.sleep(0.01)  # widen the window in which a racing caller could build another
        return stream_cls(*args, **kwargs)

    m = fe.StreamManager(8, stream_class=counting)
    rounds = 10
    for r in range(rounds):
        barrier = threading.Barrier(16)

        def call(sid: str = f"r{r}") -> tuple[Any, bool]:
            barrier.wait(JOIN)
            stream, created = m.get_or_create(sid)
            return stream, created

        results = [b.join() for b in [Bg(call) for _ in range(16)]]
        assert len({id(s) for s, _ in results}) == 1
        assert sum(1 for _, created in results if created) == 1
        assert all(s is m.get_stream(f"r{r}") for s, _ in results)
    assert sorted(constructed) == sorted(f"r{r}" for r in range(rounds))
    assert len(m) == rounds


def test_concurrent_get_or_create_plain(manager_factory: Factory) -> None:
    m = manager_factory(8)
    for r in range(20):
        barrier = threading.Barrier(16)

        def call(sid: str = f"p{r}") -> tuple[Any, bool]:
            barrier.wait(JOIN)
            stream, created = m.get_or_create(sid)
            return stream, created

        results = [b.join() for b in [Bg(call) for _ in range(16)]]
        assert len({id(s) for s, _ in results}) == 1
        assert sum(1 for _, created in results if created) == 1
    assert len(m) == 20


def test_concurrent_create_stream_only_one_wins(manager_factory: Factory) -> None:
    m = manager_factory(8)
    barrier = threading.Barrier(16)

    def call() -> Any:
        barrier.wait(JOIN)
        try:
            return m.create_stream("race")
        except fe.StreamExists:
            return None

    results = [b.join() for b in [Bg(call) for _ in range(16)]]
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert m.get_stream("race") is winners[0]


def test_failed_construction_does_not_poison_the_id(stream_cls: type) -> None:
    failures = [RuntimeError("boom")]

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return stream_cls(*args, **kwargs)

    m = fe.StreamManager(8, stream_class=flaky)
    with pytest.raises(RuntimeError, match="boom"):
        m.get_or_create("f")
    assert "f" not in m and len(m) == 0
    s, created = m.get_or_create("f")
    assert created and m.get_stream("f") is s


def test_many_threads_many_ids(manager_factory: Factory) -> None:
    m = manager_factory(4)

    def work(t: int) -> None:
        for i in range(50):
            sid = f"t{t}-{i}"
            s = m.create_stream(sid)
            s.send(ev(i), timeout=JOIN)
            assert m.get_stream(sid) is s
            assert sid in m
            m.get_stream_info(sid)
            if i % 2:
                m.close_stream(sid)
            m.list_stream_info()
            m.cleanup_inactive(60)

    for b in [Bg(work, t) for t in range(8)]:
        b.join(60)
    assert len(m) == 8 * 25
    assert all(sid.split("-")[1].isdigit() and int(sid.split("-")[1]) % 2 == 0
               for sid in m.list_streams())


def test_cleanup_concurrent_with_traffic(manager_factory: Factory) -> None:
    m = manager_factory(4)
    ids = [f"c{i}" for i in range(8)]
    for sid in ids:
        m.create_stream(sid)
    stop = threading.Event()

    def traffic(sid: str) -> int:
        n = 0
        while not stop.is_set():
            s, _ = m.get_or_create(sid)
            try:
                s.send(ev(n), timeout=1)
                s.receive(timeout=1)
            except fe.StreamClosed:
                pass  # removed by a cleanup between lookup and use: recreated next round
            n += 1
        return n

    def cleaner() -> int:
        total = 0
        while not stop.is_set():
            total += m.cleanup_inactive(0.001)
        return total

    workers = [Bg(traffic, sid) for sid in ids] + [Bg(cleaner)]
    time.sleep(0.5)
    stop.set()
    for w in workers:
        w.join(30)
    m.close_all()
    assert len(m) == 0


# -- fork --------------------------------------------------------------------------------


def _wait_child(pid: int, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung (a lock held across fork?)")


def _child_body(m: fe.StreamManager) -> None:
    signal.alarm(10)  # default action kills the child if it deadlocks
    inherited = m.get_stream("inherited")
    assert inherited.receive(timeout=5).data["text"] == "1"
    s, _ = m.get_or_create("child")
    s.send(ev(2), timeout=5)
    assert s.receive(timeout=5).data["text"] == "2"
    # Ids that parent threads were creating at the fork must be usable here.
    for k in range(4):
        for i in range(10):
            m.get_or_create(f"h{k}-{i}")
    m.list_streams()
    m.list_stream_info()
    m.cleanup_inactive(60)
    m.close_all()
    assert len(m) == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_while_other_threads_use_the_manager(manager_factory: Factory) -> None:
    m = manager_factory(4)
    stop = threading.Event()

    def hammer(k: int) -> None:
        i = 0
        while not stop.is_set():
            sid = f"h{k}-{i % 10}"
            s, _ = m.get_or_create(sid)
            s.try_send(ev(i))
            s.try_receive()
            m.list_stream_info()
            if i % 3 == 0:
                m.close_stream(sid)  # only this thread uses its ids
            m.cleanup_inactive(60)
            i += 1

    threads = [Bg(hammer, k) for k in range(4)]
    try:
        for _ in range(12):
            m.get_or_create("inherited")[0].send(ev(1), timeout=JOIN)
            sys.stdout.flush()
            sys.stderr.flush()
            with warnings.catch_warnings():
                # 3.12+ warns about forking a multi-threaded process; that is the point.
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                code = 1
                try:
                    _child_body(m)
                    code = 0
                finally:
                    os._exit(code)
            assert _wait_child(pid) == 0
            assert m.get_stream("inherited").receive(timeout=1).data["text"] == "1"
            time.sleep(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    m.close_all()
