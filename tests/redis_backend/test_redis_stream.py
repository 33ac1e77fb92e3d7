"""Redis-only details of a stream: manager hooks, big batches, history bounds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import fastevents as fe
from _bg import Bg
from fastevents.redis import RedisStreamManager


def test_manager_hooks(redis_manager: RedisStreamManager) -> None:
    s = redis_manager.create_stream("hooks")
    s.send(fe.text_delta_event("x"))
    time.sleep(0.3)
    assert s._waiting() == (0, 0)
    assert 0.2 < s._last_activity_age() < 10
    assert s._idle_seconds() > 0.2
    s.receive()
    receiver = Bg(s.receive, timeout=10)
    deadline = time.monotonic() + 5
    while s._waiting() != (0, 1):  # the lease reaches Redis within a loop turn
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert s._idle_seconds() == 0.0  # someone waits: not idle
    time.sleep(0.3)
    assert s._last_activity_age() >= 0.3  # a waiter is not activity
    t0 = time.monotonic()
    s._touch()
    # Reset by the touch: younger than the time since it began (however slow the machine).
    assert s._last_activity_age() < time.monotonic() - t0 + 0.05
    s.send(fe.text_delta_event("y"))
    receiver.join()
    deadline = time.monotonic() + 5
    while s._waiting() != (0, 0):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_big_batches(redis_manager_factory: Callable[..., Any]) -> None:
    m = redis_manager_factory(buffer_size=5000, history=3000)
    s = m.create_stream("big")
    batch = [fe.text_delta_event(str(i)) for i in range(7000)]
    s.policy = fe.BackpressurePolicy.DROP
    assert s.send_many(batch) == 5000
    assert s.dropped == 2000
    got = s.receive_many(10_000)
    assert [e.data["text"] for e in got] == [str(i) for i in range(5000)]
    assert [seq for seq, _ in s.replay(2000)] == list(range(2001, 5001))
    s.policy = fe.BackpressurePolicy.BLOCK

    def drain() -> list[fe.Event]:
        out: list[fe.Event] = []
        while len(out) < 7000:
            out.extend(s.receive_many(5000, timeout=10))
        return out

    receiver = Bg(drain)
    assert s.send_many(batch, timeout=10) == 7000  # more than the buffer holds: waits
    assert [e.data["text"] for e in receiver.join()] == [str(i) for i in range(7000)]
    assert s.last_seq == 12000
