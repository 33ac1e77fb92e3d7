"""P3: four producer threads -> one consumer thread, buffer 100."""

from fastevents.bench import _scenarios as sc
from fastevents.bench._peers import THREADS, peers_with

PEERS = peers_with(THREADS)
OPS = 40_000


def test_p3_four_to_one(peer, run_body):
    run_body(lambda: sc.p3_four_to_one(peer, OPS, buffer=100), OPS)
