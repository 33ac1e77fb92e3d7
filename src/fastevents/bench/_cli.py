"""The command line: ``fastevents-bench [--quick] [--scenarios P1,P5] [--json F] [--plot F]``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import _catalog, _plot, _report, _runner
from ._peers import all_peers


def _scenario_list(text: str) -> list[_catalog.Scenario]:
    chosen = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            scn = _catalog.scenario(part)
        except KeyError:
            valid = ",".join(s.id for s in _catalog.SCENARIOS)
            raise argparse.ArgumentTypeError(
                f"unknown scenario {part!r} (choose from {valid})") from None
        if scn not in chosen:
            chosen.append(scn)
    if not chosen:
        raise argparse.ArgumentTypeError("no scenario given")
    # Run (and report) in catalogue order whatever order was asked for.
    return [s for s in _catalog.SCENARIOS if s in chosen]


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {n}")
    return n


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fastevents-bench",
        description="Benchmark fastevents against queue.Queue, queue.SimpleQueue, "
                    "collections.deque, asyncio.Queue, janus and culsans (when installed), "
                    "in one process. Ratios are speedups: >1 means fastevents is faster.",
    )
    p.add_argument("--quick", action="store_true",
                   help="a short run (well under 30 s): fewer and shorter samples")
    p.add_argument("--scenarios", type=_scenario_list, metavar="P1,P5",
                   help="run only these scenarios (see --list)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--plot", metavar="FILE.png",
                   help="also draw a bar chart (needs matplotlib: the 'plot' extra)")
    p.add_argument("--list", action="store_true", help="list scenarios and peers, then exit")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (one line per scenario on stderr instead)")
    p.add_argument("--repeat", type=_positive_int, metavar="N",
                   help="samples per row (default: 3 with --quick, 7 otherwise)")
    p.add_argument("--redis", nargs="?", const="", metavar="URL",
                   help="benchmark the Redis backend against raw redis-py instead (at URL, "
                        "or a private redis-server started from PATH)")
    p.add_argument("--sse", action="store_true",
                   help="benchmark fastevents.sse against sse-starlette over an asyncio.Queue "
                        "instead (real uvicorn servers on loopback)")
    # Tiny sizes, one sample: for the test-suite's smoke run of the CLI.
    p.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    return p


def _list() -> None:
    w = sys.stdout.write
    w("scenarios:\n")
    for s in _catalog.SCENARIOS:
        w(f"  {s.id:<4} {s.title}  [one op = {s.op}]\n")
        for case in s.cases():
            for t in case.targets:
                w(f"         target{(' [' + case.name + ']') if case.name else ''}: {t.text}\n")
    w("peers:\n")
    for p in all_peers():
        state = (p.version or "available") if p.available else f"skipped: {p.reason}"
        w(f"  {p.name:<22} {state}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """The ``fastevents-bench`` console script. Returns the exit status."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        sys.stderr.write("\nfastevents-bench: interrupted\n")
        return 130
    except BrokenPipeError:  # `fastevents-bench | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout
        return 1


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exc:  # --help, or a usage error (already printed)
        return int(exc.code or 0)
    if args.list:
        _list()
        return 0
    if args.redis is not None:
        from . import _redis

        return _redis.main(args.redis or None, quick=args.quick or args.smoke)
    if args.sse:
        from . import _sse

        return _sse.main(quick=args.quick, smoke=args.smoke)
    if args.plot:
        ok, why = _plot.available()
        if not ok:
            sys.stderr.write(f"fastevents-bench: error: {why}\n")
            return 3
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    settings = _runner.settings_for(mode, args.repeat)
    scenarios = args.scenarios or list(_catalog.SCENARIOS)
    from ._progress import Progress

    report = _runner.run(scenarios, settings,
                         progress_bar=Progress.wanted(disabled=args.no_progress))
    sys.stdout.write(_report.render_text(report))
    sys.stdout.flush()
    status = 0
    if args.json:
        try:
            _report.write_json(report, args.json)
        except OSError as exc:
            sys.stderr.write(f"fastevents-bench: error: cannot write {args.json}: {exc}\n")
            status = 1
    if args.plot:
        try:
            _plot.write_png(report, args.plot)
        except (OSError, ImportError) as exc:  # ImportError: a broken matplotlib install
            sys.stderr.write(f"fastevents-bench: error: cannot write {args.plot}: {exc}\n")
            status = 1
    return status
