"""Smoke tests of ``fastevents.bench`` (the ``fastevents-bench`` command).

Every scenario runs with tiny sizes through the same functions the command and the
pytest-benchmark suites use, for every peer that is installed; then the CLI runs end to
end (hidden ``--smoke`` sizes), its JSON is checked field by field, and so are ``--list``,
bad arguments and ``--plot``. No timing assertions: only that the numbers exist and are
sane. Needs nothing beyond the ``test`` extra: janus, culsans, matplotlib and
pytest-benchmark missing mean skipped peers (or skipped plot tests), not failures.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from typing import Any

import pytest

import fastevents as fe
from fastevents.bench import _catalog, _memory, _peers, _plot, _runner, main
from fastevents.bench import _scenarios as sc
from fastevents.bench._progress import Progress

N = 30


def _available(cap: str) -> list[Any]:
    return [pytest.param(p, id=p.key) for p in _peers.peers_with(cap) if p.available]


# -- the scenario functions, each peer, tiny sizes ----------------------------------------


@pytest.mark.parametrize("peer", _available(_peers.SINGLE))
def test_p1_same_thread(peer: _peers.Peer) -> None:
    body = sc.p1_same_thread(peer, N)
    ns, _ = body.timed()
    assert body.ops == N and ns > 0


@pytest.mark.parametrize("peer", _available(_peers.THREADS))
@pytest.mark.parametrize("buffer", [1, 100])
def test_p2_one_to_one(peer: _peers.Peer, buffer: int) -> None:
    body = sc.p2_one_to_one(peer, N, buffer=buffer)
    body()
    assert body.ops == N


@pytest.mark.parametrize("peer", _available(_peers.THREADS))
def test_p3_four_to_one(peer: _peers.Peer) -> None:
    body = sc.p3_four_to_one(peer, N, buffer=2)
    body()
    assert body.ops == (N // 4) * 4


@pytest.mark.parametrize(
    "peer,method",
    [pytest.param(p, m, id=f"{p.key}-{m}")
     for p in _peers.peers_with(_peers.BOUNDED)
     if p.available and p.has(_peers.THREADS)
     for m in (sc.P4_METHODS if p.fastevents else ("except",))],
)
def test_p4_full_drop(peer: _peers.Peer, method: str) -> None:
    body = sc.p4_full_drop(peer, N, method=method, buffer=3)
    body()
    assert body.ops == N


def test_p4_rejects_a_missing_try_put() -> None:
    with pytest.raises(ValueError, match="try_put"):
        sc.p4_full_drop(_peers.peer("queue"), N, method="try")
    with pytest.raises(ValueError, match="method"):
        sc.p4_full_drop(_peers.peer("fe-py"), N, method="nope")


@pytest.mark.parametrize("peer", [pytest.param(_peers.peer(k), id=k)
                                  for k in ("fe-c", "fe-py", "queue", "simplequeue")
                                  if _peers.peer(k).available])
def test_p5_build_send_receive(peer: _peers.Peer) -> None:
    sc.p5_build_send_receive(peer, N)()


@pytest.mark.parametrize("impl", sc.P6_IMPLS)
def test_p6_json(impl: str) -> None:
    sc.p6_to_json(impl, N)()
    sc.p6_from_json(impl, N)()
    with pytest.raises(ValueError):
        sc.p6_to_json("nope", N)


def test_p6_peers_agree_on_the_event() -> None:
    # The stdlib peer parses the same wire string to the same instant.
    from datetime import datetime

    ev = sc.sample_event()
    wire = ev.to_json()
    d = json.loads(wire)
    assert sc._fromisoformat(d["timestamp"]) == fe.Event.from_json(wire).timestamp
    assert isinstance(sc._fromisoformat(d["timestamp"]), datetime)


@pytest.mark.parametrize("peer", _available(_peers.THREADS))
def test_p8_latency(peer: _peers.Peer) -> None:
    half_trips = sc.p8_latency(peer, N, warmup=5)()
    assert len(half_trips) == N and all(t > 0 for t in half_trips)
    assert _runner.percentile(half_trips, 0.5) <= _runner.percentile(half_trips, 0.99)


@pytest.mark.parametrize("peer", _available(_peers.ASYNC))
def test_p9_async(peer: _peers.Peer) -> None:
    sc.p9_async(peer, N, buffer=2)()


@pytest.mark.parametrize("peer", [pytest.param(_peers.peer(k), id=k)
                                  for k in ("fe-c", "fe-py", "culsans", "janus", "asyncio")
                                  if _peers.peer(k).available])
def test_p10_thread_to_async(peer: _peers.Peer) -> None:
    sc.p10_thread_to_async(peer, N, buffer=2)()


def test_a_body_runs_once() -> None:
    body = sc.p1_same_thread(_peers.peer("fe-py"), 3)
    body()
    with pytest.raises(RuntimeError, match="once"):
        body()


def test_an_unavailable_peer_is_refused_with_its_reason() -> None:
    ghost = _peers.Peer("ghost", "ghost", frozenset({_peers.SINGLE}), None, "not installed")
    with pytest.raises(ValueError, match="not installed"):
        sc.p1_same_thread(ghost, 3)


# -- P7 memory ----------------------------------------------------------------------------

NEEDS_TRACEMALLOC = pytest.mark.skipif(not _memory.SUPPORTED, reason=_memory.UNSUPPORTED_REASON)


@NEEDS_TRACEMALLOC

@pytest.mark.parametrize("peer", [pytest.param(p, id=p.key) for p in _peers.all_peers()
                                  if p.available and p.key != "deque"])
def test_p7_stream_memory(peer: _peers.Peer) -> None:
    fresh = _memory.stream_memory(peer, 20)
    used = _memory.stream_memory(peer, 20, used=True)
    assert fresh["bytes"] > 0 and used["bytes"] >= used["traced"] > 0
    assert fresh["method"] and used["method"]


@NEEDS_TRACEMALLOC
@pytest.mark.skipif(fe.CEventStream is None, reason="compiled core unavailable")
def test_p7_counts_the_compiled_ring() -> None:
    used = _memory.stream_memory(_peers.peer("fe-c"), 50, used=True)
    # The ring (100 pointers) is outside tracemalloc's view; it must be counted somehow.
    assert used["untraced"] >= 0.5 * _memory.ring_bytes(100, 100)


def test_ring_bytes_follows_the_growth_rule() -> None:
    ptr = _memory._POINTER
    assert _memory.ring_bytes(0, 100) == 0
    assert _memory.ring_bytes(1, 100) == 8 * ptr
    assert _memory.ring_bytes(9, 100) == 16 * ptr
    assert _memory.ring_bytes(100, 100) == 100 * ptr


NO_C = pytest.mark.skipif(fe.CEventStream is None, reason="compiled core unavailable")


@NEEDS_TRACEMALLOC
@pytest.mark.parametrize("cls", [pytest.param(fe.PyEventStream, id="python"),
                                 pytest.param(fe.CEventStream, id="cython", marks=NO_C)])
def test_p7_managed_and_many(cls: Any) -> None:
    assert _memory.managed_stream_memory(cls, 20) > 0
    got = _memory.many_streams(cls, 50, trace=True)
    assert got["streams"] == 50 and got["create_s"] > 0 and got["traced_mb"] > 0
    assert _memory.many_streams("queue.Queue", 20)["create_s"] > 0


# -- the runner and the catalogue -------------------------------------------------------------


def test_catalogue_ids_and_targets() -> None:
    ids = [s.id for s in _catalog.SCENARIOS]
    assert ids[:10] == [f"P{i}" for i in range(1, 11)]  # then H1 (history cost)
    for s in _catalog.SCENARIOS:
        for case in s.cases():
            keys = {r.key for r in case.rows}
            assert case.base in keys, (s.id, case.name)
            for t in case.targets:
                assert t.subject in keys and t.ref in keys, (s.id, t)


def test_percentile() -> None:
    vals = list(range(1, 101))
    assert _runner.percentile(vals, 0.5) == 50
    assert _runner.percentile(vals, 0.99) == 99
    assert _runner.percentile([7], 0.99) == 7
    with pytest.raises(ValueError):
        _runner.percentile([], 0.5)


def test_progress_bar_draws_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    assert Progress.wanted(out) and not Progress.wanted(out, disabled=True)
    assert not Progress.wanted(io.StringIO())
    p = Progress(4, bar=True, stream=out)
    p.update("P1 row")
    p.advance(2)
    p.scenario_done("P1", "title", 0.5)
    p.close()
    text = out.getvalue()
    assert "\r" in text and "%" in text and "title ... done in 0.5 s" in text


# -- the command line ---------------------------------------------------------------------------

MACHINE_KEYS = {"cpu", "cores", "os", "python", "python_implementation", "fastevents",
                "fastevents_implementation", "peers"}


def _check_report(report: dict[str, Any], ids: list[str]) -> None:
    assert report["schema"] == _runner.SCHEMA
    assert MACHINE_KEYS <= set(report["machine"])
    assert report["machine"]["fastevents"] == fe.__version__
    assert report["machine"]["fastevents_implementation"] == fe.IMPLEMENTATION
    assert report["settings"]["mode"] == "smoke"
    assert [s["id"] for s in report["scenarios"]] == ids
    for res in report["scenarios"]:
        assert res["kind"] in (_catalog.TIME, _catalog.LATENCY, _catalog.MEMORY)
        assert res["cases"], res["id"]
        for case in res["cases"]:
            assert {"name", "base", "base_label", "rows", "targets", "metrics"} <= set(case)
            measured = [r for r in case["rows"] if "value" in r]
            for row in case["rows"]:
                assert {"key", "label", "vs_base", "vs_fallback"} <= set(row)
                assert "error" not in row, row
                assert ("value" in row) != ("skipped" in row), row
            if res["kind"] == _catalog.MEMORY and not _memory.SUPPORTED:
                continue
            if res["kind"] == _catalog.MEMORY and case["name"] == _catalog.MEM_MANY:
                assert measured  # the default core at least
                continue
            assert measured, (res["id"], case["name"])
            for row in measured:
                assert row["value"] > 0 and math.isfinite(row["value"])
                if res["kind"] == _catalog.TIME:
                    assert row["ns_per_op"] == row["value"] and row["ops_per_s"] > 0
                    assert row["samples_ns_per_op"] and row["ops"] > 0
                elif res["kind"] == _catalog.LATENCY:
                    assert 0 < row["p50_ns"] <= row["p99_ns"]
            base = next(r for r in case["rows"] if r["key"] == case["base"])
            if "value" in base:
                assert base["vs_base"][case["metrics"][0]] == pytest.approx(1.0)
            for t in case["targets"]:
                assert {"text", "required", "measured", "met"} <= set(t)
                assert t["met"] in (True, False, None)
                if t["met"] is None:
                    assert t["reason"]
    t = report["targets"]
    assert t["met"] + t["missed"] + t["not_measured"] == len(t["items"]) > 0


def test_cli_smoke_every_scenario_with_json(tmp_path: Any, capsys: Any) -> None:
    out = tmp_path / "bench.json"
    ids = [s.id for s in _catalog.SCENARIOS]
    assert main(["--quick", "--smoke", "--scenarios", ",".join(ids), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    _check_report(report, ids)
    captured = capsys.readouterr()
    for sid in ids:
        assert f"\n{sid}  " in captured.out
        assert f"{sid:<4} " in captured.err  # one progress line per scenario (no TTY)
    assert "IMPLEMENTATION=" in captured.out and "targets:" in captured.out
    assert "vs queue.Queue" in captured.out and "met?" in captured.out


def test_cli_scenario_selection_is_case_insensitive_and_ordered(tmp_path: Any,
                                                                capsys: Any) -> None:
    out = tmp_path / "r.json"
    assert main(["--smoke", "--no-progress", "--scenarios", "p6,P1", "--json", str(out)]) == 0
    assert [s["id"] for s in json.loads(out.read_text())["scenarios"]] == ["P1", "P6"]


def test_cli_list(capsys: Any) -> None:
    assert main(["--list"]) == 0
    text = capsys.readouterr().out
    for s in _catalog.SCENARIOS:
        assert s.id in text
    for p in _peers.all_peers():
        assert p.name in text


@pytest.mark.parametrize("argv", [
    ["--scenarios", "P11"],
    ["--scenarios", ","],
    ["--repeat", "0"],
    ["--repeat", "many"],
    ["--no-such-flag"],
])
def test_cli_bad_arguments(argv: list[str], capsys: Any) -> None:
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err


def test_cli_help(capsys: Any) -> None:
    assert main(["--help"]) == 0
    assert "--quick" in capsys.readouterr().out


def test_cli_plot_without_matplotlib(monkeypatch: Any, tmp_path: Any, capsys: Any) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    png = tmp_path / "b.png"
    assert main(["--smoke", "--scenarios", "P1", "--plot", str(png)]) != 0
    assert "matplotlib" in capsys.readouterr().err
    assert not png.exists()


def test_cli_plot_writes_a_png(tmp_path: Any) -> None:
    if not _plot.available()[0]:
        pytest.skip("matplotlib is not installed")
    png = tmp_path / "b.png"
    ids = "P1,P7,P8"
    assert main(["--smoke", "--no-progress", "--scenarios", ids, "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_python_dash_m_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "fastevents.bench", "--list"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "P10" in proc.stdout
