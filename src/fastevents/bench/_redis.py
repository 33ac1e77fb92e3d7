"""``fastevents-bench --redis [URL]``: the Redis backend against raw redis-py, same run.

Both sides carry the same JSON (``Event.to_json``) and give back ``Event`` objects
(``Event.from_json``), so the difference is what the backend adds: the atomic bound,
exactly-once delivery, sequence numbers, TTLs -- one Lua script per send and per receive
-- against plain ``XADD`` + ``XREAD`` (pipelined ``XADD``s for batches), which give none of
that. Without a URL a private ``redis-server`` (from PATH) is started on a free loopback
port and stopped afterwards; with none available the run says so and exits 2.

What limits it is printed too: the round trip (``PING``), the JSON cost per event, and
Redis's own time per script call (``INFO commandstats``).
"""

from __future__ import annotations

import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import fastevents as fe

BATCH = 100


@contextmanager
def _server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise LookupError("redis-server not found on PATH (or pass --redis URL)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="fastevents-bench-redis-") as tmp:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp,
             "--save", "", "--appendonly", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("redis-server did not start") from None
                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)


def _events(n: int) -> list[fe.Event]:
    return [fe.text_delta_event(f"token {i:08d} of a streamed answer") for i in range(n)]


def _best(fn: Callable[[], float], repeat: int) -> float:
    """The median of ``repeat`` timings (seconds per event)."""
    return statistics.median(fn() for _ in range(repeat))


def run(url: str, *, quick: bool) -> dict[str, Any]:
    import redis

    from fastevents.redis import RedisStreamManager

    n_single = 1000 if quick else 5000
    n_batches = 50 if quick else 300
    repeat = 3 if quick else 5
    raw: Any = redis.Redis.from_url(url)  # responses are untyped unions in redis-py
    ns = f"bench{time.time_ns()}"
    results: dict[str, Any] = {"n_single": n_single, "n_batch_events": n_batches * BATCH}
    with RedisStreamManager(url, buffer_size=10_000, namespace=ns) as m:
        stream = m.create_stream("bench")
        single = _events(n_single)
        batch = _events(BATCH)

        def ours_single() -> float:
            t0 = time.perf_counter()
            for e in single:
                stream.send(e)
                stream.receive()
            return (time.perf_counter() - t0) / n_single

        key = f"{ns}:raw"

        def raw_single() -> float:
            raw.delete(key)
            last: Any = b"0-0"
            t0 = time.perf_counter()
            for e in single:
                raw.xadd(key, {"e": e.to_json()})
                (_, entries), = raw.xread({key: last}, count=1)
                last, fields = entries[0]
                fe.Event.from_json(fields[b"e"])
            return (time.perf_counter() - t0) / n_single

        def ours_batch() -> float:
            t0 = time.perf_counter()
            for _ in range(n_batches):
                stream.send_many(batch)
                got = stream.receive_many(BATCH)
                assert len(got) == BATCH
            return (time.perf_counter() - t0) / (n_batches * BATCH)

        def raw_batch() -> float:
            raw.delete(key)
            last: Any = b"0-0"
            t0 = time.perf_counter()
            for _ in range(n_batches):
                pipe = raw.pipeline(transaction=False)
                for e in batch:
                    pipe.xadd(key, {"e": e.to_json()})
                pipe.execute()
                (_, entries), = raw.xread({key: last}, count=BATCH)
                for _id, fields in entries:
                    fe.Event.from_json(fields[b"e"])
                last = entries[-1][0]
            return (time.perf_counter() - t0) / (n_batches * BATCH)

        ours_single()  # warm up: scripts loaded, connections open
        raw.config_resetstat()
        results["ours_single"] = _best(ours_single, repeat)
        stats = raw.info("commandstats")
        results["raw_single"] = _best(raw_single, repeat)
        results["ours_batch"] = _best(ours_batch, repeat)
        results["raw_batch"] = _best(raw_batch, repeat)
        raw.delete(key)
        stream.close()

    # What limits it: the round trip, the JSON, Redis's time inside each script.
    t0 = time.perf_counter()
    for _ in range(500):
        raw.ping()
    results["rtt"] = (time.perf_counter() - t0) / 500
    t0 = time.perf_counter()
    docs = [e.to_json() for e in single]
    for d in docs:
        fe.Event.from_json(d)
    results["json"] = (time.perf_counter() - t0) / n_single
    evalsha = stats.get("cmdstat_evalsha", {})
    results["script_usec"] = float(evalsha.get("usec_per_call", 0.0))
    raw.close()
    return results


def render(r: dict[str, Any]) -> str:
    us = 1e6
    lines = [
        "fastevents on Redis vs raw redis-py (XADD + XREAD), same JSON, same run",
        f"  per event (send + receive, {r['n_single']} events):"
        f" fastevents {r['ours_single'] * us:7.1f} us   raw {r['raw_single'] * us:7.1f} us"
        f"   ratio {r['ours_single'] / r['raw_single']:.2f}x",
        f"  batches of {BATCH} (send_many + receive_many, {r['n_batch_events']} events):"
        f" fastevents {r['ours_batch'] * us:5.2f} us/event   raw {r['raw_batch'] * us:5.2f}"
        f" us/event   ratio {r['ours_batch'] / r['raw_batch']:.2f}x",
        f"  throughput through batches: {1 / r['ours_batch']:,.0f} events/s"
        f" (raw {1 / r['raw_batch']:,.0f} events/s)",
        "  what limits it:",
        f"    round trip (PING): {r['rtt'] * us:.1f} us; a single send + receive is 2 round trips",
        f"    JSON to_json + from_json: {r['json'] * us:.1f} us per event",
        f"    Redis time per script call (single-event send/receive): {r['script_usec']:.1f} us",
    ]
    return "\n".join(lines) + "\n"


def main(url: str | None, *, quick: bool) -> int:
    try:
        import redis  # noqa: F401
    except ImportError:
        sys.stderr.write("fastevents-bench: --redis needs redis-py (the 'redis' extra)\n")
        return 2
    try:
        if url:
            results = run(url, quick=quick)
        else:
            with _server() as started:
                results = run(started, quick=quick)
    except LookupError as exc:
        sys.stderr.write(f"fastevents-bench: {exc}\n")
        return 2
    sys.stdout.write(render(results))
    return 0
