"""EventStreamResponse called directly as an ASGI app: in-memory transports and trio."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import fastevents as fe
from fastevents.sse import EventStreamResponse, parse_id


def _app(stream: fe.Stream) -> Starlette:
    async def events(request: Request) -> Response:
        return EventStreamResponse(stream)

    return Starlette(routes=[Route("/events", events)])


def test_httpx_asgi_transport(stream_cls: type) -> None:
    stream = stream_cls(history=10)
    for i in range(3):
        stream.send(fe.text_delta_event(str(i)))
    stream.close()

    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=_app(stream))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/events")

    r = anyio.run(main)
    assert r.status_code == 200
    ids = [line[4:] for line in r.text.splitlines() if line.startswith("id: ")]
    assert [parse_id(i) for i in ids] == [(stream.instance_id, n) for n in (1, 2, 3)]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_under_any_anyio_backend(stream_cls: type, backend: str) -> None:
    """The response is anyio code: it runs under trio too (no uvicorn watcher there)."""
    pytest.importorskip(backend)
    stream = stream_cls(history=10)
    sent: list[dict[str, Any]] = []

    async def main() -> None:
        async def receive() -> dict[str, Any]:
            await anyio.sleep_forever()
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        async def produce() -> None:
            await anyio.sleep(0.05)
            for i in range(5):
                await stream.asend(fe.text_delta_event(str(i)))
            stream.close()

        scope = {"type": "http", "method": "GET", "headers": [(b"last-event-id", b"")],
                 "asgi": {"spec_version": "2.4"}}
        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            with anyio.fail_after(20):
                await EventStreamResponse(stream, ping=0.01)(scope, receive, send)

    anyio.run(main, backend=backend)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    body = b"".join(m.get("body", b"") for m in sent[1:])
    assert body.count(b"event: TextDelta\n") == 5
    assert body.startswith(b": ping\n")  # idle for 50 ms with a 10 ms ping
