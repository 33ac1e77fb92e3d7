"""A bar chart of a report (matplotlib, the optional ``plot`` extra; imported lazily).

One panel per table: throughput in events/s (linear axis, so bar lengths compare
honestly), each bar annotated with its speedup over the table's reference; latency as
the p50 half round trip in microseconds (p99 in the annotation); memory in bytes per
used stream. fastevents' bars are coloured, the peers' grey.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any, NamedTuple

from ._catalog import LATENCY, MEM_PER_STREAM, MEMORY

INSTALL_HINT = "pip install 'fastevents-stream[plot]' (or: pip install matplotlib)"


def available() -> tuple[bool, str]:
    """(True, "") when matplotlib is installed, else (False, why).

    Asked before the runs, so it must not import matplotlib: that imports numpy, whose
    OpenBLAS starts a thread per extra CPU, and with it beside the timed threads P1 read
    56 ns instead of 46 on the 2-CPU VM (OPENBLAS_NUM_THREADS=1 gave 46 again). The
    import happens in write_png, after the runs."""
    try:
        found = importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError) as exc:
        return False, f"--plot needs matplotlib ({type(exc).__name__}: {exc}); {INSTALL_HINT}"
    if not found:
        return False, f"--plot needs matplotlib (not installed); {INSTALL_HINT}"
    return True, ""


class Panel(NamedTuple):
    title: str
    labels: list[str]
    values: list[float]
    notes: list[str]
    ours: list[bool]
    unit: str


def _ratio_note(r: Any) -> str:
    return "" if r is None else f"{r:.2f}x"


def panels(report: dict[str, Any]) -> list[Panel]:
    out = []
    for res in report["scenarios"]:
        for case in res["cases"]:
            if res["kind"] == MEMORY and case["name"] != MEM_PER_STREAM:
                continue
            rows = [r for r in case["rows"] if "value" in r]
            if not rows:
                continue
            if res["kind"] == MEMORY:
                values = [r["used"] for r in rows]
                notes = [_ratio_note(r["vs_base"]["used"]) for r in rows]
                unit = f"bytes per used stream (lower is better); x = vs {case['base_label']}"
            elif res["kind"] == LATENCY:
                values = [r["p50_ns"] / 1e3 for r in rows]
                notes = [f"p99 {r['p99_ns'] / 1e3:.1f} us" for r in rows]
                unit = "p50 half round trip, us (lower is better)"
            else:
                values = [r["ops_per_s"] for r in rows]
                notes = [_ratio_note(r["vs_base"]["value"]) for r in rows]
                unit = f"events/s (higher is better); x = vs {case['base_label']}"
            title = f"{res['id']} {res['title']}" + (f" [{case['name']}]" if case["name"] else "")
            ours = [r["key"].startswith("fe") or r["key"] == "fastevents" for r in rows]
            out.append(Panel(title, [r["label"] for r in rows], values, notes, ours, unit))
    return out


def write_png(report: dict[str, Any], path: str) -> None:
    # The object-oriented API with the Agg canvas: no pyplot, no global backend state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ps = panels(report)
    cols = 2
    nrows = max(1, math.ceil(len(ps) / cols))
    fig = Figure(figsize=(16, 3.0 * nrows))
    FigureCanvasAgg(fig)
    m = report["machine"]
    fig.suptitle(f"fastevents {m['fastevents']} ({m['fastevents_implementation']}) - "
                 f"{m['cpu']}, {m['cores']} cores, Python {m['python']} - "
                 f"{report['settings']['mode']} run", fontsize=11)
    for i, p in enumerate(ps):
        ax = fig.add_subplot(nrows, cols, i + 1)
        ypos = list(range(len(p.labels)))[::-1]
        ax.barh(ypos, p.values, color=["#d9480f" if o else "#868e96" for o in p.ours])
        top = max(p.values) if p.values else 1.0
        for y, v, note in zip(ypos, p.values, p.notes, strict=True):
            ax.text(v + top * 0.01, y, note, va="center", fontsize=7)
        ax.set_xlim(0, top * 1.18 if top > 0 else 1.0)
        ax.set_yticks(ypos)
        ax.set_yticklabels(p.labels, fontsize=7)
        ax.set_title(p.title, fontsize=9)
        ax.set_xlabel(p.unit, fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=100)
