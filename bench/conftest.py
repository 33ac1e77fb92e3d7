"""pytest-benchmark suites over the scenario functions of ``fastevents.bench``.

Run with ``pytest bench/ --benchmark-only`` (needs the ``bench`` extra). Every suite calls
the functions of ``fastevents.bench._scenarios`` / ``_memory`` that the
``fastevents-bench`` command times: preparing a run (queues, threads, event loop) is
pytest-benchmark's untimed ``setup``; the timed target is the prepared body.

A test module names its peers in ``PEERS``; a test that takes a ``peer`` argument runs
once per peer, and an unavailable peer (janus or culsans not installed, no compiled core)
is a *skipped* test that says why.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import pytest

try:
    import fastevents  # noqa: F401
except ImportError:  # running from a checkout without an install: use the in-tree package
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "src"))

try:
    import pytest_benchmark  # noqa: F401

    HAVE_BENCHMARK = True
except ImportError:
    HAVE_BENCHMARK = False

    @pytest.fixture
    def benchmark() -> Any:
        pytest.skip("pytest-benchmark is not installed (pip install 'fastevents-stream[bench]')")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "peer" in metafunc.fixturenames:
        params = []
        for p in metafunc.module.PEERS:
            marks = [] if p.available else [pytest.mark.skip(reason=f"{p.name}: {p.reason}")]
            params.append(pytest.param(p, id=p.key, marks=marks))
        metafunc.parametrize("peer", params)


@pytest.fixture
def run_body(benchmark: Any) -> Callable[..., Any]:
    """``run_body(prepare, ops, rounds=5)``: time ``prepare()``'s body ``rounds`` times.

    ``ops`` (operations per body) goes into ``extra_info`` with the best ns per op, so a
    saved run (``--benchmark-autosave``) carries the per-event cost, not only per round.
    """

    def run(prepare: Callable[[], Any], ops: int, rounds: int = 5) -> Any:
        benchmark.extra_info["ops"] = ops
        result = benchmark.pedantic(lambda body: body(), setup=lambda: ((prepare(),), {}),
                                    rounds=rounds, warmup_rounds=1, iterations=1)
        stats = getattr(benchmark, "stats", None)
        if stats is not None and getattr(stats, "stats", None) is not None:
            benchmark.extra_info["ns_per_op_min"] = stats.stats.min * 1e9 / ops
        return result

    return run
