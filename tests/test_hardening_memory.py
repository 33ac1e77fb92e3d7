"""Issue 9, item 6: a ``MemoryError`` in ``receive_many`` must not lose events.

The result list is allocated before anything is taken, so when it cannot be allocated
every event stays in the stream. The failure is real: a subprocess fills a stream with a
million events, then caps its address space (``RLIMIT_AS``) a few MiB above what it uses,
so ``receive_many(10**6)`` cannot get the 8 MB its list needs. Both twins; Linux only
(``/proc`` and ``RLIMIT_AS``).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = r"""
import resource, sys
import fastevents as fe

cls = getattr(fe, sys.argv[1])
history = int(sys.argv[2])
N = 1_000_000
s = cls(N, history=history)
e = fe.text_delta_event("x")
batch = [e] * N
s.send_many(batch)
del batch
s.receive_many(3)  # three taken (and kept in history when asked) before the failure

def vm_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize")

soft, hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + 3 * 2**20, hard))
try:
    s.receive_many(N)
except MemoryError:
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    left, last = len(s), s.last_seq
    print("MemoryError", left, last)
    if left != N - 3 or last != N:
        sys.exit(3)
    # The stream still works: the events come out, numbered on from 4.
    assert s.receive_entry(timeout=0)[0] == 4
    assert len(s.receive_many(10)) == 10
    sys.exit(0)
resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
print("no MemoryError: the address-space cap did not bite")
sys.exit(5)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and RLIMIT_AS")
@pytest.mark.parametrize("history", [0, 5])
def test_receive_many_memory_error_takes_nothing(stream_cls: type, history: int) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, stream_cls.__name__, str(history)],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, (
        f"rc={out.returncode} (3: events lost; 5: no MemoryError)\n{out.stdout}\n{out.stderr}"
    )
