"""Stress (issue #5): many producers x many consumers, threads and asyncio tasks, random closes.

For every run, on both twins:

* every *accepted* event (``send``/``asend`` returned, ``try_send`` returned True, the first
  ``sent`` events of a ``send_many``/``asend_many``, also when it raised) is delivered
  exactly once;
* nothing that was rejected (``StreamFull``, ``StreamClosed``, ``TimeoutError``,
  ``try_send`` False, the tail of a partial ``send_many``) is ever delivered;
* each consumer sees each producer's events in the order they were sent (with a single
  consumer: exactly the accepted sequence of every producer);
* nothing hangs: every thread is joined with a timeout.

Producers mix ``send`` (with and without a timeout), ``try_send``, ``send_many``;
consumers mix ``receive``, ``try_receive``, ``receive_many`` and iteration; the asyncio
side (a loop in its own thread) mixes ``asend``/``asend_many`` with ``areceive``/
``areceive_many``/``async for``, and cancels some ``asend``/``areceive`` tasks while they
wait (an event is in the stream only if ``asend`` returned, and is delivered only to an
``areceive`` that returned). The stream is closed either once every producer is done
or at a random moment while they are still running; some runs switch the policy
between BLOCK and DROP while they go.

The light runs are part of the default suite. The heavy ones are marked ``slow`` and are
skipped unless ``-m slow`` is given or ``FASTEVENTS_SLOW=1`` is set
(``FASTEVENTS_STRESS_ROUNDS`` sets their number of runs, default 6); set
``FASTEVENTS_STRESS_REPORT=1`` to print the running totals of what was done.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

import fastevents as fe

BLOCK = fe.BackpressurePolicy.BLOCK
DROP = fe.BackpressurePolicy.DROP

JOIN = 60.0  # a run that takes longer than this is reported as hung
HEAVY_ROUNDS = int(os.environ.get("FASTEVENTS_STRESS_ROUNDS", "6"))  # runs per heavy test


def slow_enabled(config: pytest.Config) -> bool:
    if os.environ.get("FASTEVENTS_SLOW") == "1":
        return True
    expr = config.getoption("markexpr", "") or ""
    return "slow" in expr and "not slow" not in expr


@pytest.fixture(autouse=True)
def _skip_slow_by_default(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("slow") and not slow_enabled(request.config):
        pytest.skip("heavy stress run: give -m slow or set FASTEVENTS_SLOW=1")


@dataclass
class Config:
    producers: int
    consumers: int
    buffer_size: int
    per_producer: int
    close: str  # "end": after every producer finished; "random": at a random moment
    async_producers: int = 0
    async_consumers: int = 0
    switch_policy: bool = False
    policy: fe.BackpressurePolicy = BLOCK
    seed: int = 0
    loops: int = 1  # event loops (each in its own thread) sharing the asyncio side


@dataclass
class Tally:
    """What one run did (summed into the figures the README quotes)."""

    runs: int = 0
    threads: int = 0
    tasks: int = 0
    attempted: int = 0
    accepted: int = 0
    delivered: int = 0
    closes: int = 0
    closes_midway: int = 0
    ops: Counter[str] = field(default_factory=Counter)


TOTAL = Tally()


def make_events(pid: int, n: int) -> list[fe.Event]:
    return [fe.Event(fe.EventType.TEXT_DELTA, {"p": pid, "i": i}) for i in range(n)]


class Run:
    def __init__(self, stream_cls: type, cfg: Config) -> None:
        self.cfg = cfg
        self.stream = stream_cls(cfg.buffer_size, cfg.policy, stream_id="stress")
        n_prod = cfg.producers + cfg.async_producers
        n_cons = cfg.consumers + cfg.async_consumers
        self.events = [make_events(pid, cfg.per_producer) for pid in range(n_prod)]
        self.accepted: list[list[int]] = [[] for _ in range(n_prod)]  # seqs, in send order
        self.got: list[list[tuple[int, int]]] = [[] for _ in range(n_cons)]
        self.ops: list[Counter[str]] = [Counter() for _ in range(n_prod + n_cons + 1)]
        self.errors: list[BaseException] = []
        self.producers_done = threading.Event()
        self.close_now = threading.Event()
        # For close="random": the close comes when this producer gets to this event.
        rng = random.Random(cfg.seed + 99)
        self.close_at = (rng.randrange(n_prod), rng.randrange(cfg.per_producer)) if n_prod else None
        self.closed_midway = False
        # Everybody starts at once: the threads, the closer and the event loops.
        self.start = threading.Barrier(cfg.producers + cfg.consumers + 1 + cfg.loops)
        self.async_producers_done = threading.Semaphore(0)  # one release per loop

    # -- sync producers / consumers -----------------------------------------------------

    def producer(self, pid: int) -> None:
        rng = random.Random(self.cfg.seed * 1000 + pid)
        s, evs, acc, ops = self.stream, self.events[pid], self.accepted[pid], self.ops[pid]
        self.start.wait(JOIN)
        i = 0
        n = len(evs)
        trigger = self.close_at[1] if self.close_at and self.close_at[0] == pid else -1
        while i < n:
            if i >= trigger >= 0:
                self.close_now.set()
            op = rng.random()
            try:
                if op < 0.45:
                    ops["send"] += 1
                    s.send(evs[i])
                    acc.append(i)
                    i += 1
                elif op < 0.6:
                    ops["send_timeout"] += 1
                    try:
                        s.send(evs[i], timeout=rng.choice((0, 0.001, 0.01)))
                        acc.append(i)
                    except (TimeoutError, fe.StreamFull):
                        pass
                    i += 1
                elif op < 0.75:
                    ops["try_send"] += 1
                    if s.try_send(evs[i]):
                        acc.append(i)
                    i += 1
                else:
                    ops["send_many"] += 1
                    k = rng.randint(1, 8)
                    batch = evs[i:i + k]
                    try:
                        sent = s.send_many(batch, timeout=rng.choice((None, None, 0.01)))
                    except TimeoutError as exc:
                        sent = exc.sent
                    except fe.StreamClosed as exc:
                        acc.extend(range(i, i + exc.sent))
                        raise
                    acc.extend(range(i, i + sent))
                    i += len(batch)
            except fe.StreamFull:
                i += 1
            except fe.StreamClosed:
                return  # the stream was closed under us: everything later is rejected

    def consumer(self, cid: int) -> None:
        rng = random.Random(self.cfg.seed * 1000 + 500 + cid)
        s, got = self.stream, self.got[cid]
        ops = self.ops[len(self.accepted) + cid]
        self.start.wait(JOIN)
        style = cid % 4
        if style == 3:
            ops["iterate"] += 1
            for ev in s:
                got.append((ev.data["p"], ev.data["i"]))
            return
        while True:
            op = rng.random()
            if op < 0.4:
                ops["receive"] += 1
                try:
                    ev = s.receive(timeout=rng.choice((None, 0.01)))
                except TimeoutError:
                    continue
                except fe.StreamClosed:
                    return
                got.append((ev.data["p"], ev.data["i"]))
            elif op < 0.6:
                ops["try_receive"] += 1
                ev = s.try_receive()
                if ev is None:
                    if s.closed and len(s) == 0:
                        # Closed and (racily) drained: a last receive decides.
                        try:
                            ev = s.receive(timeout=0)
                        except (fe.StreamClosed, TimeoutError):
                            return
                    else:
                        time.sleep(0)
                        continue
                got.append((ev.data["p"], ev.data["i"]))
            else:
                ops["receive_many"] += 1
                try:
                    batch = s.receive_many(rng.randint(1, 10), timeout=rng.choice((None, 0.01)))
                except TimeoutError:
                    continue
                if not batch:
                    return
                got.extend((ev.data["p"], ev.data["i"]) for ev in batch)

    # -- asyncio producers / consumers (one loop, in its own thread) ----------------------

    async def aproducer(self, pid: int) -> None:
        rng = random.Random(self.cfg.seed * 1000 + pid)
        s, evs, acc, ops = self.stream, self.events[pid], self.accepted[pid], self.ops[pid]
        i = 0
        n = len(evs)
        trigger = self.close_at[1] if self.close_at and self.close_at[0] == pid else -1
        while i < n:
            if i >= trigger >= 0:
                self.close_now.set()
            op = rng.random()
            try:
                if op < 0.5:
                    ops["asend"] += 1
                    try:
                        await s.asend(evs[i], timeout=rng.choice((None, None, 0.01)))
                        acc.append(i)
                    except TimeoutError:
                        pass
                    i += 1
                elif op < 0.65:
                    # Cancelled while (maybe) parked: in the stream only if asend returned.
                    ops["asend_cancelled"] += 1
                    task = asyncio.ensure_future(s.asend(evs[i]))
                    await asyncio.sleep(rng.choice((0, 0, 0.001)))
                    task.cancel()
                    try:
                        await task
                        acc.append(i)
                    except asyncio.CancelledError:
                        pass
                    i += 1
                else:
                    ops["asend_many"] += 1
                    k = rng.randint(1, 8)
                    batch = evs[i:i + k]
                    try:
                        sent = await s.asend_many(batch, timeout=rng.choice((None, 0.01)))
                    except TimeoutError as exc:
                        sent = exc.sent
                    except fe.StreamClosed as exc:
                        acc.extend(range(i, i + exc.sent))
                        raise
                    acc.extend(range(i, i + sent))
                    i += len(batch)
            except fe.StreamFull:
                i += 1
            except fe.StreamClosed:
                return

    async def aconsumer(self, cid: int) -> None:
        rng = random.Random(self.cfg.seed * 1000 + 500 + cid)
        s, got = self.stream, self.got[cid]
        ops = self.ops[len(self.accepted) + cid]
        if cid % 3 == 2:
            ops["async_for"] += 1
            async for ev in s:
                got.append((ev.data["p"], ev.data["i"]))
            return
        while True:
            op = rng.random()
            if op < 0.15:
                # Cancelled while (maybe) parked: it has an event only if areceive returned.
                ops["areceive_cancelled"] += 1
                task = asyncio.ensure_future(s.areceive())
                await asyncio.sleep(rng.choice((0, 0, 0.001)))
                task.cancel()
                try:
                    ev = await task
                except asyncio.CancelledError:
                    continue
                except fe.StreamClosed:
                    return
                got.append((ev.data["p"], ev.data["i"]))
            elif op < 0.6:
                ops["areceive"] += 1
                try:
                    ev = await s.areceive(timeout=rng.choice((None, 0.01)))
                except TimeoutError:
                    continue
                except fe.StreamClosed:
                    return
                got.append((ev.data["p"], ev.data["i"]))
            else:
                ops["areceive_many"] += 1
                try:
                    batch = await s.areceive_many(rng.randint(1, 10),
                                                  timeout=rng.choice((None, 0.01)))
                except TimeoutError:
                    continue
                if not batch:
                    return
                got.extend((ev.data["p"], ev.data["i"]) for ev in batch)

    def loop_thread(self, k: int) -> None:
        """Event loop k runs the asyncio producers and consumers whose index % loops == k."""
        cfg = self.cfg

        async def main() -> None:
            prods = [asyncio.ensure_future(self.aproducer(cfg.producers + j))
                     for j in range(cfg.async_producers) if j % cfg.loops == k]
            cons = [asyncio.ensure_future(self.aconsumer(cfg.consumers + j))
                    for j in range(cfg.async_consumers) if j % cfg.loops == k]
            try:
                await asyncio.gather(*prods)
            finally:
                self.async_producers_done.release()
            await asyncio.gather(*cons)

        self.start.wait(JOIN)
        asyncio.run(main())

    # -- closing ------------------------------------------------------------------------

    def closer(self) -> None:
        """Close once every producer is done ("end"), or when a randomly chosen producer
        reaches a randomly chosen event ("random"), while the others are still going."""
        ops = self.ops[-1]
        rng = random.Random(self.cfg.seed + 77)
        self.start.wait(JOIN)
        trigger = self.close_now if self.cfg.close == "random" else self.producers_done
        while not trigger.wait(0.002):
            if self.producers_done.is_set():
                break
            if self.cfg.switch_policy:
                ops["switch_policy"] += 1
                self.stream.policy = rng.choice((BLOCK, DROP))
        self.closed_midway = not self.producers_done.is_set()
        ops["close"] += 1
        self.stream.close()

    # -- running and checking -------------------------------------------------------------

    def _guard(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except BaseException as exc:
            self.errors.append(exc)
            raise

    def run(self) -> None:
        cfg = self.cfg
        prods = [threading.Thread(target=self._guard, args=(self.producer, p), daemon=True)
                 for p in range(cfg.producers)]
        cons = [threading.Thread(target=self._guard, args=(self.consumer, c), daemon=True)
                for c in range(cfg.consumers)]
        closer = threading.Thread(target=self._guard, args=(self.closer,), daemon=True)
        loops = [threading.Thread(target=self._guard, args=(self.loop_thread, k), daemon=True)
                 for k in range(cfg.loops)]
        everyone = (*prods, *cons, closer, *loops)
        for t in everyone:
            t.start()
        deadline = time.monotonic() + JOIN
        for t in prods:
            t.join(max(0.0, deadline - time.monotonic()))
        for _ in loops:
            self.async_producers_done.acquire(timeout=max(0.0, deadline - time.monotonic()))
        self.producers_done.set()
        for t in everyone:
            t.join(max(0.0, deadline - time.monotonic()))
        hung = [t.name for t in everyone if t.is_alive()]
        assert not self.errors, f"{cfg}: a thread failed: {self.errors!r}"
        assert not hung, f"{cfg}: threads still running after {JOIN}s: {hung}"

    def check(self) -> None:
        cfg = self.cfg
        delivered = Counter(x for got in self.got for x in got)
        accepted = {(pid, i) for pid, seqs in enumerate(self.accepted) for i in seqs}
        dups = [x for x, n in delivered.items() if n > 1]
        assert not dups, f"{cfg}: delivered more than once: {dups[:10]}"
        ghosts = set(delivered) - accepted
        assert not ghosts, f"{cfg}: delivered but rejected: {sorted(ghosts)[:10]}"
        lost = accepted - set(delivered)
        assert not lost, f"{cfg}: accepted but never delivered: {sorted(lost)[:10]}"
        assert len(self.stream) == 0 and self.stream.closed
        for cid, got in enumerate(self.got):
            last: dict[int, int] = {}
            for pid, i in got:
                assert last.get(pid, -1) < i, (
                    f"{cfg}: consumer {cid} got producer {pid}'s #{i} after #{last[pid]}"
                )
                last[pid] = i
        if len(self.got) == 1:
            for pid, seqs in enumerate(self.accepted):
                assert [i for p, i in self.got[0] if p == pid] == seqs
        for seqs in self.accepted:  # sanity of the bookkeeping itself
            assert seqs == sorted(set(seqs))

    def tally(self) -> None:
        cfg = self.cfg
        TOTAL.runs += 1
        TOTAL.threads += cfg.producers + cfg.consumers + 1 + cfg.loops
        TOTAL.tasks += cfg.async_producers + cfg.async_consumers
        TOTAL.attempted += sum(len(e) for e in self.events)
        TOTAL.accepted += sum(len(a) for a in self.accepted)
        TOTAL.delivered += sum(len(g) for g in self.got)
        TOTAL.closes += 1
        TOTAL.closes_midway += self.closed_midway
        for c in self.ops:
            TOTAL.ops.update(c)


def stress(stream_cls: type, cfg: Config) -> Run:
    run = Run(stream_cls, cfg)
    run.run()
    run.check()
    run.tally()
    return run


def report(label: str) -> None:
    if os.environ.get("FASTEVENTS_STRESS_REPORT"):
        ops = sum(TOTAL.ops.values())
        print(f"\n[{label}] runs={TOTAL.runs} threads={TOTAL.threads} tasks={TOTAL.tasks} "
              f"events attempted={TOTAL.attempted} accepted={TOTAL.accepted} "
              f"delivered={TOTAL.delivered} closes={TOTAL.closes} "
              f"(mid-run {TOTAL.closes_midway}) api-calls={ops} {dict(TOTAL.ops)}")


# -- the light runs (default suite) ---------------------------------------------------------

LIGHT = [
    # producers, consumers, buffer, per producer, close, async prod/cons, switch, policy
    Config(4, 4, 1, 500, "end"),
    Config(3, 1, 1, 500, "end", 1, 0),
    Config(4, 3, 7, 1000, "random", 1, 1),
    Config(2, 2, 64, 1500, "end", 2, 2, switch_policy=True),
    Config(6, 2, 1000, 1000, "random", 0, 2, policy=DROP),
    Config(1, 4, 3, 2000, "end", 1, 1, loops=1),
    Config(2, 2, 2, 800, "random", 4, 4, loops=2),
]


@pytest.mark.parametrize("cfg", LIGHT, ids=lambda c: (
    f"p{c.producers}+{c.async_producers}-c{c.consumers}+{c.async_consumers}"
    f"-b{c.buffer_size}-{c.close}{'-switch' if c.switch_policy else ''}"
    f"{'-drop' if c.policy == DROP else ''}"))
def test_stress_light(stream_cls: type, cfg: Config) -> None:
    for seed in range(2):
        stress(stream_cls, dataclasses.replace(cfg, seed=seed))
    report("light")


def test_stress_random_close_many_rounds(stream_cls: type) -> None:
    """Many short runs that close at a random moment: the close/accept boundary."""
    rng = random.Random(12345)
    for seed in range(8):
        cfg = Config(
            producers=rng.randint(1, 4), consumers=rng.randint(1, 4),
            buffer_size=rng.choice((1, 2, 5, 50)), per_producer=300, close="random",
            async_producers=rng.randint(0, 1), async_consumers=rng.randint(0, 1),
            switch_policy=rng.random() < 0.3, seed=seed,
        )
        stress(stream_cls, cfg)
    report("random-close")


# -- the heavy runs (-m slow, or FASTEVENTS_SLOW=1) -------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("buffer_size", [1, 2, 16, 256, 100_000])
def test_stress_heavy(stream_cls: type, buffer_size: int) -> None:
    rng = random.Random(buffer_size)
    for seed in range(HEAVY_ROUNDS):
        cfg = Config(
            producers=rng.randint(1, 12), consumers=rng.randint(1, 12),
            buffer_size=buffer_size, per_producer=rng.choice((500, 2000, 5000)),
            close=rng.choice(("end", "random")),
            async_producers=rng.randint(0, 4), async_consumers=rng.randint(0, 4),
            switch_policy=rng.random() < 0.3, policy=rng.choice((BLOCK, BLOCK, DROP)),
            seed=seed,
        )
        stress(stream_cls, cfg)
    report("heavy")


@pytest.mark.slow
def test_stress_heavy_several_loops(stream_cls: type) -> None:
    """Three event loops in three threads plus sync threads, all on one stream."""
    for seed in range(4):
        cfg = Config(4, 4, 1 + seed * 3, 3000, ("end", "random")[seed % 2], 6, 6,
                     seed=seed, loops=3)
        stress(stream_cls, cfg)
    report("heavy-loops")
