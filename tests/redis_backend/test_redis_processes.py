"""Many processes, many tasks, on one real redis-server."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import _workers
import redis

import fastevents as fe
from fastevents.redis import RedisStreamManager


def test_four_producers_three_consumers(
    redis_manager_factory: Callable[..., Any], redis_url: str,
) -> None:
    bound, per_producer = 10, 150
    redis_manager = redis_manager_factory(buffer_size=bound)
    s = redis_manager.create_stream("mp")
    s_bs = redis_manager.create_stream("mp-batches")
    ns = redis_manager.namespace
    peak = [0]
    stop = threading.Event()

    def sample() -> None:  # the bound, watched from outside while everyone works
        while not stop.is_set():
            peak[0] = max(peak[0], len(s), len(s_bs))
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    ctx = multiprocessing.get_context("spawn")
    try:
        for sid, producer in (("mp", _workers.produce), ("mp-batches", _workers.produce_batches)):
            stream = redis_manager.get_stream(sid)
            stream.policy = fe.BackpressurePolicy.BLOCK
            with ctx.Pool(7) as pool:
                consumers = [pool.apply_async(_workers.consume, (redis_url, ns, sid))
                             for _ in range(3)]
                producers = [pool.apply_async(producer, (redis_url, ns, sid, p, per_producer))
                             for p in range(4)]
                for p in producers:
                    assert p.get(120) == per_producer
                stream.close()
                results = [c.get(120) for c in consumers]
            got = [x for r in results for x in r]
            expected = [f"{p}:{i}" for p in range(4) for i in range(per_producer)]
            assert len(got) == len(expected)  # nothing duplicated ...
            assert sorted(got) == sorted(expected)  # ... nothing lost
            for r in results:  # each consumer sees each producer's events in order
                for p in range(4):
                    mine = [int(x.split(":")[1]) for x in r if x.startswith(f"{p}:")]
                    assert mine == sorted(mine)
            assert stream.last_seq == len(expected)
    finally:
        stop.set()
        sampler.join()
    assert peak[0] <= bound == s.buffer_size


def test_async_cancellation_under_load(redis_manager_factory: Callable[..., Any]) -> None:
    m = redis_manager_factory(buffer_size=5)
    s = m.create_stream("cancel")
    total = 400
    rng = random.Random(7)

    async def main() -> list[str]:
        got: list[str] = []
        sent: list[str] = []

        async def consumer() -> None:
            while True:
                e = await s.areceive()
                got.append(e.data["text"])

        async def producer(p: int) -> None:
            for i in range(total // 4):
                text = f"{p}:{i}"
                while True:
                    try:
                        await asyncio.wait_for(s.asend(fe.text_delta_event(text)),
                                               rng.uniform(0.001, 0.05))
                        sent.append(text)
                        break
                    except (asyncio.TimeoutError, TimeoutError):
                        # The send was cancelled; it may or may not have gone in
                        # (exactly once either way). Resend under a new name.
                        text += "'"

        consumers = [asyncio.ensure_future(consumer()) for _ in range(6)]
        producers = [asyncio.ensure_future(producer(p)) for p in range(4)]
        deadline = time.monotonic() + 60
        while not all(p.done() for p in producers):
            assert time.monotonic() < deadline
            victim = rng.randrange(len(consumers))
            consumers[victim].cancel()
            consumers[victim] = asyncio.ensure_future(consumer())
            await asyncio.sleep(rng.uniform(0, 0.01))
        for p in producers:
            await p
        while len(s):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        for c in consumers:
            c.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        assert len(got) == len(set(got))  # nothing duplicated
        assert set(sent) <= set(got)  # nothing that was sent is lost
        return got

    got = asyncio.run(main())
    assert len(s) == 0 and s.last_seq == len(got)


def test_wakeup_latency(redis_manager: RedisStreamManager) -> None:
    s = redis_manager.create_stream("latency")
    delays = []
    for _ in range(20):
        box: list[float] = []

        def receive() -> None:
            s.receive(timeout=10)
            box.append(time.perf_counter())

        t = threading.Thread(target=receive)
        t.start()
        time.sleep(0.05)  # the receiver is parked by now
        sent_at = time.perf_counter()
        s.send(fe.text_delta_event("x"))
        t.join(10)
        delays.append(box[0] - sent_at)
    assert statistics.median(delays) < 0.05, delays
    assert max(delays) < 1.0, delays


def test_thousand_waiting_tasks_use_a_handful_of_connections(
    redis_manager_factory: Callable[..., Any], redis_url: str,
) -> None:
    m = redis_manager_factory(max_connections=8)
    streams = [m.create_stream(f"w{i}") for i in range(1000)]
    admin = redis.Redis.from_url(redis_url)

    def clients() -> int:
        return int(admin.info("clients")["connected_clients"])

    async def main() -> None:
        before = clients()
        tasks = [asyncio.ensure_future(s.areceive(timeout=60)) for s in streams]
        await asyncio.sleep(1.5)
        assert not any(t.done() for t in tasks)
        during = clients()
        # Redis's own count: the pool (<= 8) plus the one wait-loop reader.
        assert during - before <= 9, (before, during)
        cmds = int(admin.info("stats")["total_commands_processed"])
        await asyncio.sleep(6.0)
        idle = int(admin.info("stats")["total_commands_processed"]) - cmds
        # Idle waiters: one blocking read a second, and a lease renewal per stream
        # every 5 s (a script of a few commands): about one command per waiter-second.
        assert idle / (1000 * 6.0) < 3, idle
        t0 = time.monotonic()
        for i, s in enumerate(streams):
            s.send(fe.text_delta_event(str(i)))
        got = await asyncio.gather(*tasks)
        assert [e.data["text"] for e in got] == [str(i) for i in range(1000)]
        assert time.monotonic() - t0 < 30

    try:
        asyncio.run(main())
    finally:
        admin.close()
