"""Fork safety of the registries: a stream made inside another library's at-fork hook.

The forking thread holds the pure twin's registry lock (and the compiled core its C-level
locks) while every other ``os.register_at_fork`` hook runs; a hook that creates a stream
there must neither deadlock the fork nor leave the child with an unusable stream.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

CHILD = textwrap.dedent("""
    import os, sys
    made = []

    def hook():
        # Registered before fastevents is imported, so it runs while fastevents' own
        # before-fork hook holds its registry lock.
        made.append(CLS(4))

    os.register_at_fork(before=hook)
    import fastevents as fe
    CLS = {"python": fe.PyEventStream, "cython": fe.CEventStream}[sys.argv[1]]
    s = CLS(4)
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            for stream in (s, made[-1]):
                stream.send(fe.text_delta_event("x"))
                assert stream.receive(timeout=5).data == {"text": "x"}
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert status == 0, status
    made[-1].send(fe.text_delta_event("parent"))
    assert made[-1].receive(timeout=5).data == {"text": "parent"}
    print("ok", len(made))
""")


def test_a_stream_created_in_another_at_fork_hook(stream_cls: type) -> None:
    twin = "cython" if stream_cls.__name__ == "CEventStream" else "python"
    out = subprocess.run([sys.executable, "-c", CHILD, twin], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok 3"
