"""P2: one producer thread -> one consumer thread, buffer 100 and 1000."""

import pytest

from fastevents.bench import _scenarios as sc
from fastevents.bench._peers import THREADS, peers_with

PEERS = peers_with(THREADS)
OPS = 50_000


@pytest.mark.parametrize("buffer", [100, 1000])
def test_p2_one_to_one(peer, buffer, run_body):
    run_body(lambda: sc.p2_one_to_one(peer, OPS, buffer=buffer), OPS)
