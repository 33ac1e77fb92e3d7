"""P8: thread hand-off latency, ping-pong over two queues; the half round trip's p50 and
p99 go into ``extra_info`` (pytest-benchmark's own numbers are per batch of trips)."""

from fastevents.bench import _runner
from fastevents.bench import _scenarios as sc
from fastevents.bench._peers import THREADS, peers_with

PEERS = peers_with(THREADS)
TRIPS = 5_000


def test_p8_latency(peer, run_body, benchmark):
    half_trips = run_body(lambda: sc.p8_latency(peer, TRIPS), TRIPS)
    benchmark.extra_info["p50_ns"] = _runner.percentile(half_trips, 0.5)
    benchmark.extra_info["p99_ns"] = _runner.percentile(half_trips, 0.99)
