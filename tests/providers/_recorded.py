"""Recorded provider streams, served to the real SDK clients through httpx2.MockTransport.

The fixtures in tests/fixtures/*.sse were written by hand from the providers' documented
SSE wire formats.  Each test builds a real ``anthropic.Anthropic`` / ``openai.OpenAI``
client (sync or async) whose HTTP client has a mock transport that answers every request
with one fixture, one SSE message per body chunk: nothing is mocked in the SDK, and no
byte leaves the process.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import fastevents as fe

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
T = fe.EventType


def _sdk(name: str) -> Any:
    # The adapters never import an SDK; only these tests do.  Where an SDK cannot be
    # installed (an old or unusual Python), its tests skip and say why.
    return pytest.importorskip(name, reason=f"{name} is not installed (the test extra "
                               f"installs it on Python >= 3.11, where httpx2 runs)")


def messages(name: str) -> list[bytes]:
    """The SSE messages of a fixture, each with its blank-line terminator."""
    body = (FIXTURES / name).read_bytes()
    return [m.strip(b"\n") + b"\n\n" for m in body.split(b"\n\n") if m.strip()]


class Served:
    """Serves one body per request; counts the chunks the client has pulled."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.pulled = 0
        self.requests: list[Any] = []

    def _sync_body(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.pulled += 1
            yield chunk

    async def _async_body(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.pulled += 1
            yield chunk

    def handler(self, *, is_async: bool) -> Any:
        httpx2 = _sdk("httpx2")

        def handle(request: Any) -> Any:
            self.requests.append(request)
            body = self._async_body() if is_async else self._sync_body()
            return httpx2.Response(200, headers={"content-type": "text/event-stream"},
                                   content=body)

        return handle


def _client(sdk: str, sync_cls: str, async_cls: str, base_url: str, served: Served,
            is_async: bool) -> Any:
    """A real SDK client whose HTTP client answers every request from `served`."""
    module = _sdk(sdk)
    httpx2 = _sdk("httpx2")
    transport = httpx2.MockTransport(served.handler(is_async=is_async))
    http_client = (httpx2.AsyncClient if is_async else httpx2.Client)(transport=transport)
    cls = getattr(module, async_cls if is_async else sync_cls)
    return cls(api_key="test-key", base_url=base_url, max_retries=0, http_client=http_client)


def anthropic_client(served: Served, *, is_async: bool = False) -> Any:
    return _client("anthropic", "Anthropic", "AsyncAnthropic", "http://anthropic.test", served,
                   is_async)


def openai_client(served: Served, *, is_async: bool = False) -> Any:
    return _client("openai", "OpenAI", "AsyncOpenAI", "http://openai.test/v1", served, is_async)


ANTHROPIC_ARGS: dict[str, Any] = {
    "model": "claude-sonnet-4-5", "max_tokens": 1024,
    "messages": [{"role": "user", "content": "Hello"}],
}
CHAT_ARGS: dict[str, Any] = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
RESPONSES_ARGS: dict[str, Any] = {"model": "o4-mini", "input": "What is the weather in Paris?"}


def shape(events: list[fe.Event]) -> list[tuple[str, dict[str, Any]]]:
    """Events as (wire type name, data): what a test compares."""
    return [(str(ev.type), ev.data) for ev in events]


def check_invariants(events: list[fe.Event], *, ended_by_error: bool = False) -> None:
    """The contract's shape (API.md, "Provider adapters"), whatever the provider."""
    assert events, "no events"
    for ev in events:
        ev.validate()
        assert fe.Event.from_json(ev.to_json()) == ev  # every event is wire-ready
    assert events[0].type is T.MESSAGE_START
    assert {"message_id", "model"} <= events[0].data.keys()
    if ended_by_error:
        assert events[-1].type is T.ERROR
        assert {"error", "error_type"} <= events[-1].data.keys()
        assert all(ev.type is not T.MESSAGE_STOP for ev in events)
    else:
        assert events[-1].type is T.MESSAGE_STOP
        assert events[-1].data["message_id"] == events[0].data["message_id"]
        assert [ev.type for ev in events].count(T.USAGE) <= 1
    opened: set[int] = set()
    seen: set[int] = set()
    for ev in events:
        index = ev.data.get("index")
        if ev.type is T.CONTENT_START:
            assert index not in seen, f"block index {index} used twice"
            assert "block_type" in ev.data
            opened.add(index)
            seen.add(index)
        elif ev.type is T.CONTENT_END:
            assert index in opened
            opened.remove(index)
        elif ev.type in (T.TEXT_DELTA, T.THINKING, T.TOOL_INPUT_DELTA):
            assert index in opened, f"{ev.type} outside its block: {ev.data}"
        elif ev.type is T.USAGE:
            assert not opened and events[-1].type is T.MESSAGE_STOP
    if not ended_by_error:
        assert not opened, f"blocks never closed: {opened}"


def tool_arguments(events: list[fe.Event]) -> dict[int, Any]:
    """Block index -> the JSON its ToolInputDelta pieces concatenate to."""
    pieces: dict[int, str] = {}
    for ev in events:
        if ev.type is T.TOOL_INPUT_DELTA:
            pieces[ev.data["index"]] = pieces.get(ev.data["index"], "") + ev.data["partial_json"]
    return {index: json.loads(text) for index, text in pieces.items()}


def text_of(events: list[fe.Event]) -> str:
    return "".join(ev.data["text"] for ev in events if ev.type is T.TEXT_DELTA)
