"""EventStreamResponse served by a real uvicorn worker, read over real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid

import httpx
import pytest
from _harness import Worker, wait_until
from _proxy import CuttableProxy
from httpx_sse import connect_sse

import fastevents as fe
from fastevents.sse import encode, format_id, parse_id
from fastevents.sse_client import aiter_events, iter_events

TIMEOUT = httpx.Timeout(20.0)


def new_stream(w: Worker, history: int | None = None) -> tuple[str, str]:
    name = uuid.uuid4().hex[:12]
    params = {} if history is None else {"history": history}
    r = httpx.post(f"{w.url}/s/{name}/create", params=params, timeout=TIMEOUT)
    r.raise_for_status()
    return name, r.json()["instance_id"]


def send(w: Worker, name: str, n: int, prefix: str = "t") -> None:
    httpx.post(f"{w.url}/s/{name}/send", params={"n": n, "prefix": prefix},
               timeout=TIMEOUT).raise_for_status()


def close(w: Worker, name: str) -> None:
    httpx.post(f"{w.url}/s/{name}/close", timeout=TIMEOUT).raise_for_status()


def info(w: Worker, name: str) -> dict[str, object]:
    return httpx.get(f"{w.url}/s/{name}/info", timeout=TIMEOUT).json()  # type: ignore[no-any-return]


def open_responses(w: Worker) -> int:
    return int(httpx.get(f"{w.url}/open", timeout=TIMEOUT).json()["open"])


def read_all(url: str, headers: dict[str, str] | None = None) -> list[tuple[str, str, dict]]:
    """Every message of a response that ends by itself: (id, event name, data)."""
    out = []
    with httpx.Client(timeout=TIMEOUT) as c, connect_sse(c, "GET", url,
                                                         headers=headers or {}) as src:
        assert src.response.status_code == 200
        for sse in src.iter_sse():
            out.append((sse.id, sse.event, json.loads(sse.data)))
    return out


def texts(messages: list[tuple[str, str, dict]]) -> list[str]:
    return [m[2]["data"]["text"] for m in messages]


# -- encode ---------------------------------------------------------------------------------


def test_encode_is_one_sse_message() -> None:
    ev = fe.text_delta_event("hi\nthere")
    assert encode(ev) == f"event: TextDelta\ndata: {ev.to_json()}\n\n".encode()
    want = f"id: abc:7\nevent: TextDelta\ndata: {ev.to_json()}\n\n".encode()
    assert encode(ev, id="abc:7") == want
    assert b"\n" not in ev.to_json().encode()  # the JSON escapes the newline
    assert encode(fe.usage_event(1, 2, 3)).startswith(b"event: Usage\n")


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b"])
def test_encode_refuses_ids_that_break_the_framing(bad: str) -> None:
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        encode(fe.text_delta_event("x"), id=bad)


def test_encode_refuses_what_is_not_a_valid_event() -> None:
    with pytest.raises(TypeError):
        encode(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encode(fe.text_delta_event("x"), id=5)  # type: ignore[arg-type]
    with pytest.raises(fe.InvalidEvent):
        encode(fe.Event(fe.EventType.TEXT_DELTA, {"x": 1}, timestamp=None))  # type: ignore[arg-type]


def test_ids_round_trip() -> None:
    assert parse_id(format_id("a:b", 12)) == ("a:b", 12)
    for bad in ["", "12", ":3", "abc:", "abc:-1", "abc:1.5", "abc: 3", "abc:x", "a:" + "9" * 21]:
        with pytest.raises(ValueError):
            parse_id(bad)


def test_response_refuses_bad_arguments() -> None:
    from fastevents.sse import EventStreamResponse

    s = fe.PyEventStream()
    with pytest.raises(TypeError):
        EventStreamResponse(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        EventStreamResponse(s, ping="5")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        EventStreamResponse(s, ping=0)
    with pytest.raises(TypeError):
        EventStreamResponse(s, last_event_id=5)  # type: ignore[arg-type]


# -- over HTTP --------------------------------------------------------------------------------


def test_headers_order_and_ids(worker: Worker) -> None:
    name, iid = new_stream(worker)
    send(worker, name, 5)
    close(worker, name)
    with httpx.stream("GET", f"{worker.url}/s/{name}/events", timeout=TIMEOUT) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["x-accel-buffering"] == "no"
        body = r.read().decode()
    messages = read_all(f"{worker.url}/s/{name}/events",
                        headers={"Last-Event-ID": format_id(iid, 0)})
    assert [m[0] for m in messages] == [f"{iid}:{i}" for i in range(1, 6)]
    assert {m[1] for m in messages} == {"TextDelta"}
    assert texts(messages) == [f"t{i} " for i in range(5)]
    # The first (live) read got the same five, then the response ended by itself.
    assert body.count("event: TextDelta\n") == 5
    assert f"id: {iid}:5\n" in body


def test_plain_starlette_route(worker: Worker) -> None:
    name, iid = new_stream(worker)
    send(worker, name, 3)
    close(worker, name)
    messages = read_all(f"{worker.url}/plain/{name}/events")
    assert [m[0] for m in messages] == [f"{iid}:{i}" for i in (1, 2, 3)]


def test_pings_while_idle(worker: Worker) -> None:
    name, iid = new_stream(worker)
    lines: list[str] = []
    with httpx.stream("GET", f"{worker.url}/s/{name}/events", params={"ping": 0.2},
                      timeout=TIMEOUT) as r:
        it = r.iter_lines()
        started = time.monotonic()
        while sum(1 for x in lines if x.startswith(":")) < 3:
            lines.append(next(it))
            assert time.monotonic() - started < 10
        send(worker, name, 1)
        while not lines[-1].startswith("data:"):
            lines.append(next(it))
    assert all(x.startswith(":") for x in lines[:3])
    assert f"id: {iid}:1" in lines


def test_resume_after_a_dropped_connection(worker: Worker) -> None:
    name, iid = new_stream(worker)
    send(worker, name, 5)
    got = []
    with httpx.Client(timeout=TIMEOUT) as c, connect_sse(c, "GET",
                                                         f"{worker.url}/s/{name}/events") as src:
        for sse in src.iter_sse():
            got.append(sse)
            if len(got) == 3:
                break  # drop the connection with events 4 and 5 already taken by the server
    send(worker, name, 5, prefix="u")
    assert wait_until(lambda: open_responses(worker) == 0)
    close(worker, name)
    rest = read_all(f"{worker.url}/s/{name}/events", headers={"Last-Event-ID": got[-1].id})
    assert [m[0] for m in rest] == [f"{iid}:{i}" for i in range(4, 11)]
    assert texts(rest) == ["t3 ", "t4 ", "u0 ", "u1 ", "u2 ", "u3 ", "u4 "]


def test_last_event_id_from_the_query(worker: Worker) -> None:
    name, iid = new_stream(worker)
    send(worker, name, 4)
    close(worker, name)
    assert len(read_all(f"{worker.url}/s/{name}/events")) == 4
    rest = read_all(f"{worker.url}/s/{name}/events?lastEventId={iid}:2")
    assert [m[0] for m in rest] == [f"{iid}:3", f"{iid}:4"]


def test_stops_receiving_within_a_second_of_a_disconnect(worker: Worker) -> None:
    name, _ = new_stream(worker)
    with httpx.stream("GET", f"{worker.url}/s/{name}/events", timeout=TIMEOUT) as r:
        assert r.status_code == 200
        assert wait_until(lambda: open_responses(worker) == 1)
    left = time.monotonic()
    # The contract says 1 s; 3 s here so that a loaded CI machine (the suite three times
    # on 2 cores) does not fail it. The real figure is printed: a few ms on an idle one.
    assert wait_until(lambda: open_responses(worker) == 0, 3.0, every=0.005)
    print(f"the response stopped {time.monotonic() - left:.3f} s after the client left")
    send(worker, name, 1)  # nobody may take it now
    time.sleep(0.5)
    assert info(worker, name)["len"] == 1


@pytest.mark.parametrize("bad", ["garbage", "abc:-1", ":4", "abc:", "x:1.0", "a:" + "9" * 30])
def test_unreadable_id_is_400(worker: Worker, bad: str) -> None:
    name, _ = new_stream(worker)
    send(worker, name, 2)
    r = httpx.get(f"{worker.url}/s/{name}/events", headers={"Last-Event-ID": bad},
                  timeout=TIMEOUT)
    assert r.status_code == 400
    assert "Last-Event-ID" in r.text
    assert info(worker, name)["len"] == 2  # nothing was consumed


def test_id_ahead_of_the_stream_is_400(worker: Worker) -> None:
    name, iid = new_stream(worker)
    send(worker, name, 2)
    r = httpx.get(f"{worker.url}/s/{name}/events", headers={"Last-Event-ID": f"{iid}:3"},
                  timeout=TIMEOUT)
    assert r.status_code == 400
    assert info(worker, name)["len"] == 2


def test_non_utf8_id_is_400(worker: Worker) -> None:
    name, _ = new_stream(worker)
    r = httpx.get(f"{worker.url}/s/{name}/events", headers={"Last-Event-ID": b"\xff\xfe:1"},
                  timeout=TIMEOUT)
    assert r.status_code == 400


def test_replaced_stream_resumes_from_its_start(worker: Worker) -> None:
    name, old = new_stream(worker)
    send(worker, name, 3, prefix="old")
    close(worker, name)
    first = read_all(f"{worker.url}/s/{name}/events")
    assert len(first) == 3
    again, new = new_stream_named(worker, name)
    assert again and new != old
    send(worker, name, 2, prefix="new")
    close(worker, name)
    rest = read_all(f"{worker.url}/s/{name}/events", headers={"Last-Event-ID": first[-1][0]})
    assert [m[0] for m in rest] == [f"{new}:1", f"{new}:2"]
    assert texts(rest) == ["new0 ", "new1 "]


def new_stream_named(w: Worker, name: str) -> tuple[bool, str]:
    r = httpx.post(f"{w.url}/s/{name}/create", timeout=TIMEOUT)
    r.raise_for_status()
    return r.json()["created"], r.json()["instance_id"]


def test_history_lost_is_one_error_message_then_the_end(worker: Worker) -> None:
    name, iid = new_stream(worker, history=3)
    send(worker, name, 10)
    close(worker, name)
    assert len(read_all(f"{worker.url}/s/{name}/events")) == 10
    rest = read_all(f"{worker.url}/s/{name}/events", headers={"Last-Event-ID": f"{iid}:2"})
    assert len(rest) == 1
    _, event, data = rest[0]
    assert event == "Error" and data["type"] == "Error"
    assert data["data"]["error_type"] == "history_lost"
    assert "history lost" in data["data"]["error"]
    # What history still keeps is replayable.
    kept = read_all(f"{worker.url}/s/{name}/events", headers={"Last-Event-ID": f"{iid}:7"})
    assert [m[0] for m in kept] == [f"{iid}:8", f"{iid}:9", f"{iid}:10"]
    with pytest.raises(fe.HistoryLost):
        list(iter_events(f"{worker.url}/s/{name}/events", last_event_id=f"{iid}:2"))


def test_finished_stream_is_204(worker: Worker) -> None:
    name, iid = new_stream(worker)
    send(worker, name, 2)
    close(worker, name)
    assert len(read_all(f"{worker.url}/s/{name}/events")) == 2
    for headers in ({"Last-Event-ID": f"{iid}:2"}, {}):
        r = httpx.get(f"{worker.url}/s/{name}/events", headers=headers, timeout=TIMEOUT)
        assert r.status_code == 204


def test_head_consumes_nothing(worker: Worker) -> None:
    name, _ = new_stream(worker)
    send(worker, name, 2)
    r = httpx.head(f"{worker.url}/plain/{name}/events", timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert info(worker, name)["len"] == 2


def test_a_newer_response_takes_over_the_stream(worker: Worker) -> None:
    name, iid = new_stream(worker)
    send(worker, name, 2)
    with httpx.Client(timeout=TIMEOUT) as c1, httpx.Client(timeout=TIMEOUT) as c2:
        with connect_sse(c1, "GET", f"{worker.url}/s/{name}/events") as old:
            it = old.iter_sse()
            assert next(it).id == f"{iid}:1" and next(it).id == f"{iid}:2"
            with connect_sse(c2, "GET", f"{worker.url}/s/{name}/events",
                             headers={"Last-Event-ID": f"{iid}:1"}) as new:
                # The old response ends cleanly before the new one reads anything.
                assert list(it) == []
                send(worker, name, 2, prefix="n")
                close(worker, name)
                assert [s.id for s in new.iter_sse()] == [f"{iid}:{i}" for i in (2, 3, 4)]


def test_client_helper_survives_cuts(worker: Worker) -> None:
    name, iid = new_stream(worker)
    host, port = worker.sock.getsockname()[:2]
    proxy = CuttableProxy((host, port))
    try:
        httpx.post(f"{worker.url}/s/{name}/produce", params={"n": 60, "interval": 0.01},
                   timeout=TIMEOUT).raise_for_status()
        got = []
        for entry in iter_events(f"{proxy.url}/s/{name}/events"):
            got.append(entry)
            if len(got) in (10, 30):
                assert proxy.cut() >= 1
    finally:
        proxy.close()
    assert [i for i, _ in got] == [f"{iid}:{n}" for n in range(1, 63)]
    assert got[0][1].type == fe.EventType.MESSAGE_START
    assert "".join(e.data.get("text", "") for _, e in got) == "".join(
        f"w{i} " for i in range(60))


def test_200_concurrent_clients(worker: Worker) -> None:
    names = [new_stream(worker) for _ in range(200)]

    async def main() -> list[list[str]]:
        limits = httpx.Limits(max_connections=400, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=TIMEOUT, limits=limits) as client:
            async def read(name: str) -> list[str]:
                return [e.data["text"] async for _, e in
                        aiter_events(f"{worker.url}/s/{name}/events", client=client)]

            async def feed(name: str) -> None:
                for i in range(4):
                    r = await client.post(f"{worker.url}/s/{name}/send",
                                          params={"n": 5, "prefix": f"{i}-"})
                    r.raise_for_status()
                (await client.post(f"{worker.url}/s/{name}/close")).raise_for_status()

            readers = [asyncio.ensure_future(read(n)) for n, _ in names]
            await asyncio.wait_for(asyncio.gather(*(feed(n) for n, _ in names)), 60)
            return await asyncio.wait_for(asyncio.gather(*readers), 60)

    results = asyncio.run(main())
    want = [f"{i}-{j} " for i in range(4) for j in range(5)]
    assert all(r == want for r in results)
    assert wait_until(lambda: open_responses(worker) == 0)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])  # Ctrl-C; kill / --reload's restart
def test_shutdown_ends_open_responses(fresh_worker: Worker, sig: str) -> None:
    w = fresh_worker
    name, iid = new_stream(w)
    send(w, name, 1)
    with httpx.Client(timeout=TIMEOUT) as c, connect_sse(c, "GET",
                                                         f"{w.url}/s/{name}/events") as src:
        it = src.iter_sse()
        assert next(it).id == f"{iid}:1"
        started = time.monotonic()
        os.kill(w.pid, getattr(signal, sig))
        assert list(it) == []  # the response ended cleanly (no reset)
    assert w.wait(10) is not None, "uvicorn did not shut down with an SSE response open"
    assert time.monotonic() - started < 10


def test_import_fastevents_imports_no_web_stack() -> None:
    import subprocess
    import sys

    code = ("import sys, fastevents; bad = [m for m in ('starlette', 'httpx', 'httpx_sse', "
            "'uvicorn', 'anyio') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_client_helper_refusals_and_single_connection(worker: Worker) -> None:
    name, iid = new_stream(worker)
    send(worker, name, 3)
    with pytest.raises(httpx.HTTPStatusError) as info_:
        list(iter_events(f"{worker.url}/s/{name}/events", last_event_id="nonsense"))
    assert info_.value.response.status_code == 400
    with pytest.raises(httpx.HTTPStatusError):
        list(iter_events(f"{worker.url}/s/missing/events"))  # 404 is final too
    close(worker, name)
    got = list(iter_events(f"{worker.url}/s/{name}/events", reconnect=False))
    assert [i for i, _ in got] == [f"{iid}:{n}" for n in (1, 2, 3)]
    assert list(iter_events(f"{worker.url}/s/{name}/events", last_event_id=f"{iid}:3")) == []


def test_a_producer_thread_neither_starves_the_worker_nor_outlives_a_disconnect(
        worker: Worker) -> None:
    """A sync producer in a thread keeps the stream full: the response must still yield.

    Neither a ready event nor uvicorn's ``send`` yields to the event loop; a response
    that never yields serves no other request and never learns that its client left.
    """
    import threading

    name, _ = new_stream(worker)
    latencies: list[float] = []
    done = threading.Event()

    def probe() -> None:
        while not done.is_set():
            t = time.monotonic()
            httpx.get(f"{worker.url}/health", timeout=TIMEOUT).raise_for_status()
            latencies.append(time.monotonic() - t)
            time.sleep(0.05)

    prober = threading.Thread(target=probe)
    received = 0
    with httpx.stream("GET", f"{worker.url}/s/{name}/events", timeout=TIMEOUT) as r:
        httpx.post(f"{worker.url}/s/{name}/flood", params={"seconds": 20},
                   timeout=TIMEOUT).raise_for_status()
        prober.start()
        started = time.monotonic()
        for chunk in r.iter_raw():
            received += chunk.count(b"\n\n")
            if time.monotonic() - started > 3.0:
                break  # disconnect mid-flood
    left = time.monotonic()
    done.set()
    prober.join(30)
    assert received > 1000, "the flood never reached the client"
    # Real figure: tens of ms; without a turn of the loop now and then, the whole flood.
    assert latencies and max(latencies) < 1.5, f"/health took {max(latencies or [0]):.2f} s"
    # The contract's bound is 1 s; 3 s here for a loaded CI machine (a real one: ~20 ms).
    assert wait_until(lambda: open_responses(worker) == 0, 3.0), "still receiving"
    assert wait_until(lambda: info(worker, name)["len"] == 1000, 3.0), (
        "nobody may receive once the client is gone: the buffer must fill up")
    noticed = time.monotonic() - left
    print(f"/health at most {max(latencies):.3f} s while streaming; disconnect noticed and "
          f"receiving stopped {noticed:.3f} s after the client left")


def test_resume_after_a_disconnect_mid_flood_skips_nothing(worker: Worker) -> None:
    """Events taken from the stream but lost with the connection (socket buffers, in
    flight) come back on the resume: ids contiguous from the client's last one to the end."""
    name, iid = new_stream(worker, history=1_000_000)
    httpx.post(f"{worker.url}/s/{name}/flood", params={"seconds": 1.5},
               timeout=TIMEOUT).raise_for_status()
    buf = b""
    with httpx.stream("GET", f"{worker.url}/s/{name}/events", timeout=TIMEOUT) as r:
        for chunk in r.iter_raw():
            buf = (buf + chunk)[-4096:]
            if b"id: " in buf and len(buf) >= 4096:
                break  # mid-flood, with plenty in the socket buffers
    complete = buf[:buf.rfind(b"\n\n")]
    last = complete[complete.rfind(b"id: ") + 4:].split(b"\n", 1)[0].decode()
    instance, seq = parse_id(last)
    assert instance == iid
    assert wait_until(lambda: info(worker, name)["closed"], 30)  # the flood is over
    ids = [parse_id(i)[1] for i, _ in iter_events(f"{worker.url}/s/{name}/events",
                                                   last_event_id=last)]
    total = info(worker, name)["last_seq"]
    assert ids == list(range(seq + 1, int(total) + 1))  # type: ignore[call-overload]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_client_helper_under_any_anyio_backend(worker: Worker, backend: str) -> None:
    pytest.importorskip(backend)
    import anyio

    name, iid = new_stream(worker)
    send(worker, name, 3)
    close(worker, name)

    async def main() -> list[str]:
        with anyio.fail_after(30):
            return [i async for i, _ in aiter_events(f"{worker.url}/s/{name}/events")]

    assert anyio.run(main, backend=backend) == [f"{iid}:{n}" for n in (1, 2, 3)]
