"""Two uvicorn workers, one Redis stream: producer on one, reader on the other, resume on either."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import pytest
from _harness import Worker, listening_socket
from httpx_sse import connect_sse

from _redis_fixtures import redis_server  # noqa: F401  (fixture)
from _redis_server import RedisServer
from fastevents.sse_client import iter_events

TIMEOUT = httpx.Timeout(20.0)


@pytest.fixture
def pair(redis_server: RedisServer) -> Iterator[tuple[Worker, Worker]]:  # noqa: F811
    env = {"FE_SSE_BACKEND": "redis", "FE_SSE_REDIS_URL": redis_server.url,
           "FE_SSE_NAMESPACE": f"sse{os.getpid()}-{uuid.uuid4().hex[:8]}"}
    socks = [listening_socket(), listening_socket()]
    workers = [Worker(s, env=env) for s in socks]
    try:
        for w in workers:
            w.start()
        yield workers[0], workers[1]
    finally:
        for w in workers:
            w.stop()
        for s in socks:
            s.close()


def _ids(entries: list[tuple[str, object]]) -> list[int]:
    return [int(i.rpartition(":")[2]) for i, _ in entries]


def test_producer_on_one_reader_on_the_other_resume_on_either(
        pair: tuple[Worker, Worker]) -> None:
    a, b = pair
    name = uuid.uuid4().hex[:12]
    iid = httpx.post(f"{a.url}/s/{name}/create", timeout=TIMEOUT).json()["instance_id"]
    httpx.post(f"{a.url}/s/{name}/produce", params={"n": 60, "interval": 0.005},
               timeout=TIMEOUT).raise_for_status()
    got: list[tuple[str, object]] = []
    # Read on B, drop after 15; resume on A, drop after 15 more; finish on B.
    for w, stop_after in ((b, 15), (a, 30), (b, None)):
        headers = {"Last-Event-ID": got[-1][0]} if got else {}
        with httpx.Client(timeout=TIMEOUT) as c, connect_sse(
                c, "GET", f"{w.url}/s/{name}/events", headers=headers) as src:
            assert src.response.status_code == 200
            for sse in src.iter_sse():
                got.append((sse.id, sse.data))
                if stop_after is not None and len(got) == stop_after:
                    break
    assert _ids(got) == list(range(1, 63))  # MessageStart, 60 deltas, MessageStop
    assert all(i.startswith(iid + ":") for i, _ in got)
    # The stream is finished: a resume from either worker is told so.
    for w in (a, b):
        r = httpx.get(f"{w.url}/s/{name}/events", headers={"Last-Event-ID": got[-1][0]},
                      timeout=TIMEOUT)
        assert r.status_code == 204


def test_reader_survives_a_worker_restart(pair: tuple[Worker, Worker]) -> None:
    a, b = pair
    name = uuid.uuid4().hex[:12]
    httpx.post(f"{a.url}/s/{name}/create", timeout=TIMEOUT).raise_for_status()
    httpx.post(f"{a.url}/s/{name}/produce", params={"n": 80, "interval": 0.01},
               timeout=TIMEOUT).raise_for_status()
    got = []
    for entry in iter_events(f"{b.url}/s/{name}/events"):
        got.append(entry)
        if len(got) == 20:
            b.kill()  # a crash, mid-stream; the same port comes back with a new process
            b.start()
    assert _ids(got) == list(range(1, 83))
    assert "".join(e.data.get("text", "") for _, e in got) == "".join(
        f"w{i} " for i in range(80))
