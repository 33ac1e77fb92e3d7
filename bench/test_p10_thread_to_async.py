"""P10: producer thread -> asyncio consumer (fastevents ``async for``; janus and culsans
``sync_q.put`` -> ``async_q.get``; the stdlib ``call_soon_threadsafe`` idiom)."""

from fastevents.bench import _scenarios as sc
from fastevents.bench._peers import peer as peer_named

PEERS = [peer_named(k) for k in ("fe-c", "fe-py", "culsans", "janus", "aiologic", "asyncio")]
OPS = 50_000


def test_p10_thread_to_async(peer, run_body):
    run_body(lambda: sc.p10_thread_to_async(peer, OPS, buffer=100), OPS)
