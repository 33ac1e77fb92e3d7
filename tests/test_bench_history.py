"""Smoke test of the H1 bench scenario (the cost of ``history=``; issue 10)."""

from __future__ import annotations

import json
from typing import Any

import fastevents as fe
from fastevents.bench import _catalog, main
from fastevents.bench import _history as h1


def test_h1_is_registered() -> None:
    assert _catalog.scenario("H1") is h1.SCENARIO
    cases = h1.SCENARIO.cases()
    names = [c.name for c in cases]
    assert names[-1] == "python"
    assert names[:-1] in ([], ["cython"])
    for case in cases:
        assert [r.key.split(":")[1] for r in case.rows] == ["h0", f"h{h1.HISTORY}"]


def test_h1_body_keeps_history_and_runs() -> None:
    body = h1.send_receive(fe.PyEventStream, h1.HISTORY, 30)
    ns, _ = body.timed()
    assert body.ops == 30 and ns > 0


def test_h1_cli_smoke(tmp_path: Any) -> None:
    out = tmp_path / "h1.json"
    assert main(["--smoke", "--no-progress", "--scenarios", "H1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    (scn,) = report["scenarios"]
    assert scn["id"] == "H1"
    python = next(c for c in scn["cases"] if c["name"] == "python")
    assert all(r.get("value") for r in python["rows"]), python["rows"]
