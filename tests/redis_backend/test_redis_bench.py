"""The Redis benchmark runs (smoke sizes) against the test server and prints its table."""

from __future__ import annotations

import pytest

from fastevents.bench import main


def test_bench_redis_smoke(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--redis", redis_url, "--smoke"]) == 0
    out = capsys.readouterr().out
    assert "raw redis-py" in out and "events/s" in out and "round trip" in out
