"""Two uvicorn workers, one Redis stream: producer on one, reader on the other, resume on either."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _harness import Worker, serving, wait_until
from httpx_sse import connect_sse

from _redis_fixtures import own_redis_server, redis_server  # noqa: F401  (fixtures)
from _redis_server import RedisServer
from fastevents.sse_client import iter_events

TIMEOUT = httpx.Timeout(20.0)


@pytest.fixture
def pair(redis_server: RedisServer) -> Iterator[tuple[Worker, Worker]]:  # noqa: F811
    env = _redis_env(redis_server, "sse")
    with serving(env) as a, serving(env) as b:
        yield a, b


def _redis_env(redis_server: RedisServer, prefix: str) -> dict[str, str]:  # noqa: F811
    """Workers on one Redis, in a namespace of their own (tests never see each other's)."""
    return {"FE_SSE_BACKEND": "redis", "FE_SSE_REDIS_URL": redis_server.url,
            "FE_SSE_NAMESPACE": f"{prefix}{os.getpid()}-{uuid.uuid4().hex[:8]}"}


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


def test_page_survives_a_worker_restart_on_redis(
        browser: Any, redis_server: RedisServer) -> None:  # noqa: F811
    """The worker holding the page's connection crashes and comes back; Redis kept the stream."""
    from selenium.webdriver.common.by import By

    env = _redis_env(redis_server, "browser")
    name = uuid.uuid4().hex[:12]
    n = 150
    with serving(env) as producer, serving(env) as server:
        httpx.post(f"{producer.url}/s/{name}/create", timeout=20).raise_for_status()
        browser.get(f"{server.url}/page/{name}")
        out = browser.find_element(By.ID, "out")
        assert wait_until(lambda: browser.find_element(By.ID, "opens").text == "1", 20)
        httpx.post(f"{producer.url}/s/{name}/produce", params={"n": n, "interval": 0.04},
                   timeout=20).raise_for_status()
        assert wait_until(lambda: len(out.text.split()) >= 20, 30), out.text
        server.kill()  # the page's worker crashes mid-answer ...
        server.start()  # ... and a new process serves the same port
        assert wait_until(lambda: browser.title == "done", 60), out.text
        text = browser.execute_script("return document.getElementById('out').textContent")
        opens = int(browser.find_element(By.ID, "opens").text)
    assert text == "".join(f"w{i} " for i in range(n))
    assert opens >= 2


def test_redis_outage_keeps_browsers_retrying_then_resumes(
        own_redis_server: RedisServer) -> None:  # noqa: F811
    """Redis goes away mid-stream and comes back: the page must come back with it.

    Any status but 200 makes an ``EventSource`` give up for good, so while Redis is
    unreachable the response ends cleanly with a ``retry:`` hint (open ones) or is a 200
    with only that hint (new ones); once Redis is back the resume loses nothing.
    """
    from fastevents.redis import RedisStreamManager

    env = _redis_env(own_redis_server, "outage")
    name = uuid.uuid4().hex[:12]
    with serving(env) as w, RedisStreamManager(own_redis_server.url,
                                               namespace=env["FE_SSE_NAMESPACE"]) as m:
        iid = httpx.post(f"{w.url}/s/{name}/create", timeout=TIMEOUT).json()["instance_id"]
        held = m.get_stream(name)
        httpx.post(f"{w.url}/s/{name}/send", params={"n": 3},
                   timeout=TIMEOUT).raise_for_status()
        url = f"{w.url}/s/{name}/events"
        with httpx.Client(timeout=TIMEOUT) as c, connect_sse(c, "GET", url) as src:
            it = src.iter_sse()
            got = [next(it) for _ in range(3)]
            own_redis_server.kill()
            rest = list(it)  # ends cleanly (a reset would raise here)
        assert [s.id for s in got] == [f"{iid}:{i}" for i in (1, 2, 3)]
        assert [s.data for s in rest] == [""] and rest[0].retry is not None
        r = httpx.get(url, headers={"Last-Event-ID": got[-1].id}, timeout=TIMEOUT)
        assert r.status_code == 200, r.text  # not 500: EventSource keeps trying
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.text.startswith("retry: ") and "data:" not in r.text
        # The same from the response itself, for an app that holds the stream object.
        assert _asgi_get(held, {"last-event-id": got[-1].id}) == (200, b"retry: 2000\n\n")
        # The Python client does not take "retry later" for the end of the stream.
        with pytest.raises(httpx.RemoteProtocolError, match="retry later"):
            list(iter_events(url, last_event_id=got[-1].id, retries=1))
        own_redis_server.start()
        assert wait_until(lambda: httpx.post(f"{w.url}/s/{name}/send", params={"n": 2},
                                             timeout=TIMEOUT).status_code == 200, 20)
        httpx.post(f"{w.url}/s/{name}/close", timeout=TIMEOUT).raise_for_status()
        resumed = list(iter_events(url, last_event_id=got[-1].id))
    assert [i for i, _ in resumed] == [f"{iid}:{i}" for i in (4, 5)]


def _asgi_get(stream: object, headers: dict[str, str]) -> tuple[int, bytes]:
    """Status and body of ``EventStreamResponse(stream)`` called as an ASGI app."""
    import anyio

    from fastevents.sse import EventStreamResponse

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET",
             "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}
    anyio.run(EventStreamResponse(stream), scope, receive, send)  # type: ignore[arg-type]
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_two_readers_on_two_workers_each_get_every_event(pair: tuple[Worker, Worker]) -> None:
    """A second reader of one stream on another worker: a stale connection (a network cut
    its worker has not noticed) or a second tab. The takeover of older responses works
    only within a process; across workers each response fills the gaps that the other
    reader left from history, so neither skips an event."""
    import threading

    a, b = pair
    name = uuid.uuid4().hex[:12]
    iid = httpx.post(f"{a.url}/s/{name}/create", timeout=TIMEOUT).json()["instance_id"]
    got: dict[str, list[str]] = {"a": [], "b": []}
    ready = threading.Barrier(3)

    def read(w: Worker, key: str) -> None:
        # Both resume from the start (as after a reconnect; a live start is "from the
        # next event this response receives", so it has no gap to fill before it).
        with httpx.Client(timeout=TIMEOUT) as c, connect_sse(
                c, "GET", f"{w.url}/s/{name}/events", params={"ping": 0.1},
                headers={"Last-Event-ID": f"{iid}:0"}) as src:
            lines = src.response.iter_lines()
            assert next(lines) == ": ping"  # connected and waiting
            ready.wait(20)
            for line in lines:
                if line.startswith("id: "):
                    got[key].append(line[4:])

    readers = [threading.Thread(target=read, args=(w, k)) for w, k in ((a, "a"), (b, "b"))]
    for t in readers:
        t.start()
    ready.wait(20)
    for _ in range(4):
        httpx.post(f"{a.url}/s/{name}/send", params={"n": 10},
                   timeout=TIMEOUT).raise_for_status()
        time.sleep(0.05)
    httpx.post(f"{a.url}/s/{name}/close", timeout=TIMEOUT).raise_for_status()
    for t in readers:
        t.join(30)
    want = [f"{iid}:{i}" for i in range(1, 41)]
    assert got["a"] == want and got["b"] == want, got
