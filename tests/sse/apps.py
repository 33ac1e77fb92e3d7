"""The app the SSE tests serve with uvicorn (imported by ``_serve.py`` in the worker).

Streams live in a manager chosen by ``FE_SSE_BACKEND`` (``memory``, or ``redis`` with
``FE_SSE_REDIS_URL``), with ``FE_SSE_HISTORY`` events of history. The control routes let a
test create, feed and close streams in the worker; ``/s/{name}/events`` is the SSE route
under test (a FastAPI route), ``/plain/{name}/events`` the same as a plain Starlette route.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response

import fastevents as fe
from fastevents import sse
from fastevents.sse import EventStreamResponse

BACKEND = os.environ.get("FE_SSE_BACKEND", "memory")
HISTORY = int(os.environ.get("FE_SSE_HISTORY", "1000"))


TWIN = os.environ.get("FE_SSE_TWIN", "")


def _manager(history: int) -> Any:
    if BACKEND == "redis":
        from fastevents.redis import RedisStreamManager

        return RedisStreamManager(os.environ["FE_SSE_REDIS_URL"], buffer_size=1000,
                                  history=history,
                                  namespace=os.environ.get("FE_SSE_NAMESPACE", "fe-sse"))
    cls = {"python": fe.PyEventStream, "cython": fe.CEventStream}.get(TWIN) or fe.EventStream
    return fe.StreamManager(buffer_size=1000, history=history, stream_class=cls)


# One manager per history size (a test asks for a small one); a name lives in one.
managers: dict[int, Any] = {HISTORY: _manager(HISTORY)}
homes: dict[str, int] = {}
app = FastAPI()
_tasks: set[asyncio.Task[None]] = set()


def _stream(name: str) -> fe.Stream:
    try:
        return managers[homes.get(name, HISTORY)].get_stream(name)  # type: ignore[no-any-return]
    except fe.StreamNotFound:
        raise HTTPException(404, f"no stream {name!r}") from None


@app.get("/health")
async def health() -> dict[str, str]:
    return {"ok": "yes", "implementation": fe.IMPLEMENTATION}


@app.post("/s/{name}/create")
async def create(name: str, history: int = HISTORY) -> dict[str, Any]:
    """Create the stream, or replace a closed one (a new instance under the same name)."""
    if history not in managers:
        managers[history] = _manager(history)
    manager = managers[history]
    homes[name] = history
    stream, created = manager.get_or_create(name)  # replaces a closed stream
    return {"created": created, "instance_id": stream.instance_id}


@app.post("/s/{name}/send")
async def send(name: str, n: int = 1, prefix: str = "t") -> dict[str, int]:
    stream = _stream(name)
    for i in range(n):
        await stream.asend(fe.text_delta_event(f"{prefix}{i} "))
    return {"last_seq": stream.last_seq}


@app.post("/s/{name}/produce")
async def produce(name: str, n: int = 100, interval: float = 0.02) -> dict[str, bool]:
    """A producer task: MessageStart, ``n`` TextDelta "w<i> ", MessageStop, close."""
    stream = _stream(name)

    async def run() -> None:
        await stream.asend(fe.message_start_event(name))
        for i in range(n):
            await stream.asend(fe.text_delta_event(f"w{i} "))
            await asyncio.sleep(interval)
        await stream.asend(fe.message_stop_event(name, "end_turn"))
        stream.close()

    task = asyncio.get_running_loop().create_task(run())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return {"started": True}


@app.post("/s/{name}/close")
async def close(name: str) -> dict[str, bool]:
    _stream(name).close()
    return {"closed": True}


@app.get("/s/{name}/info")
async def info(name: str) -> dict[str, Any]:
    stream = _stream(name)
    return {"len": len(stream), "last_seq": stream.last_seq, "closed": stream.closed,
            "instance_id": stream.instance_id}


@app.get("/s/{name}/events")
async def events(name: str, request: Request, ping: float = 15.0) -> Response:
    try:
        stream = _stream(name)
    except ConnectionError:  # Redis unreachable: what the README recommends
        return Response(b"retry: 2000\n\n", media_type="text/event-stream")
    return EventStreamResponse(stream, ping=ping,
                               last_event_id=request.query_params.get("lastEventId"))


async def plain_events(request: Request) -> Response:
    return EventStreamResponse(_stream(request.path_params["name"]))


app.add_route("/plain/{name}/events", plain_events)


@app.get("/open")
async def open_responses() -> dict[str, int]:
    """How many SSE responses are open in this worker (one event loop)."""
    return {"open": len(sse._local.open)}


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>waiting</title></head>
<body><pre id="out"></pre><p id="opens">0</p>
<script>
const out = document.getElementById("out"), opens = document.getElementById("opens");
const es = new EventSource("/s/%(name)s/events");
es.onopen = () => { opens.textContent = String(Number(opens.textContent) + 1); };
es.addEventListener("TextDelta", (e) => { out.textContent += JSON.parse(e.data).data.text; });
es.addEventListener("MessageStop", () => { es.close(); document.title = "done"; });
</script></body></html>
"""


@app.get("/page/{name}")
async def page(name: str) -> HTMLResponse:
    return HTMLResponse(PAGE % {"name": name})


@app.post("/s/{name}/flood")
async def flood(name: str, seconds: float = 3.0) -> dict[str, bool]:
    """A producer *thread* (a sync SDK pumped from a thread) sending as fast as it can."""
    import threading
    import time

    stream = _stream(name)
    event = fe.text_delta_event("x")

    def run() -> None:
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                stream.send_many([event] * 50, timeout=5)
        except (fe.StreamClosed, TimeoutError):
            pass
        finally:
            stream.close()

    threading.Thread(target=run, daemon=True).start()
    return {"started": True}
