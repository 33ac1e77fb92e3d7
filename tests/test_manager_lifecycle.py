"""StreamManager, round two (issue 10 and issue 9 item 14): ``history=``, the lifecycle of
a closed stream, the new ``StreamInfo`` fields, and a cleanup scan that works in chunks.

Both twins through ``manager_factory`` / ``stream_cls``. Idleness uses small thresholds
and sleeps as lower bounds; nothing asserts an upper bound on timing.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import fastevents as fe
from _bg import JOIN, Bg

BLOCK = fe.BackpressurePolicy.BLOCK
DROP = fe.BackpressurePolicy.DROP
THRESHOLD = 0.1
IDLE_SLEEP = 0.2

Factory = Callable[..., fe.StreamManager]


def ev(i: int = 0) -> fe.Event:
    return fe.text_delta_event(str(i))


def wait_until(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + JOIN
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


# -- history= ---------------------------------------------------------------------------------


def test_history_is_passed_to_new_streams(manager_factory: Factory) -> None:
    m = manager_factory(4, history=3)
    assert m.history == 3
    s = m.create_stream("h")
    assert s.history == 3
    assert m.get_or_create("h2")[0].history == 3
    assert manager_factory(4).create_stream("z").history == 0
    assert "history=3" in repr(m)


@pytest.mark.parametrize("bad", [True, 1.5, "2", None])
def test_history_type_error(manager_factory: Factory, bad: Any) -> None:
    with pytest.raises(TypeError):
        manager_factory(4, history=bad)


def test_history_negative(manager_factory: Factory) -> None:
    with pytest.raises(ValueError):
        manager_factory(4, history=-1)


# -- a closed stream is finished for its name ---------------------------------------------------


def test_get_or_create_replaces_a_closed_stream(manager_factory: Factory) -> None:
    m = manager_factory(4, history=4)
    m.create_stream("other")
    old, created = m.get_or_create("s")
    assert created
    with old:  # a producer's `with stream:` closes it at the end
        old.send(ev(1))
    assert old.closed
    assert m.get_stream("s") is old  # still there for a late consumer...
    assert m.get_stream("s").receive(timeout=0) is not None  # ...who drains it
    new, created = m.get_or_create("s")
    assert created is True
    assert new is not old and not new.closed
    assert new.instance_id != old.instance_id
    assert new.history == 4
    assert m.get_stream("s") is new
    assert m.get_or_create("s") == (new, False)
    assert m.list_streams() == ["other", "s"]
    assert len(m) == 2


def test_create_stream_replaces_a_closed_stream(manager_factory: Factory) -> None:
    m = manager_factory(4)
    old = m.create_stream("s")
    with pytest.raises(fe.StreamExists):
        m.create_stream("s")
    m.create_stream("t")
    old.close()
    new = m.create_stream("s")
    assert new is not old and not new.closed
    assert m.list_streams() == ["t", "s"]  # the new stream is the newest
    with pytest.raises(fe.StreamExists):
        m.create_stream("s")


def test_concurrent_get_or_create_replaces_a_closed_stream_once(manager_factory: Factory) -> None:
    m = manager_factory(4)
    old = m.create_stream("s")
    old.close()
    barrier = threading.Barrier(8)

    def call() -> tuple[Any, bool]:
        barrier.wait(JOIN)
        return m.get_or_create("s")

    results = [b.join() for b in [Bg(call) for _ in range(8)]]
    streams = {id(s) for s, _ in results}
    assert len(streams) == 1
    assert sum(created for _, created in results) == 1
    assert results[0][0] is not old


def test_looking_up_a_closed_stream_is_not_activity(manager_factory: Factory) -> None:
    m = manager_factory(4)
    s = m.create_stream("s")
    s.close()
    time.sleep(IDLE_SLEEP)
    before = m.get_stream_info("s").last_activity
    assert m.get_stream("s") is s
    after = m.get_stream_info("s").last_activity
    assert abs((after - before).total_seconds()) < IDLE_SLEEP / 2
    assert datetime.now(timezone.utc) - after >= timedelta(seconds=THRESHOLD)
    assert m.cleanup_inactive(THRESHOLD) == 1
    assert "s" not in m


def test_close_stream_and_cleanup_still_work_on_closed_streams(manager_factory: Factory) -> None:
    m = manager_factory(4)
    m.create_stream("a").close()
    m.close_stream("a")  # tolerates the closed stream
    assert "a" not in m
    m.create_stream("b").close()
    m.close_all()
    assert len(m) == 0


# -- StreamInfo ---------------------------------------------------------------------------------


def test_stream_info_dropped(manager_factory: Factory) -> None:
    m = manager_factory(1, DROP)
    s = m.create_stream("d")
    s.send(ev(1))
    with pytest.raises(fe.StreamFull):
        s.send(ev(2))
    assert s.try_send(ev(3)) is False
    assert s.send_many([ev(4), ev(5)]) == 0
    info = m.get_stream_info("d")
    assert info.dropped == 4
    assert [i.dropped for i in m.list_stream_info()] == [4]


def test_stream_info_waiters(manager_factory: Factory) -> None:
    m = manager_factory(1)
    s = m.create_stream("w")
    info = m.get_stream_info("w")
    assert (info.waiting_senders, info.waiting_receivers) == (0, 0)
    receivers = [Bg(s.receive, timeout=JOIN) for _ in range(2)]

    async def areceive() -> Any:
        return await s.areceive(timeout=JOIN)

    areceivers = [Bg(asyncio.run, areceive())]

    def counts() -> tuple[int, int]:
        i = m.get_stream_info("w")
        return i.waiting_senders, i.waiting_receivers

    wait_until(lambda: counts() == (0, 3), "three waiting receivers")
    s.send_many([ev(1), ev(2), ev(3)], timeout=JOIN)
    for bg in receivers + areceivers:
        bg.join()
    s.send(ev(4))
    senders = [Bg(s.send, ev(5), timeout=JOIN)]
    wait_until(lambda: counts() == (1, 0), "one waiting sender")
    s.close()
    assert isinstance(senders[0].error(), fe.StreamClosed)
    assert counts() == (0, 0)


def test_a_waiter_is_not_activity_but_blocks_cleanup(manager_factory: Factory) -> None:
    m = manager_factory(1)
    s = m.create_stream("w")
    bg = Bg(s.receive, timeout=JOIN)
    wait_until(lambda: m.get_stream_info("w").waiting_receivers == 1, "a waiting receiver")
    time.sleep(IDLE_SLEEP)
    info = m.get_stream_info("w")
    # Not "active now": the last real operation is older than the threshold...
    assert datetime.now(timezone.utc) - info.last_activity >= timedelta(seconds=THRESHOLD)
    # ...yet the waiting receiver keeps the stream from being cleaned up.
    assert m.cleanup_inactive(THRESHOLD) == 0
    assert "w" in m
    s.send(ev(1))
    bg.join()
    fresh = m.get_stream_info("w")
    assert datetime.now(timezone.utc) - fresh.last_activity < timedelta(seconds=IDLE_SLEEP)


# -- cleanup_inactive works in chunks (issue 9, item 14) --------------------------------------


def test_cleanup_scan_releases_the_lock_between_chunks() -> None:
    """While the scan is held up in the middle (a stream's idleness hook blocks), the
    streams of earlier chunks are already gone and a get_or_create from another thread
    completes: the manager lock is not held for the whole scan.

    The scan is the manager's code, the same for both twins; the gate needs a subclass,
    which only the pure twin allows (the compiled class is final)."""
    reached = threading.Event()
    release = threading.Event()

    class Gated(fe.PyEventStream):
        __slots__ = ("gate",)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.gate = False

        def _idle_seconds(self) -> float:
            if self.gate:
                reached.set()
                release.wait(JOIN)
            return super()._idle_seconds()

    m = fe.StreamManager(2, stream_class=Gated)
    m._CLEANUP_CHUNK = 16  # type: ignore[misc]
    n = 200
    streams = [m.create_stream(f"s{i}") for i in range(n)]
    streams[150].gate = True
    time.sleep(IDLE_SLEEP)
    scan = Bg(m.cleanup_inactive, THRESHOLD)
    try:
        assert reached.wait(JOIN), "the scan never reached the gated stream"
        # Earlier chunks are done and removed already.
        assert "s0" not in m and "s100" not in m
        assert "s199" in m
        made = Bg(m.get_or_create, "newcomer")
        s, created = made.join()
        assert created and not s.closed
    finally:
        release.set()
    assert scan.join() == n
    assert m.list_streams() == ["newcomer"]


def test_cleanup_many_streams_with_concurrent_use(manager_factory: Factory) -> None:
    """Streams used during a chunked scan are kept; the idle ones are all removed."""
    m = manager_factory(2)
    m._CLEANUP_CHUNK = 7  # type: ignore[misc]
    for i in range(100):
        m.create_stream(f"idle{i}")
    time.sleep(IDLE_SLEEP)
    busy = [m.create_stream(f"busy{i}") for i in range(10)]
    assert m.cleanup_inactive(THRESHOLD) == 100
    assert sorted(m.list_streams()) == sorted(f"busy{i}" for i in range(10))
    assert all(not s.closed for s in busy)
