"""Faults on a real redis-server: killed and restarted, unreachable, Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis

import fastevents as fe
from _bg import Bg
from _redis_server import RedisServer, free_port
from fastevents.redis import RedisStreamManager, RedisUnavailable


def _texts(events: list[fe.Event]) -> list[str]:
    return [e.data["text"] for e in events]


def test_killed_and_restarted_mid_stream(own_redis_server: RedisServer) -> None:
    server = own_redis_server
    with RedisStreamManager(server.url, buffer_size=100, socket_timeout=1.0, history=5) as m:
        s = m.create_stream("persist")
        s.send_many([fe.text_delta_event(str(i)) for i in range(50)])
        assert _texts(s.receive_many(20)) == [str(i) for i in range(20)]
        blocked = Bg(m.create_stream("empty").receive, timeout=30)
        time.sleep(0.2)
        server.kill()
        # Everything fails fast and clearly while Redis is down ...
        t0 = time.monotonic()
        with pytest.raises(RedisUnavailable) as info:
            s.send(fe.text_delta_event("lost?"))
        assert time.monotonic() - t0 < 1.0 + 1
        err = info.value
        assert isinstance(err, ConnectionError) and isinstance(err, fe.StreamError)
        assert isinstance(err.__cause__, redis.exceptions.RedisError)
        assert err.stream_id == "persist"
        with pytest.raises(RedisUnavailable):
            s.receive(timeout=5)
        with pytest.raises(RedisUnavailable):
            m.list_streams()
        # ... including a receiver that was blocked when Redis went away.
        assert isinstance(blocked.error(5), RedisUnavailable)

        async def areceive() -> fe.Event:
            return await s.areceive(timeout=5)

        with pytest.raises(RedisUnavailable):
            asyncio.run(areceive())
        server.start()
        # The same objects work again, and nothing Redis had accepted is gone.
        deadline = time.monotonic() + 20
        while True:
            try:
                got = s.receive_many(100, timeout=5)
                break
            except RedisUnavailable:  # still loading its append-only file
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert _texts(got) == [str(i) for i in range(20, 50)]
        s.send(fe.text_delta_event("after"))
        assert s.receive_entry(timeout=5)[0] == 51
        assert [seq for seq, _ in s.replay(46)] == [47, 48, 49, 50, 51]
        assert m.list_streams() == ["persist", "empty"]
        assert asyncio.run(_send_receive(s)).data == {"text": "async"}


async def _send_receive(s: fe.Stream) -> fe.Event:
    waiter = asyncio.ensure_future(s.areceive(timeout=10))
    await asyncio.sleep(0.1)
    await s.asend(fe.text_delta_event("async"))
    return await waiter


def test_unreachable_raises_within_socket_timeout() -> None:
    port = free_port()  # nobody listens there
    with RedisStreamManager(f"redis://127.0.0.1:{port}/0", socket_timeout=0.5) as m:
        t0 = time.monotonic()
        with pytest.raises(RedisUnavailable) as info:
            m.get_or_create("x")
        assert time.monotonic() - t0 < 0.5 + 1
        assert isinstance(info.value.__cause__, redis.exceptions.ConnectionError)
        assert fe.is_stream_closed(info.value) is False


_CHILD = """
import os, sys, time, threading
import fastevents as fe
from fastevents.redis import RedisStreamManager

url, ns, what = sys.argv[1], sys.argv[2], sys.argv[3]
with RedisStreamManager(url, buffer_size=1, namespace=ns) as m:
    s = m.get_or_create("ctrl-c")[0]
    if what == "send":
        s.send(fe.text_delta_event("fill"))
    print("ready", flush=True)
    try:
        if what == "send":
            s.send(fe.text_delta_event("blocked"))
        else:
            s.receive()
    except KeyboardInterrupt:
        print("interrupted", time.time(), flush=True)
    # The same stream still works after the interrupt.
    if what == "send":
        assert s.receive(timeout=5).data == {"text": "fill"}
        s.send(fe.text_delta_event("again"), timeout=5)
    else:
        s.send(fe.text_delta_event("again"), timeout=5)
        assert s.receive(timeout=5).data == {"text": "again"}
    print("ok", flush=True)
"""


@pytest.mark.parametrize("what", ["receive", "send"])
def test_ctrl_c_in_blocking_call(redis_url: str, tmp_path: Path, what: str) -> None:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(_CHILD))
    ns = f"ctrlc{os.getpid()}{what}"
    proc = subprocess.Popen(
        [sys.executable, str(script), redis_url, ns, what],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.5)  # well inside the blocking call
        sent_at = time.time()
        proc.send_signal(signal.SIGINT)
        line = proc.stdout.readline().split()
        assert line and line[0] == "interrupted", proc.stderr.read() if proc.stderr else ""
        assert float(line[1]) - sent_at < 0.5
        out, err = proc.communicate(timeout=30)
        assert out.strip() == "ok", err
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ctrl_c_during_a_receive_script_restores(redis_manager: RedisStreamManager) -> None:
    """The restore path itself: what a token's receive took goes back, in order."""
    s = redis_manager.create_stream("restore")
    s.send_many([fe.text_delta_event(str(i)) for i in range(3)])
    scripts = s._backend.scripts
    token_key = s._keys.token("t1")
    keys = [*s._klist, token_key]
    code, _, items = scripts.receive(keys=keys, args=[2])
    assert code == 0 and len(items) == 2
    # The caller "never saw" the reply: restore, as the KeyboardInterrupt path does.
    assert scripts.restore(keys=keys, args=[]) == 2
    assert scripts.restore(keys=keys, args=[]) == 0  # once only
    # A receive with the same token reaching Redis late takes nothing.
    assert scripts.receive(keys=keys, args=[2])[0] == 4
    seqs = [s.receive_entry()[0] for _ in range(3)]
    assert seqs == [1, 2, 3]
