"""The scenario catalogue: P1..P10, their rows (peer x method), references and targets.

A *case* is one table: a scenario at one size or direction. Its *rows* are what is
compared; ``base`` names the row the "vs" column divides by (``queue.Queue`` where that
makes sense), ``fallback`` the pure-Python twin's row. A `Target` is a ratio the
compiled core is expected to reach against a reference row, evaluated in the same run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from . import _scenarios as sc
from ._peers import ASYNC, SINGLE, THREADS, Peer, all_peers, peer, peers_with

TIME = "time"  # ns per operation (lower is better)
LATENCY = "latency"  # p50 / p99 of a half round trip (lower is better)
MEMORY = "memory"  # bytes (lower is better)


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    build: Callable[[int], sc.Body] | None  # n -> a prepared Body; None when skipped
    reason: str = ""  # why the row is skipped
    peer: str = ""
    fallback: str | None = None  # compare with this row instead of the case's fallback
    note: str = ""


@dataclass(frozen=True)
class Target:
    subject: str  # row key (the compiled core's row)
    ref: str  # row key
    required: float  # subject is required to be this many times better than ref
    text: str
    metric: str = "value"  # or "p99_ns" (latency), "used" / "fresh" (memory)


@dataclass(frozen=True)
class Case:
    name: str  # "" or e.g. "buffer=1000"
    rows: tuple[Row, ...]
    base: str
    base_label: str
    fallback: str | None = "fe-py"
    targets: tuple[Target, ...] = ()


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    kind: str
    op: str  # what one operation is
    cases: Callable[[], list[Case]] = field(repr=False)
    warm_ops: int = 2_000  # warm-up / calibration run (time scenarios)
    min_ops: int = 1_000
    max_ops: int = 2_000_000
    smoke_ops: int = 40
    threads: bool = False


def _label(p: Peer, suffix: str = "") -> str:
    return f"{p.name} {suffix}".rstrip()


def _peer_rows(peers: list[Peer], build: Callable[[Peer], Callable[[int], sc.Body]],
               labels: dict[str, str] | None = None) -> tuple[Row, ...]:
    labels = labels or {}
    rows = []
    for p in peers:
        label = labels.get(p.key, p.name)
        if p.available:
            rows.append(Row(p.key, label, build(p), peer=p.key))
        else:
            rows.append(Row(p.key, label, None, p.reason, peer=p.key))
    return tuple(rows)


_SYNC_SIDE = {"janus": "janus (sync_q)", "culsans": "culsans (sync_q)",
              "simplequeue": "queue.SimpleQueue (unbounded)"}


def _p1() -> list[Case]:
    rows = _peer_rows(peers_with(SINGLE),
                      lambda p: functools.partial(sc.p1_same_thread, p), _SYNC_SIDE)
    return [Case("", rows, "queue", "queue.Queue", targets=(
        Target("fe-c", "queue", 15.0, ">=15x queue.Queue"),
        Target("fe-c", "fe-py", 8.0, ">=8x fallback"),
        Target("fe-c", "simplequeue", 1 / 1.3, "within 1.3x of SimpleQueue"),
    ))]


def _threaded(fn: Callable[..., sc.Body],
              buffer: int) -> Callable[[Peer], Callable[[int], sc.Body]]:
    return lambda p: functools.partial(fn, p, buffer=buffer)


def _p2() -> list[Case]:
    cases = []
    for buffer in (100, 1000):
        rows = _peer_rows(peers_with(THREADS), _threaded(sc.p2_one_to_one, buffer), _SYNC_SIDE)
        targets = (
            Target("fe-c", "queue", 12.0, ">=12x queue.Queue"),
            # SimpleQueue is unbounded: the limit a bounded stream can approach.
            Target("fe-c", "simplequeue", 1 / 3, "within 3x of SimpleQueue"),
        ) if buffer == 100 else ()
        cases.append(Case(f"buffer={buffer}", rows, "queue", "queue.Queue", targets=targets))
    return cases


def _p3() -> list[Case]:
    rows = _peer_rows(peers_with(THREADS), _threaded(sc.p3_four_to_one, 100), _SYNC_SIDE)
    return [Case("buffer=100", rows, "queue", "queue.Queue",
                 targets=(Target("fe-c", "queue", 6.0, ">=6x queue.Queue"),))]


def _p4() -> list[Case]:
    rows: list[Row] = []
    for p in peers_with(THREADS):
        if p.key == "simplequeue":
            continue  # unbounded: never full
        methods = [("try", "try_send"), ("except", "send + except StreamFull")] \
            if p.fastevents else [("except", "put_nowait + except Full")]
        for method, what in methods:
            key = f"{p.key}:{method}"
            label = f"{p.name} {what}"
            fb = f"fe-py:{method}" if p.fastevents else None
            if p.available:
                rows.append(Row(key, label,
                                functools.partial(sc.p4_full_drop, p, method=method),
                                peer=p.key, fallback=fb))
            else:
                rows.append(Row(key, label, None, p.reason, peer=p.key, fallback=fb))
    return [Case("buffer=100, full, DROP", tuple(rows), "queue:except",
                 "Queue put_nowait+Full", fallback="fe-py:try",
                 targets=(Target("fe-c:try", "queue:except", 10.0,
                                 ">=10x Queue put_nowait+except Full"),))]


def _p5() -> list[Case]:
    peers = [peer("fe-c"), peer("fe-py"), peer("queue"), peer("simplequeue")]
    labels = {"fe-c": "fastevents (cython) text_delta_event",
              "fe-py": "fastevents (python) text_delta_event",
              "queue": "dict + datetime.now + queue.Queue",
              "simplequeue": "dict + datetime.now + SimpleQueue"}
    rows = _peer_rows(peers, lambda p: functools.partial(sc.p5_build_send_receive, p), labels)
    return [Case("", rows, "queue", "dict+Queue", targets=(
        Target("fe-c", "queue", 4.0, ">=4x dict+datetime+Queue"),))]


def _p6() -> list[Case]:
    def rows(fn: Callable[[str, int], sc.Body], ours: str, theirs: str) -> tuple[Row, ...]:
        return (Row("fastevents", ours, functools.partial(fn, "fastevents")),
                Row("stdlib", theirs, functools.partial(fn, "stdlib")))

    return [
        Case("to_json", rows(sc.p6_to_json, "fastevents Event.to_json",
                             "stdlib json.dumps + isoformat"), "stdlib", "stdlib",
             fallback=None, targets=(Target("fastevents", "stdlib", 2.0, ">=2x stdlib"),)),
        Case("from_json", rows(sc.p6_from_json, "fastevents Event.from_json",
                               "stdlib json.loads + fromisoformat"), "stdlib", "stdlib",
             fallback=None, targets=(Target("fastevents", "stdlib", 1.5, ">=1.5x stdlib"),)),
    ]


def _p7() -> list[Case]:
    # Measured by _runner's memory path with _memory's functions; `build` is unused.
    names = {"queue": "queue.Queue(100)", "asyncio": "asyncio.Queue(100)",
             "janus": "janus.Queue(100)", "culsans": "culsans.Queue(100)"}

    def rows(keys: list[str], labels: dict[str, str]) -> tuple[Row, ...]:
        out = []
        for k in keys:
            p = peer(k)
            label = labels.get(k, p.name)
            out.append(Row(k, label, _no_build if p.available else None, p.reason, peer=k))
        return tuple(out)

    per_stream = rows(["fe-c", "fe-py", "queue", "simplequeue", "asyncio", "janus", "culsans"],
                      names)
    managed = {"fe-c": "StreamManager, cython streams", "fe-py": "StreamManager, python streams",
               "queue": "dict of id -> queue.Queue(100)"}
    return [
        Case(MEM_PER_STREAM, per_stream, "queue", "Queue(100)", targets=(
            Target("fe-c", "queue", 3.0, "<=1/3 of Queue(100) fresh", metric="fresh"),
            Target("fe-c", "queue", 3.0, "<=1/3 of Queue(100) used", metric="used"),
        )),
        Case(MEM_MANAGED, rows(["fe-c", "fe-py", "queue"], managed), "queue", "dict of Queue"),
        Case(MEM_MANY, rows(["fe-c", "fe-py", "queue"], managed), "queue", "dict of Queue"),
    ]


MEM_PER_STREAM = "per stream, buffer 100"
MEM_MANAGED = "per managed stream (create_stream, id included)"
MEM_MANY = "streams in one StreamManager"


def _no_build(n: int) -> sc.Body:  # pragma: no cover - memory rows are not timed
    raise RuntimeError("memory rows are measured, not timed")


def _p8() -> list[Case]:
    rows = _peer_rows(peers_with(THREADS),
                      lambda p: functools.partial(sc.p8_latency, p), _SYNC_SIDE)
    return [Case("", rows, "queue", "queue.Queue", targets=(
        Target("fe-c", "queue", 1.0, "p50 <= queue.Queue"),
        Target("fe-c", "queue", 1.0, "p99 <= queue.Queue", metric="p99_ns"),
    ))]


def _p9() -> list[Case]:
    labels = {"janus": "janus (async_q)", "culsans": "culsans (async_q)",
              "asyncio": "asyncio.Queue(100)", "anyio": "anyio memory stream (100)",
              "aiologic": "aiologic.Queue(100)"}
    rows = _peer_rows(peers_with(ASYNC), _threaded(sc.p9_async, 100), labels)
    return [Case("buffer=100", rows, "asyncio", "asyncio.Queue", targets=(
        Target("fe-c", "asyncio", 3.0, ">=3x asyncio.Queue(100)"),
        Target("fe-c", "anyio", 1.0, "ahead of anyio memory streams"),))]


def _p10() -> list[Case]:
    keys = ["fe-c", "fe-py", "culsans", "janus", "aiologic", "asyncio"]
    labels = {"fe-c": "fastevents (cython) send -> async for",
              "fe-py": "fastevents (python) send -> async for",
              "culsans": "culsans sync_q.put -> async_q.get",
              "janus": "janus sync_q.put -> async_q.get",
              "aiologic": "aiologic green_put -> async_get",
              "asyncio": "asyncio.Queue + call_soon_threadsafe (unbounded)"}
    rows = _peer_rows([peer(k) for k in keys], _threaded(sc.p10_thread_to_async, 100), labels)
    return [Case("buffer=100", rows, "asyncio", "call_soon_threadsafe", targets=(
        Target("fe-c", "culsans", 4.0, ">=4x culsans"),
        Target("fe-c", "janus", 8.0, ">=8x janus"),
        Target("fe-c", "aiologic", 1.0, "ahead of aiologic.Queue"),
    ))]


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("P1", "send + receive, same thread, prebuilt event", TIME,
             "one put + one get", _p1, warm_ops=20_000, min_ops=10_000),
    Scenario("P2", "one producer thread -> one consumer thread", TIME,
             "one event delivered (wall time / N)", _p2, warm_ops=5_000, min_ops=5_000,
             threads=True),
    Scenario("P3", "four producer threads -> one consumer thread", TIME,
             "one event delivered (wall time / N)", _p3, warm_ops=5_000, min_ops=5_000,
             threads=True),
    Scenario("P4", "send into a full stream (DROP policy)", TIME,
             "one rejected send", _p4, warm_ops=20_000, min_ops=10_000),
    Scenario("P5", "build an event + send + receive (the per-token cost)", TIME,
             "build + put + get", _p5, warm_ops=20_000, min_ops=10_000),
    Scenario("P6", "event JSON: to_json and from_json", TIME,
             "one encode or decode", _p6, warm_ops=20_000, min_ops=10_000),
    Scenario("P7", "memory per stream, per managed stream, 100 000 streams", MEMORY,
             "bytes per stream", _p7),
    Scenario("P8", "thread hand-off latency (ping-pong, half round trip)", LATENCY,
             "half a round trip", _p8, threads=True),
    Scenario("P9", "producer task -> consumer task, one asyncio loop", TIME,
             "one event delivered", _p9, warm_ops=5_000, min_ops=5_000),
    Scenario("P10", "producer thread -> asyncio consumer task", TIME,
             "one event delivered", _p10, warm_ops=5_000, min_ops=5_000, threads=True),
)


def _a1() -> list[Case]:
    from ._providers import cases  # a module of its own: it needs the SDKs, when built

    return cases()


SCENARIOS += (Scenario("A1", "provider adapters: convert + send vs iterating the SDK stream",
                       TIME, "one SDK token event", _a1, warm_ops=300, min_ops=300,
                       max_ops=100_000),)


def scenario(sid: str) -> Scenario:
    for s in SCENARIOS:
        if s.id == sid.upper():
            return s
    raise KeyError(sid)


def skipped_peers() -> list[tuple[str, str]]:
    """(name, reason) of every unavailable peer."""
    return [(p.name, p.reason) for p in all_peers() if not p.available]


from ._history import SCENARIO as _H1  # noqa: E402  (imports this module's classes)

SCENARIOS = (*SCENARIOS, _H1)  # H1: the cost of history= (issue 10)
