"""A/B of the compiled core's issue-14 hand-off paths, both variants in one process.

    python tools/ab_handoff.py [--rounds N] [--events N]

Compares, interleaved round by round so that a noisy machine hits both alike:

* hand-off spinning off / on (``_stream_c._set_spinning``) for threads: one producer
  -> one consumer at buffers 10, 100 and 1000 (P2), four producers -> one consumer at
  buffer 100 (P3), and a thread -> an ``async for`` task (P10);
* parking an asyncio task on the awaitable's own future / through ``_aio``'s coroutines
  (``_stream_c._set_own_park``): a producer task -> a consumer task (P9), and P10.

Prints ns per delivered event: best, median and worst of the rounds. Needs the compiled
core (the import fails without it). The settings are private switches for
measurement; the defaults are spinning on (2+ CPUs) and own-future parking on.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from collections.abc import Callable
from itertools import repeat

import fastevents as fe
from fastevents._stream_c import CEventStream


def _threads(stream: CEventStream, producers: int, n: int) -> float:
    per = n // producers
    total = per * producers
    ev = fe.text_delta_event("Hello")
    go = threading.Event()

    def produce() -> None:
        send = stream.send
        go.wait()
        for _ in repeat(None, per):
            send(ev)

    def consume() -> None:
        receive = stream.receive
        go.wait()
        for _ in repeat(None, total):
            receive()

    threads = [threading.Thread(target=produce) for _ in range(producers)]
    threads.append(threading.Thread(target=consume))
    for t in threads:
        t.start()
    time.sleep(0.02)
    t0 = time.perf_counter_ns()
    go.set()
    for t in threads:
        t.join()
    return (time.perf_counter_ns() - t0) / total


def _tasks(stream: CEventStream, n: int) -> float:
    ev = fe.text_delta_event("Hello")

    async def main() -> float:
        async def produce() -> None:
            send = stream.asend
            for _ in repeat(None, n):
                await send(ev)

        async def consume() -> None:
            receive = stream.areceive
            for _ in repeat(None, n):
                await receive()

        t0 = time.perf_counter_ns()
        await asyncio.gather(produce(), consume())
        return (time.perf_counter_ns() - t0) / n

    return asyncio.run(main())


def _thread_to_task(stream: CEventStream, n: int) -> float:
    ev = fe.text_delta_event("Hello")
    go = threading.Event()

    def produce() -> None:
        send = stream.send
        go.wait()
        for _ in repeat(None, n):
            send(ev)
        stream.close()

    async def consume() -> None:
        async for _ in stream:
            pass

    loop = asyncio.new_event_loop()
    th = threading.Thread(target=produce)
    th.start()
    t0 = time.perf_counter_ns()
    go.set()
    loop.run_until_complete(consume())
    th.join()
    loop.close()
    return (time.perf_counter_ns() - t0) / n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--events", type=int, default=300_000)
    args = ap.parse_args(argv)
    from fastevents import _stream_c

    n = args.events
    # (label, variant names, setter, body)
    cases: list[tuple[str, tuple[str, str], Callable[[bool], bool],
                      Callable[[], float]]] = []

    def spin_case(label: str, buffer: int, producers: int) -> None:
        cases.append((label, ("spin off", "spin on"), _stream_c._set_spinning,
                      lambda: _threads(CEventStream(buffer), producers, n)))

    spin_case("P2 1 -> 1 thread, buffer 10", 10, 1)
    spin_case("P2 1 -> 1 thread, buffer 100", 100, 1)
    spin_case("P2 1 -> 1 thread, buffer 1000", 1000, 1)
    spin_case("P3 4 -> 1 thread, buffer 100", 100, 4)
    cases.append(("P10 thread -> async for, buffer 100", ("spin off", "spin on"),
                  _stream_c._set_spinning, lambda: _thread_to_task(CEventStream(100), n)))
    cases.append(("P9 task -> task, buffer 100", ("_aio park", "own future"),
                  _stream_c._set_own_park, lambda: _tasks(CEventStream(100), n)))
    cases.append(("P10 thread -> async for, buffer 100", ("_aio park", "own future"),
                  _stream_c._set_own_park, lambda: _thread_to_task(CEventStream(100), n)))

    print(f"fastevents {fe.__version__}, Python {sys.version.split()[0]}, "
          f"{args.rounds} rounds of {n} events; ns/event best / median / worst")
    for label, names, setter, body in cases:
        results: dict[bool, list[float]] = {False: [], True: []}
        old = setter(True)
        try:
            for _ in range(args.rounds):
                for variant in (False, True):
                    setter(variant)
                    results[variant].append(body())
        finally:
            setter(old)
        cells = []
        for variant in (False, True):
            v = sorted(results[variant])
            cells.append(f"{names[variant]} {v[0]:.0f} / {statistics.median(v):.0f} / "
                         f"{v[-1]:.0f}")
        ratio = statistics.median(results[False]) / statistics.median(results[True])
        print(f"{label:38} {cells[0]:28} {cells[1]:28} median ratio {ratio:.2f}x",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
