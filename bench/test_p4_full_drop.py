"""P4: sending into a full stream under DROP: ``try_send``, and ``send`` + ``except
StreamFull``; the peers' ``put_nowait`` + ``except queue.Full``."""

import pytest

from fastevents.bench import _scenarios as sc
from fastevents.bench._peers import BOUNDED, THREADS, peers_with

OPS = 100_000
ROWS = [
    pytest.param(p, method, id=f"{p.key}-{method}",
                 marks=[] if p.available else [pytest.mark.skip(reason=f"{p.name}: {p.reason}")])
    for p in peers_with(THREADS) if p.has(BOUNDED)
    for method in (sc.P4_METHODS if p.fastevents else ("except",))
]


@pytest.mark.parametrize("full_peer,method", ROWS)
def test_p4_full_drop(full_peer, method, run_body):
    run_body(lambda: sc.p4_full_drop(full_peer, OPS, method=method), OPS)
