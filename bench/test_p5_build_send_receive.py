"""P5: build an event + send + receive, the per-token cost (fastevents factories vs a plain
dict stamped with ``datetime.now(timezone.utc)`` through ``queue.Queue``/``SimpleQueue``)."""

from fastevents.bench import _scenarios as sc
from fastevents.bench._peers import peer as peer_named

PEERS = [peer_named(k) for k in ("fe-c", "fe-py", "queue", "simplequeue")]
OPS = 100_000


def test_p5_build_send_receive(peer, run_body):
    run_body(lambda: sc.p5_build_send_receive(peer, OPS), OPS)
