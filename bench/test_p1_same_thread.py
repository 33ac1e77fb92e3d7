"""P1: send + receive in one thread, prebuilt event (every single-thread peer)."""

from fastevents.bench import _scenarios as sc
from fastevents.bench._peers import SINGLE, peers_with

PEERS = peers_with(SINGLE)
OPS = 100_000


def test_p1_same_thread(peer, run_body):
    run_body(lambda: sc.p1_same_thread(peer, OPS), OPS)
