"""RedisStreamManager on a real redis-server: the manager contract, shared between managers
(as between processes), keys and TTLs, lifecycle."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import _workers
import pytest
import redis

import fastevents as fe
from _bg import Bg
from fastevents.redis import RedisEventStream, RedisStreamManager


def test_import_fastevents_does_not_import_redis() -> None:
    code = "import sys, fastevents; assert 'redis' not in sys.modules, 'redis imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_manager_contract(redis_manager: RedisStreamManager) -> None:
    m = redis_manager
    assert m.buffer_size == 100 and m.policy == fe.BackpressurePolicy.BLOCK
    with pytest.raises(ValueError, match="stream ID cannot be empty"):
        m.create_stream("")
    for method in (m.get_stream, m.close_stream, m.get_or_create, m.get_stream_info):
        with pytest.raises(ValueError):
            method("")
    assert "" not in m and 3 not in m
    s = m.create_stream("a")
    assert isinstance(s, RedisEventStream) and isinstance(s, fe.Stream)
    assert s.stream_id == "a"
    with pytest.raises(fe.StreamExists, match="already exists"):
        m.create_stream("a")
    assert m.get_stream("a") is s
    assert m.get_or_create("a") == (s, False)
    b, created = m.get_or_create("b")
    assert created
    assert m.list_streams() == ["a", "b"]
    assert m.stream_count() == len(m) == 2
    assert "a" in m and "zz" not in m
    with pytest.raises(fe.StreamNotFound):
        m.get_stream("zz")
    with pytest.raises(fe.StreamNotFound):
        m.close_stream("zz")
    s.send(fe.text_delta_event("x"))
    info = m.get_stream_info("a")
    assert (info.id, info.buffer_size, info.current_load, info.is_closed) == ("a", 100, 1, False)
    assert info.last_activity.tzinfo is not None
    assert [i.id for i in m.list_stream_info()] == ["a", "b"]
    m.close_stream("a")
    assert s.closed
    assert s.receive().data == {"text": "x"}  # a holder still drains it
    assert m.list_streams() == ["b"]
    with pytest.raises(fe.StreamNotFound):
        m.get_stream("a")
    m.close_all()
    assert m.list_streams() == [] and b.closed
    with pytest.raises(TypeError):
        RedisStreamManager(m._backend.url, "10")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        RedisStreamManager(m._backend.url, history=-1)
    with pytest.raises(ValueError):
        RedisStreamManager(m._backend.url, namespace="a{b}")


def test_state_is_shared_between_managers(redis_manager_factory: Callable[..., Any]) -> None:
    one = redis_manager_factory(buffer_size=3, policy=fe.BackpressurePolicy.DROP)
    two = redis_manager_factory(buffer_size=50)
    s1 = one.create_stream("shared")
    s2 = two.get_stream("shared")
    assert s2 is not s1 and s2.instance_id == s1.instance_id
    assert s2.buffer_size == 3 and s2.policy == fe.BackpressurePolicy.DROP
    assert two.get_or_create("shared")[1] is False
    s1.send_many([fe.text_delta_event(str(i)) for i in range(3)])
    assert len(s2) == 3
    with pytest.raises(fe.StreamFull):
        s2.send(fe.text_delta_event("x"))
    assert s1.dropped == 1
    s2.policy = fe.BackpressurePolicy.BLOCK
    assert s1.policy == fe.BackpressurePolicy.BLOCK
    assert [e.data["text"] for e in s2.receive_many(10)] == ["0", "1", "2"]
    assert s1.last_seq == 3
    s1.close()
    assert s2.closed
    # A closed stream is finished for its name: replaced by get_or_create ...
    new, created = two.get_or_create("shared")
    assert created and new.instance_id != s1.instance_id and not new.closed
    # ... and the old instance stays closed for its holders.
    assert s1.closed and one.get_stream("shared").instance_id == new.instance_id


def test_closed_stream_still_found_until_replaced(redis_manager: RedisStreamManager) -> None:
    s = redis_manager.create_stream("c")
    s.send(fe.text_delta_event("late"))
    s.close()
    got = redis_manager.get_stream("c")
    assert got.closed and got.instance_id == s.instance_id
    assert got.receive().data == {"text": "late"}
    fresh = redis_manager.create_stream("c")  # replaces the closed one
    assert not fresh.closed and fresh.instance_id != s.instance_id


def test_ids_never_touch_each_others_keys(redis_manager: RedisStreamManager) -> None:
    ids = ["a", "a:b", "{a}", "a}", "{", "}", "*", "a b", " ", "ünï☃", "a\x00b", "\udcff",
           "a:{b}:m"]
    streams = [redis_manager.create_stream(i) for i in ids]
    for k, s in enumerate(streams):
        s.send_many([fe.text_delta_event(str(k))] * (k + 1))
    for k, (sid, s) in enumerate(zip(ids, streams, strict=True)):
        assert len(s) == k + 1
        assert redis_manager.get_stream(sid) is s
    assert sorted(redis_manager.list_streams()) == sorted(ids)
    client = redis.Redis.from_url(redis_manager._backend.url)
    try:
        keys = client.keys(f"{redis_manager.namespace}:*")
        tags = {k.split(b"{", 1)[1].split(b"}", 1)[0] for k in keys if b"{" in k}
        assert len(tags) == len(ids)  # one hash tag per stream
        # Every stream key has a TTL (the namespace's index is pruned instead).
        index = f"{redis_manager.namespace}:index".encode()
        for k in client.keys(f"{redis_manager.namespace}:*"):
            assert k == index or client.pttl(k) > 0, k
    finally:
        client.close()


def test_get_or_create_once_across_processes(redis_url: str) -> None:
    ns, sid = "race" + str(time.time_ns()), "one"
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 3.0
    with ctx.Pool(4) as pool:
        results = pool.starmap(
            _workers.race_get_or_create, [(redis_url, ns, sid, start_at)] * 8, chunksize=1)
    assert sum(created for created, _ in results) == 1
    assert len({gen for _, gen in results}) == 1


def test_cleanup_inactive_counts_every_process(
    redis_manager_factory: Callable[..., Any],
) -> None:
    one, two = redis_manager_factory(), redis_manager_factory()
    idle = one.create_stream("idle")
    busy = one.create_stream("busy")
    waited = one.create_stream("waited")
    receiver = Bg(waited.receive, timeout=30)
    _until_waiting(two, "waited", 1)  # its lease is in Redis, seen by the other manager
    time.sleep(2.0)
    two.get_stream("busy").send(fe.text_delta_event("x"))  # activity from elsewhere
    assert two.cleanup_inactive(0) == 0
    assert two.cleanup_inactive(-1) == 0
    # Idle ~2 s: "idle" goes; "busy" was just active, "waited" is waited on.
    assert two.cleanup_inactive(timedelta(seconds=1.5)) == 1
    assert idle.closed and not busy.closed and not waited.closed
    assert sorted(one.list_streams()) == ["busy", "waited"]
    info = one.get_stream_info("waited")
    assert info.waiting_receivers == 1 and info.waiting_senders == 0
    waited.send(fe.text_delta_event("y"))
    receiver.join()
    assert [e.data["text"] for e in busy.receive_many(5, timeout=15)] == ["x"]
    receiver = Bg(busy.receive, timeout=30)
    _until_waiting(two, "busy", 1)
    time.sleep(1.0)
    assert two.cleanup_inactive(0.5) == 1  # only "waited" is idle and unwaited now
    assert not busy.closed
    busy.close()
    assert isinstance(receiver.error(), fe.StreamClosed)


def _until_waiting(m: RedisStreamManager, stream_id: str, receivers: int) -> None:
    """Until Redis counts ``receivers`` waiting on the stream (a loop turn, or a slow one)."""
    deadline = time.monotonic() + 10
    while m.get_stream_info(stream_id).waiting_receivers != receivers:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_ttl_expiry(redis_manager_factory: Callable[..., Any]) -> None:
    m = redis_manager_factory(ttl=1.0)
    s = m.create_stream("short")
    s.send(fe.text_delta_event("x"))
    time.sleep(0.6)
    s.send(fe.text_delta_event("y"))  # activity refreshes the keys' TTL
    time.sleep(0.6)  # past the first TTL, well inside the refreshed one
    assert len(s) == 2
    client = redis.Redis.from_url(m._backend.url)
    try:  # nothing touches it now: gone a TTL later (len() is not activity)
        deadline = time.monotonic() + 10
        while client.keys(f"{m.namespace}:{{*"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        client.close()
    assert "short" not in m and m.list_streams() == []
    client = redis.Redis.from_url(m._backend.url)
    try:  # listing pruned the index: nothing of the namespace is left
        assert client.keys(f"{m.namespace}:*") == []
    finally:
        client.close()
    assert s.closed
    with pytest.raises(fe.StreamClosed):
        s.send(fe.text_delta_event("z"))


def test_close_from_another_process_wakes_within_half_a_second(
    redis_manager: RedisStreamManager, redis_url: str,
) -> None:
    s = redis_manager.create_stream("c")
    s.send(fe.text_delta_event("buffered"))
    full = redis_manager.create_stream("full")
    for _ in range(100):
        full.send(fe.text_delta_event("f"))
    receiver = Bg(lambda: list(s))
    sender = Bg(full.send, fe.text_delta_event("blocked"), timeout=30)
    time.sleep(0.3)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        pool.apply(_workers.close_stream, (redis_url, redis_manager.namespace, "full"))
        t0 = time.monotonic()
        assert isinstance(sender.error(), fe.StreamClosed)
        assert time.monotonic() - t0 < 0.5
        pool.apply(_workers.close_stream, (redis_url, redis_manager.namespace, "c"))
        t0 = time.monotonic()
        assert [e.data["text"] for e in receiver.join()] == ["buffered"]
        assert time.monotonic() - t0 < 0.5
    assert full.closed


def test_every_script_is_packaged_and_documented() -> None:
    from importlib import resources

    from fastevents.redis import _scripts

    folder = resources.files("fastevents.redis") / "scripts"
    files = sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".lua"))
    assert files == sorted(_scripts.NAMES)
    for name in files:  # each opens with what it does, then its KEYS and ARGV
        head = _scripts.source(name).splitlines()[:12]
        assert head[0].startswith(f"-- {name}:"), head[0]
        assert any("KEYS[1]" in line for line in head) and any("ARGV" in line for line in head)


def test_cleanup_from_another_process(redis_manager: RedisStreamManager, redis_url: str) -> None:
    idle = redis_manager.create_stream("idle")
    waited = redis_manager.create_stream("waited")
    idle.send(fe.text_delta_event("left behind"))
    receiver = Bg(waited.receive, timeout=30)
    _until_waiting(redis_manager, "waited", 1)
    time.sleep(0.8)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        # The other process sees this one's waiter (its lease) and keeps "waited".
        assert pool.apply(_workers.cleanup, (redis_url, redis_manager.namespace, 0.3)) == 1
    assert idle.closed and not waited.closed
    assert redis_manager.list_streams() == ["waited"]
    assert idle.receive().data == {"text": "left behind"}  # a holder still drains it
    waited.send(fe.text_delta_event("x"))
    assert receiver.join().data == {"text": "x"}


@pytest.mark.parametrize("protocol", [2, 3])
def test_either_resp_protocol(redis_url: str, protocol: int) -> None:
    with RedisStreamManager(f"{redis_url}?protocol={protocol}", namespace=f"resp{protocol}",
                            history=2) as m:
        s = m.get_or_create("p")[0]
        receiver = Bg(s.receive_entry, timeout=10)
        time.sleep(0.2)
        s.send(fe.text_delta_event("woken"))
        seq, event = receiver.join()
        assert seq == 1 and event.data == {"text": "woken"}
        assert s.replay(0) == [(1, event)]
        assert m.list_streams() == ["p"] and m.get_stream_info("p").current_load == 0
        assert m.cleanup_inactive(3600) == 0
        m.close_all()
