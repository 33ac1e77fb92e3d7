"""Run the scenario matrix in one process and collect the numbers.

Timing rules (the same for every peer):

* ``time.perf_counter_ns`` around the prepared body only: building queues, starting
  threads and making event loops happen before the clock starts.
* A warm-up run per row, which also calibrates the number of operations so that one
  sample lasts about ``sample_s`` (slow peers get fewer operations, never less than the
  scenario's minimum).
* ``repeats`` samples per row, *interleaved* across the rows of a table (row A, B, C, A,
  B, C ...), so that load from other processes hits every peer alike; the reported value
  is the best sample, the median is kept alongside. Ratios compare best with best.
* ``gc.collect()`` before each sample, garbage collection left on while timing (users
  pay for it too).
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import fastevents as fe

from . import _memory
from ._catalog import (
    LATENCY,
    MEM_MANAGED,
    MEM_MANY,
    MEM_PER_STREAM,
    TIME,
    Case,
    Row,
    Scenario,
    Target,
)
from ._peers import peer as peer_by_key
from ._progress import Progress

SCHEMA = "fastevents-bench/1"


@dataclass(frozen=True)
class Settings:
    mode: str  # "quick", "full" or "smoke"
    repeats: int
    sample_s: float  # target duration of one timed sample
    latency_ops: int  # round trips per latency sample
    memory_k: int  # queues per memory measurement
    many: int  # streams in the StreamManager of P7
    many_all: bool  # P7 "many": both twins and the dict of Queue, else the default core
    trace_many: bool  # P7 "many": also a tracemalloc pass (slow)
    calibrate: bool = True


QUICK = Settings("quick", repeats=3, sample_s=0.02, latency_ops=1_500, memory_k=500,
                 many=100_000, many_all=False, trace_many=False)
FULL = Settings("full", repeats=7, sample_s=0.1, latency_ops=10_000, memory_k=5_000,
                many=100_000, many_all=True, trace_many=True)
SMOKE = Settings("smoke", repeats=1, sample_s=0.0, latency_ops=20, memory_k=20, many=300,
                 many_all=True, trace_many=True, calibrate=False)
MODES = {"quick": QUICK, "full": FULL, "smoke": SMOKE}


def settings_for(mode: str, repeats: int | None = None) -> Settings:
    s = MODES[mode]
    return s if repeats is None else replace(s, repeats=max(1, repeats))


# -- planning --------------------------------------------------------------------------------


def _units(scn: Scenario, cases: Sequence[Case], st: Settings) -> int:
    n = 0
    for case in cases:
        active = sum(1 for r in case.rows if r.build is not None)
        if scn.kind == TIME:
            n += active * (st.repeats + (1 if st.calibrate else 0))
        elif scn.kind == LATENCY:
            n += active * st.repeats
        else:
            n += active * (2 if case.name == MEM_PER_STREAM else 1)
    return n


def run(scenarios: Sequence[Scenario], st: Settings, progress_bar: bool = False,
        quiet: bool = False) -> dict[str, Any]:
    """Run ``scenarios``; returns the report data (see `_report` for its shape)."""
    from ._machine import machine_info

    plan = [(scn, scn.cases()) for scn in scenarios]
    progress = Progress(sum(_units(s, c, st) for s, c in plan), bar=progress_bar,
                        quiet=quiet)
    started = time.perf_counter()
    results = []
    try:
        for scn, cases in plan:
            t0 = time.perf_counter()
            if scn.kind == TIME:
                out = [_run_time_case(scn, c, st, progress) for c in cases]
            elif scn.kind == LATENCY:
                out = [_run_latency_case(scn, c, st, progress) for c in cases]
            else:
                out = [_run_memory_case(scn, c, st, progress) for c in cases]
            seconds = time.perf_counter() - t0
            res = {"id": scn.id, "title": scn.title, "kind": scn.kind, "op": scn.op,
                   "cases": out, "seconds": round(seconds, 3)}
            results.append(res)
            missed = sum(1 for c in out for t in c["targets"] if t["met"] is False)
            progress.scenario_done(scn.id, scn.title, seconds,
                                   f", {missed} target(s) missed" if missed else "")
    finally:
        progress.close()
    return {
        "schema": SCHEMA,
        "machine": machine_info(),
        "settings": {"mode": st.mode, "repeats": st.repeats, "sample_s": st.sample_s,
                     "latency_round_trips": st.latency_ops, "memory_k": st.memory_k,
                     "many_streams": st.many},
        "scenarios": results,
        "targets": summarize_targets(results),
        "seconds": round(time.perf_counter() - started, 3),
    }


# -- time ------------------------------------------------------------------------------------


def _sample(row: Row, n: int) -> tuple[int, int, Any]:
    assert row.build is not None
    body = row.build(n)
    gc.collect()
    ns, result = body.timed()
    return ns, body.ops, result


def _run_time_case(scn: Scenario, case: Case, st: Settings, progress: Progress) -> dict[str, Any]:
    active = [r for r in case.rows if r.build is not None]
    ops: dict[str, int] = {}
    errors: dict[str, str] = {}
    for r in active:
        if not st.calibrate:
            ops[r.key] = scn.smoke_ops
            continue
        progress.update(f"{scn.id} {case.name} {r.label}: warm-up".replace("  ", " "))
        try:
            ns, done, _ = _sample(r, scn.warm_ops)
            per_op = max(ns / max(done, 1), 1.0)
            ops[r.key] = int(min(scn.max_ops, max(scn.min_ops, st.sample_s * 1e9 / per_op)))
        except Exception as exc:
            errors[r.key] = f"{type(exc).__name__}: {exc}"
        progress.advance()
    samples: dict[str, list[float]] = {r.key: [] for r in active}
    for rep in range(st.repeats):
        for r in active:
            if r.key in errors:
                progress.advance()
                continue
            progress.update(f"{scn.id} {case.name} {r.label} ({rep + 1}/{st.repeats})"
                            .replace("  ", " "))
            try:
                ns, done, _ = _sample(r, ops[r.key])
                samples[r.key].append(ns / done)
            except Exception as exc:
                errors[r.key] = f"{type(exc).__name__}: {exc}"
            progress.advance()
    rows = []
    for r in case.rows:
        row = _row_head(r)
        if r.key in errors:
            row["error"] = errors[r.key]
        elif r.build is not None and samples[r.key]:
            vals = samples[r.key]
            best = min(vals)
            row.update({"value": best, "ns_per_op": best, "median_ns_per_op": _median(vals),
                        "ops_per_s": 1e9 / best, "ops": ops[r.key],
                        "samples_ns_per_op": [round(v, 3) for v in vals]})
        rows.append(row)
    return _finish_case(case, rows, ["value"])


# -- latency -----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by the nearest-rank rule."""
    s = sorted(values)
    if not s:
        raise ValueError("no values")
    k = min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))
    return float(s[k])


def _run_latency_case(scn: Scenario, case: Case, st: Settings,
                      progress: Progress) -> dict[str, Any]:
    active = [r for r in case.rows if r.build is not None]
    per: dict[str, list[tuple[float, float]]] = {r.key: [] for r in active}
    errors: dict[str, str] = {}
    for rep in range(st.repeats):
        for r in active:
            if r.key in errors:
                progress.advance()
                continue
            progress.update(f"{scn.id} {r.label} ({rep + 1}/{st.repeats})")
            try:
                _, _, half_trips = _sample(r, st.latency_ops)
                per[r.key].append((percentile(half_trips, 0.5), percentile(half_trips, 0.99)))
            except Exception as exc:
                errors[r.key] = f"{type(exc).__name__}: {exc}"
            progress.advance()
    rows = []
    for r in case.rows:
        row = _row_head(r)
        if r.key in errors:
            row["error"] = errors[r.key]
        elif r.build is not None and per[r.key]:
            p50s = [a for a, _ in per[r.key]]
            p99s = [b for _, b in per[r.key]]
            row.update({"value": min(p50s), "p50_ns": min(p50s), "p99_ns": min(p99s),
                        "median_p50_ns": _median(p50s), "median_p99_ns": _median(p99s),
                        "round_trips": st.latency_ops, "repeats": len(p50s)})
        rows.append(row)
    return _finish_case(case, rows, ["value", "p99_ns"])


# -- memory ------------------------------------------------------------------------------------


def _stream_class(key: str) -> Any:
    if key == "fe-c":
        return fe.CEventStream
    if key == "fe-py":
        return fe.PyEventStream
    return "queue.Queue"


def _run_memory_case(scn: Scenario, case: Case, st: Settings,
                     progress: Progress) -> dict[str, Any]:
    rows = []
    default_key = "fe-c" if fe.CEventStream is not None else "fe-py"
    for r in case.rows:
        row = _row_head(r)
        rows.append(row)
        if r.build is None:
            continue
        if not _memory.SUPPORTED:
            row["skipped"] = _memory.UNSUPPORTED_REASON
            progress.advance(2 if case.name == MEM_PER_STREAM else 1)
            continue
        progress.update(f"{scn.id} {case.name}: {r.label}")
        try:
            if case.name == MEM_PER_STREAM:
                p = peer_by_key(r.peer)
                fresh = _memory.stream_memory(p, st.memory_k)
                progress.advance()
                used = _memory.stream_memory(p, st.memory_k, used=True)
                row.update({"value": used["bytes"], "fresh": fresh["bytes"],
                            "used": used["bytes"], "used_untraced": used["untraced"],
                            "method": used["method"], "count": st.memory_k})
            elif case.name == MEM_MANAGED:
                cls = _stream_class(r.key)
                if cls == "queue.Queue":
                    per = _memory.many_streams(cls, st.memory_k, trace=True)["traced_mb"] \
                        * 1e6 / st.memory_k
                else:
                    per = _memory.managed_stream_memory(cls, st.memory_k)
                row.update({"value": per, "method": "tracemalloc", "count": st.memory_k})
            elif case.name == MEM_MANY:
                if not st.many_all and r.key != default_key:
                    row["skipped"] = f"{st.mode} run: the default core only"
                else:
                    got = _memory.many_streams(_stream_class(r.key), st.many,
                                               trace=st.trace_many)
                    mb = got["traced_mb"] if got["traced_mb"] is not None else got["rss_mb"]
                    row.update(got)
                    row["value"] = mb
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"
        progress.advance()
    metrics = {MEM_PER_STREAM: ["fresh", "used"], MEM_MANAGED: ["value"],
               MEM_MANY: ["value", "create_s"]}[case.name]
    out = _finish_case(case, rows, metrics)
    if case.name == MEM_MANY:
        out["streams"] = st.many
    return out


# -- shared ------------------------------------------------------------------------------------


def _median(vals: Sequence[float]) -> float:
    s = sorted(vals)
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


def _row_head(r: Row) -> dict[str, Any]:
    row: dict[str, Any] = {"key": r.key, "label": r.label, "peer": r.peer}
    if r.build is None:
        row["skipped"] = r.reason or "unavailable"
    return row


def _ratio(ref: dict[str, Any] | None, row: dict[str, Any], metric: str) -> float | None:
    """How many times better (lower) ``row`` is than ``ref`` on ``metric``; >1 = better."""
    if ref is None:
        return None
    a, b = ref.get(metric), row.get(metric)
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or b <= 0:
        return None
    return a / b


def _finish_case(case: Case, rows: list[dict[str, Any]], metrics: list[str]) -> dict[str, Any]:
    by_key = {r["key"]: r for r in rows}
    base = by_key.get(case.base)
    row_defs = {r.key: r for r in case.rows}
    for row in rows:
        fb_key = row_defs[row["key"]].fallback or case.fallback
        fb = by_key.get(fb_key) if fb_key else None
        row["vs_base"] = {m: _ratio(base, row, m) for m in metrics}
        row["vs_fallback"] = {m: _ratio(fb, row, m) for m in metrics}
    targets = [_evaluate(t, by_key) for t in case.targets]
    return {"name": case.name, "base": case.base, "base_label": case.base_label,
            "fallback": case.fallback, "metrics": metrics, "rows": rows, "targets": targets}


def _evaluate(t: Target, by_key: dict[str, dict[str, Any]]) -> dict[str, Any]:
    subject, ref = by_key.get(t.subject), by_key.get(t.ref)
    out: dict[str, Any] = {"text": t.text, "subject": t.subject, "reference": t.ref,
                           "metric": t.metric, "required": t.required, "measured": None,
                           "met": None}
    measured = _ratio(ref, subject, t.metric) if subject is not None else None
    if measured is None:
        missing = [k for k, r in ((t.subject, subject), (t.ref, ref))
                   if r is None or t.metric not in r]
        why = []
        for k in missing:
            r = by_key.get(k)
            why.append(f"{r['label'] if r else k}: "
                       f"{(r or {}).get('skipped') or (r or {}).get('error') or 'not measured'}")
        out["reason"] = "; ".join(why) or "not measured"
        return out
    out["measured"] = measured
    out["met"] = measured >= t.required * (1 - 1e-9)
    return out


def summarize_targets(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    items = []
    for res in results:
        for case in res["cases"]:
            for t in case["targets"]:
                items.append({"scenario": res["id"], "case": case["name"], **t})
    return {
        "met": sum(1 for t in items if t["met"] is True),
        "missed": sum(1 for t in items if t["met"] is False),
        "not_measured": sum(1 for t in items if t["met"] is None),
        "items": items,
    }
