"""P9: producer task -> consumer task on one event loop, buffer 100."""

from fastevents.bench import _scenarios as sc
from fastevents.bench._peers import ASYNC, peers_with

PEERS = peers_with(ASYNC)
OPS = 50_000


def test_p9_async(peer, run_body):
    run_body(lambda: sc.p9_async(peer, OPS, buffer=100), OPS)
