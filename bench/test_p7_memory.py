"""P7: memory per stream and per managed stream (in ``extra_info``), and the time to
create streams. The bytes come from ``fastevents.bench._memory`` (its docstring says
what tracemalloc can and cannot see)."""

import pytest

import fastevents as fe
from fastevents.bench import _memory
from fastevents.bench._peers import peer as peer_named

PEERS = [peer_named(k) for k in ("fe-c", "fe-py", "queue", "simplequeue", "asyncio",
                                 "janus", "culsans")]
COUNT = 2_000


def test_p7_stream_memory(peer, benchmark):
    fresh = _memory.stream_memory(peer, COUNT)
    used = _memory.stream_memory(peer, COUNT, used=True)
    benchmark.extra_info.update(fresh_bytes=fresh["bytes"], used_bytes=used["bytes"],
                                method=used["method"])
    make = peer.make
    benchmark.pedantic(lambda: [make(100, False) for _ in range(COUNT)], rounds=5,
                       warmup_rounds=1)


@pytest.mark.parametrize("twin", ["cython", "python"])
def test_p7_managed_streams(twin, benchmark):
    cls = fe.CEventStream if twin == "cython" else fe.PyEventStream
    if cls is None:
        pytest.skip("compiled core unavailable")
    benchmark.extra_info["bytes_per_managed_stream"] = _memory.managed_stream_memory(cls, COUNT)
    got = benchmark.pedantic(_memory.many_streams, args=(cls, 100_000), rounds=1,
                             iterations=1)
    benchmark.extra_info.update({k: v for k, v in got.items() if v is not None})
