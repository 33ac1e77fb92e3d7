"""A/B of the compiled core's issue-14 hand-off paths, both variants in one process.

    python tools/ab_handoff.py [--rounds N] [--events N]

Compares, interleaved round by round so that a noisy machine hits both alike:

* hand-off spinning off / on (``_stream_c._set_spinning``) for threads: one producer
  -> one consumer at buffers 10, 100 and 1000 (P2), four producers -> one consumer at
  buffer 100 (P3), and a thread -> an ``async for`` task (P10);
* parking an asyncio task on the awaitable's own future / through ``_aio``'s coroutines
  (``_stream_c._set_own_park``): a producer task -> a consumer task (P9), and P10.

Prints ns per delivered event: best, median and worst of the rounds. The bodies are the
benchmark's own (``fastevents.bench._scenarios``, as ``fastevents-bench`` times them), on
the compiled stream. Needs the compiled core (the import fails without it). The settings
are private switches for measurement; the defaults are spinning on (2+ CPUs) and
own-future parking on.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable

import fastevents as fe
from fastevents._stream_c import _set_own_park, _set_spinning
from fastevents.bench import _scenarios as sc
from fastevents.bench._peers import peer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--events", type=int, default=300_000)
    args = ap.parse_args(argv)
    n = args.events
    ours = peer("fe-c")  # the bench's own scenario bodies, on the compiled stream

    def timed(make: Callable[[], sc.Body]) -> Callable[[], float]:
        def run() -> float:
            body = make()
            ns, _ = body.timed()
            return ns / body.ops
        return run

    spin = (("spin off", "spin on"), _set_spinning)
    park = (("_aio park", "own future"), _set_own_park)
    # (label, (variant names, setter), body: ns per event)
    cases: list[tuple[str, tuple[tuple[str, str], Callable[[bool], bool]],
                      Callable[[], float]]] = [
        ("P2 1 -> 1 thread, buffer 10", spin,
         timed(lambda: sc.p2_one_to_one(ours, n, buffer=10))),
        ("P2 1 -> 1 thread, buffer 100", spin,
         timed(lambda: sc.p2_one_to_one(ours, n, buffer=100))),
        ("P2 1 -> 1 thread, buffer 1000", spin,
         timed(lambda: sc.p2_one_to_one(ours, n, buffer=1000))),
        ("P3 4 -> 1 thread, buffer 100", spin,
         timed(lambda: sc.p3_four_to_one(ours, n, buffer=100))),
        ("P10 thread -> async for, buffer 100", spin,
         timed(lambda: sc.p10_thread_to_async(ours, n, buffer=100))),
        ("P9 task -> task, buffer 100", park,
         timed(lambda: sc.p9_async(ours, n, buffer=100))),
        ("P10 thread -> async for, buffer 100", park,
         timed(lambda: sc.p10_thread_to_async(ours, n, buffer=100))),
    ]

    print(f"fastevents {fe.__version__}, Python {sys.version.split()[0]}, "
          f"{args.rounds} rounds of {n} events; ns/event best / median / worst")
    for label, (names, setter), body in cases:
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
