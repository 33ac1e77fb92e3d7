"""Render the report: a text table per scenario case, and the JSON file.

Ratios are *speedups*: ``reference / row`` on a lower-is-better number (ns, bytes), so
``> 1`` means the row is faster (or smaller) than the reference.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ._catalog import LATENCY, MEM_MANY, MEM_PER_STREAM, MEMORY, TIME


def _x(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def _si(v: float | None) -> str:
    if v is None:
        return "-"
    for div, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if v >= div:
            return f"{v / div:.2f}{suffix}"
    return f"{v:.0f}"


def _ns(v: float | None) -> str:
    return "-" if v is None else f"{v:,.1f}"


def _us(v: float | None) -> str:
    return "-" if v is None else f"{v / 1e3:,.1f}"


def _num(v: float | None, fmt: str = "{:.0f}") -> str:
    return "-" if v is None else fmt.format(v)


def _table(header: list[str], rows: list[list[str]], right: Sequence[int]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        out = []
        for i, c in enumerate(cells):
            out.append(c.rjust(widths[i]) if i in right else c.ljust(widths[i]))
        return "  " + "  ".join(out).rstrip()

    return [fmt(header), *(fmt(r) for r in rows)]


def _target_cells(key: str, targets: list[dict[str, Any]]) -> list[list[str]]:
    """[target, met?] lines for the row ``key`` (the targets' subject)."""
    cells = []
    for t in targets:
        if t["subject"] != key:
            continue
        if t["met"] is None:
            met = "n/a (not measured)"
        else:
            met = f"yes {t['measured']:.3g}x" if t["met"] else \
                f"NO {t['measured']:.3g}x (< {t['required']:.3g}x)"
        cells.append([t["text"], met])
    return cells


def _with_targets(body: list[list[str]], keys: list[str], targets: list[dict[str, Any]],
                  ncols: int) -> list[list[str]]:
    out = []
    for cells, key in zip(body, keys, strict=True):
        tc = _target_cells(key, targets)
        out.append(cells + (tc[0] if tc else ["", ""]))
        for extra in tc[1:]:
            out.append([""] * ncols + extra)
    return out


def _skipped_lines(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in rows:
        if "skipped" in r and "value" not in r:
            lines.append(f"  skipped: {r['label']}: {r['skipped']}")
        elif "error" in r:
            lines.append(f"  FAILED: {r['label']}: {r['error']}")
    return lines


def _time_case(case: dict[str, Any]) -> list[str]:
    rows = [r for r in case["rows"] if "value" in r]
    body = [[r["label"], _ns(r["ns_per_op"]), _ns(r["median_ns_per_op"]), _si(r["ops_per_s"]),
             _x(r["vs_base"]["value"]), _x(r["vs_fallback"]["value"])] for r in rows]
    header = ["peer", "ns/op", "median", "ops/s", f"vs {case['base_label']}", "vs fallback",
              "target", "met?"]
    return _table(header, _with_targets(body, [r["key"] for r in rows], case["targets"], 6),
                  right=(1, 2, 3, 4, 5))


def _latency_case(case: dict[str, Any]) -> list[str]:
    rows = [r for r in case["rows"] if "value" in r]
    body = [[r["label"], _us(r["p50_ns"]), _us(r["p99_ns"]),
             _x(r["vs_base"]["value"]), _x(r["vs_base"]["p99_ns"]),
             _x(r["vs_fallback"]["value"]), _x(r["vs_fallback"]["p99_ns"])] for r in rows]
    b = case["base_label"]
    header = ["peer", "p50 us", "p99 us", f"p50 vs {b}", f"p99 vs {b}", "p50 vs fallback",
              "p99 vs fallback", "target", "met?"]
    return _table(header, _with_targets(body, [r["key"] for r in rows], case["targets"], 7),
                  right=(1, 2, 3, 4, 5, 6))


def _memory_case(case: dict[str, Any]) -> list[str]:
    rows = [r for r in case["rows"] if "value" in r]
    b = case["base_label"]
    if case["name"] == MEM_PER_STREAM:
        body = [[r["label"], _num(r["fresh"]), _num(r["used"]), _x(r["vs_base"]["fresh"]),
                 _x(r["vs_base"]["used"]), _x(r["vs_fallback"]["used"]), r["method"]]
                for r in rows]
        header = ["queue", "fresh B", "used B", f"fresh vs {b}", f"used vs {b}",
                  "used vs fallback", "method", "target", "met?"]
        return _table(header, _with_targets(body, [r["key"] for r in rows],
                                            case["targets"], 7), right=(1, 2, 3, 4, 5))
    if case["name"] == MEM_MANY:
        body = [[r["label"], _num(r["create_s"], "{:.2f}"), _num(r["traced_mb"], "{:.1f}"),
                 _num(r["rss_mb"], "{:.1f}"), _x(r["vs_base"]["value"]),
                 _x(r["vs_base"]["create_s"])] for r in rows]
        header = ["how", "create s", "traced MB", "RSS MB", f"MB vs {b}", f"time vs {b}"]
        return _table(header, body, right=(1, 2, 3, 4, 5))
    body = [[r["label"], _num(r["value"]), _x(r["vs_base"]["value"]), r["method"]]
            for r in rows]
    return _table(["how", "B/stream", f"vs {b}", "method"], body, right=(1, 2))


def _case_title(res: dict[str, Any], case: dict[str, Any]) -> str:
    name = case["name"]
    if res["kind"] == MEMORY and name == MEM_MANY:
        name = f"{case.get('streams', 0):,} {name}"
    return f"  [{name}]" if name else ""


def render_text(report: dict[str, Any]) -> str:
    m = report["machine"]
    st = report["settings"]
    out = [
        "fastevents benchmarks",
        f"  machine: {m['cpu']}, {m['cores']} cores"
        + (f" ({m['usable_cores']} usable)" if m.get("usable_cores") else "")
        + (f", load {m['load_average']}" if m.get("load_average") else ""),
        f"  os: {m['os']}",
        f"  python: {m['python']} ({m['python_implementation']})",
        f"  fastevents: {m['fastevents']}, IMPLEMENTATION={m['fastevents_implementation']}",
        f"  mode: {st['mode']}, best of {st['repeats']} interleaved samples (median beside);"
        " ratios are speedups (>1 = faster / smaller)",
    ]
    skipped = [f"{k}: {v}" for k, v in m["peers"].items() if str(v).startswith("skipped")]
    for s in skipped:
        out.append(f"  peer {s}")
    for res in report["scenarios"]:
        out.append("")
        out.append(f"{res['id']}  {res['title']}   (one op = {res['op']}; {res['seconds']:.1f} s)")
        for case in res["cases"]:
            title = _case_title(res, case)
            if title:
                out.append(title)
            if res["kind"] == TIME:
                out.extend(_time_case(case))
            elif res["kind"] == LATENCY:
                out.extend(_latency_case(case))
            else:
                out.extend(_memory_case(case))
            out.extend(_skipped_lines(case["rows"]))
        if res["kind"] == MEMORY:
            out.append("  method: tracemalloc sees every allocation through Python's allocators:"
                       " all of the pure-Python queues, and the compiled stream object with its"
                       " embedded mutex and condvars.")
            out.append("  The compiled ring is plain malloc(), invisible to tracemalloc: measured"
                       " with glibc mallinfo2 (or computed, as the method says). 'used' = after"
                       " buffering 100 events at once, then draining.")
    t = report["targets"]
    out.append("")
    out.append(f"targets: {t['met']} met, {t['missed']} missed, {t['not_measured']} not measured"
               f"  (total {report['seconds']:.1f} s)")
    for item in t["items"]:
        if item["met"] is True:
            continue
        what = f"{item['scenario']} {item['case']}".strip()
        if item["met"] is False:
            out.append(f"  MISSED {what}: {item['text']}: {item['measured']:.3g}x"
                       f" (needs {item['required']:.3g}x)")
        else:
            out.append(f"  n/a    {what}: {item['text']}: {item.get('reason', '')}")
    return "\n".join(out) + "\n"


def write_json(report: dict[str, Any], path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, sort_keys=False)
        f.write("\n")
