"""The machine a run was made on: what a reader needs to compare two reports."""

from __future__ import annotations

import os
import platform
import sys
from datetime import datetime, timezone
from typing import Any

import fastevents as fe

from ._peers import all_peers


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo when present, else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Processor", "cpu model"):
                    if value.strip():
                        return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _usable_cores() -> int | None:
    affinity = getattr(os, "sched_getaffinity", None)  # Linux only
    if affinity is None:
        return None
    try:
        return len(affinity(0))
    except OSError:
        return None


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine_info() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": _usable_cores(),
        "load_average": _loadavg(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_build": sys.version.replace("\n", " "),
        "fastevents": fe.__version__,
        "fastevents_implementation": fe.IMPLEMENTATION,
        "peers": {
            p.name: (p.version or "available") if p.available else f"skipped: {p.reason}"
            for p in all_peers()
        },
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
