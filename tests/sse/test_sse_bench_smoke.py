"""``fastevents-bench --sse --smoke`` runs both servers and prints both rows."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_sse_bench_smoke() -> None:
    pytest.importorskip("sse_starlette", reason="sse-starlette (the bench's peer) not installed")
    out = subprocess.run([sys.executable, "-m", "fastevents.bench", "--sse", "--smoke"],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("events/s") == 2
    assert "fastevents EventStreamResponse" in out.stdout
    assert "sse-starlette over asyncio.Queue" in out.stdout
    assert "KiB" in out.stdout
