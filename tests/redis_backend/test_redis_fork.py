"""After os.fork() the child uses the streams it inherited (new connections, new wait loop)."""

from __future__ import annotations

import os
import sys
import warnings

import pytest

import fastevents as fe
from fastevents.redis import RedisStreamManager


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork")
def test_child_uses_inherited_stream(redis_manager: RedisStreamManager) -> None:
    s = redis_manager.create_stream("fork")
    s.send(fe.text_delta_event("parent"))
    assert s.receive(timeout=5).data == {"text": "parent"}  # the parent's loop is warm
    with warnings.catch_warnings():
        # 3.12+ warns that forking a threaded process may deadlock; the backend's
        # at-fork handler is what makes the child safe here.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: exit status says it all
        code = 1
        try:
            assert s.receive(timeout=10).data == {"text": "to child"}
            s.send(fe.text_delta_event("from child"))
            code = 0
        finally:
            os._exit(code)
    s.send(fe.text_delta_event("to child"))
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert s.receive(timeout=5).data == {"text": "from child"}


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork")
def test_fork_while_another_thread_holds_the_managers_lock(
    redis_manager: RedisStreamManager,
) -> None:
    """The manager's lock, held by a thread at the fork, is usable in the child."""
    import threading
    import time

    s = redis_manager.create_stream("forklock")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with redis_manager._lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    threading.Timer(0.3, release.set).start()  # the fork waits for it, then proceeds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            import signal

            signal.alarm(20)  # a child stuck on the lock dies instead of hanging the test
            assert redis_manager.get_stream("forklock").instance_id == s.instance_id
            code = 0
        finally:
            os._exit(code)
    holder.join(10)
    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        assert time.monotonic() < deadline, "the child hung"
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(status) == 0
