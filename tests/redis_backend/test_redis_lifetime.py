"""How long things live: keys under lookups and waits (TTL), a manager after close(), the
wait loop while Redis is down. Each test here failed before the fix it guards."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

import fastevents as fe
from _bg import Bg
from _redis_server import RedisServer
from fastevents.redis import RedisStreamManager, RedisUnavailable


def _fe_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("fastevents-redis")]


def test_lookups_keep_every_key_alive(redis_manager_factory: Callable[..., Any]) -> None:
    """A lookup is activity: it must keep the buffer and the history alive, not only the
    stream's meta (which left a 'live' stream whose events had expired)."""
    m = redis_manager_factory(ttl=2.0, history=5)
    s = m.create_stream("looked-up")
    s.send_many([fe.text_delta_event("a"), fe.text_delta_event("b")])
    assert s.receive(timeout=5).data == {"text": "a"}
    deadline = time.monotonic() + 4.5  # well past the TTL, with a lookup every 0.2 s
    while time.monotonic() < deadline:
        assert m.get_stream("looked-up") is s
        time.sleep(0.2)
    assert len(s) == 1
    seq, event = s.receive_entry(timeout=5)
    assert (seq, event.data) == (2, {"text": "b"})
    assert [seq for seq, _ in s.replay(0)] == [1, 2]


def test_get_or_create_keeps_every_key_alive(redis_manager_factory: Callable[..., Any]) -> None:
    m = redis_manager_factory(ttl=2.0)
    s, _ = m.get_or_create("again")
    s.send(fe.text_delta_event("kept"))
    deadline = time.monotonic() + 4.5
    while time.monotonic() < deadline:
        assert m.get_or_create("again") == (s, False)
        time.sleep(0.2)
    assert s.receive(timeout=5).data == {"text": "kept"}


@pytest.mark.parametrize("side", ["receiver", "sender"])
def test_a_waiter_keeps_a_short_ttl_stream_alive(
    redis_manager_factory: Callable[..., Any], side: str,
) -> None:
    """Waiting keeps the keys alive whatever the TTL (the lease beat came every 5 s, so a
    stream with a TTL under that expired under its waiter, which then waited forever)."""
    # A TTL well under the 5 s lease beat; beats every TTL/4 leave a slow machine 1.5 s.
    m = redis_manager_factory(ttl=2.0, buffer_size=1)
    s = m.create_stream("short")
    if side == "receiver":
        waiter = Bg(s.receive, timeout=20)
    else:
        s.send(fe.text_delta_event("fill"))
        waiter = Bg(s.send, fe.text_delta_event("blocked"), timeout=20)
    time.sleep(5.0)  # two and a half TTLs
    assert waiter.waiting and not s.closed
    if side == "receiver":
        s.send(fe.text_delta_event("late"))
        assert waiter.join().data == {"text": "late"}
    else:
        assert s.receive(timeout=5).data == {"text": "fill"}
        waiter.join()
        assert s.receive(timeout=5).data == {"text": "blocked"}


def test_a_waiter_on_a_vanished_stream_ends(redis_manager: RedisStreamManager) -> None:
    """Keys deleted under a waiter (FLUSHDB, eviction): it ends, it does not hang."""
    s = redis_manager.create_stream("vanishing")
    receiver = Bg(s.receive)  # no timeout: only the stream's end can stop it
    time.sleep(0.3)
    client = redis.Redis.from_url(redis_manager._backend.url)
    try:
        client.delete(*client.keys(f"{redis_manager.namespace}:{{*"))
    finally:
        client.close()
    # Within a lease beat (5 s) plus slack.
    assert isinstance(receiver.error(15), fe.StreamClosed)


def test_close_manager_wakes_waiters_and_refuses_later_use(redis_url: str) -> None:
    admin = redis.Redis.from_url(redis_url)

    def clients() -> int:
        return int(admin.info("clients")["connected_clients"])

    try:
        before = clients()
        m = RedisStreamManager(redis_url, buffer_size=1, namespace=f"closing{time.time_ns()}")
        s = m.create_stream("x")
        full = m.create_stream("full")
        full.send(fe.text_delta_event("f"))
        receiver = Bg(s.receive)
        sender = Bg(full.send, fe.text_delta_event("g"))

        async def areceive() -> fe.Event:
            return await s.areceive()

        aio = Bg(asyncio.run, areceive())
        time.sleep(0.5)
        assert len(_fe_threads()) >= 1
        t0 = time.monotonic()
        m.close()
        for bg in (receiver, sender, aio):
            err = bg.error(5)
            assert isinstance(err, fe.StreamError) and "manager is closed" in str(err), err
        assert time.monotonic() - t0 < 5
        # Later use: the same clear error, sync and async, and no connection reopened.
        with pytest.raises(fe.StreamError, match="manager is closed"):
            s.send(fe.text_delta_event("after"))
        with pytest.raises(fe.StreamError, match="manager is closed"):
            s.receive(timeout=1)
        with pytest.raises(fe.StreamError, match="manager is closed"):
            m.get_or_create("y")
        with pytest.raises(fe.StreamError, match="manager is closed"):
            asyncio.run(areceive())
        m.close()  # a second close is harmless
        deadline = time.monotonic() + 5
        while _fe_threads() or clients() > before:
            assert time.monotonic() < deadline, (_fe_threads(), before, clients())
            time.sleep(0.05)
    finally:
        admin.close()


def test_no_busy_loop_while_redis_is_down(own_redis_server: RedisServer) -> None:
    """A waiter failed by a dead Redis leaves the wait loop idle, not retrying flat out."""
    with RedisStreamManager(own_redis_server.url, socket_timeout=1.0) as m:
        s = m.create_stream("down")
        receiver = Bg(s.receive, timeout=30)
        time.sleep(0.3)
        own_redis_server.kill()
        assert isinstance(receiver.error(5), RedisUnavailable)
        time.sleep(0.3)
        cpu0, t0 = time.process_time(), time.monotonic()
        time.sleep(2.0)
        used, wall = time.process_time() - cpu0, time.monotonic() - t0
        # Idle is ~0; retrying refused connections flat out is most of a core.
        assert used < 0.25 * wall, (used, wall)
