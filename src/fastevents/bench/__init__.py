"""``fastevents-bench``: throughput, latency and memory of fastevents against the queues
people use today (``queue.Queue``, ``queue.SimpleQueue``, ``collections.deque``,
``asyncio.Queue``, janus, culsans), in one process, with a report table and JSON.

Run ``python -m fastevents.bench --quick`` (or the ``fastevents-bench`` script). The
scenario functions live in ``_scenarios`` (one per scenario, parametrized by peer and
size) and the matrix in ``_catalog``; the pytest-benchmark suites in the repository's
``bench/`` directory time those very functions.
"""

from __future__ import annotations

from ._cli import main

__all__ = ["main"]
