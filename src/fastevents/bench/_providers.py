"""A1: what a provider adapter adds to iterating the provider's SDK stream.

One operation is one streamed SDK event (a text token).  Three rows per provider API, in
the same run: the real SDK client iterating a recorded stream served by
``httpx2.MockTransport`` (its SSE parsing and pydantic models: what any consumer pays);
the same iteration through the adapter's ``convert``, every event sent into an
`EventStream` and received back; and the adapter alone over SDK objects read before the
timed run.  The target: the adapter adds at most 25 % to the SDK's own cost, i.e. the
ratio SDK-alone / with-adapter is at least 0.8.  The HTTP request itself is made while
preparing, outside the timed run.  Rows whose SDK is not installed are skipped with the
reason.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Callable
from itertools import repeat
from typing import Any

from .. import _stream
from ..providers import anthropic as anthropic_adapter
from ..providers import openai as openai_adapter
from ._catalog import Case, Row, Target
from ._scenarios import Body

__all__ = ["adapter_alone", "cases", "sdk_alone", "sdk_with_adapter"]


def _sse(event: str | None, data: dict[str, Any]) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _anthropic_body(n: int) -> list[bytes]:
    start = {"type": "message_start", "message": {
        "id": "msg_bench", "type": "message", "role": "assistant", "content": [],
        "model": "claude-sonnet-4-5", "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 1}}}
    delta = _sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                         "delta": {"type": "text_delta", "text": "Hello"}})
    return [_sse("message_start", start),
            _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                         "content_block": {"type": "text", "text": ""}}),
            *repeat(delta, n),
            _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
            _sse("message_delta", {"type": "message_delta", "delta": {
                "stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": n}}),
            _sse("message_stop", {"type": "message_stop"})]


def _chat_body(n: int) -> list[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _sse(None, {"id": "chatcmpl-bench", "object": "chat.completion.chunk",
                           "created": 1, "model": "gpt-4o", "choices": [{
                               "index": 0, "delta": delta, "logprobs": None,
                               "finish_reason": finish}]})

    return [chunk({"role": "assistant", "content": ""}), *repeat(chunk({"content": "Hello"}), n),
            chunk({}, "stop"), b"data: [DONE]\n\n"]


def _responses_body(n: int) -> list[bytes]:
    response = {"id": "resp_bench", "object": "response", "created_at": 1,
                "status": "in_progress", "model": "gpt-4.1", "output": [],
                "parallel_tool_calls": True, "tool_choice": "auto", "tools": []}
    ids = {"item_id": "msg_bench", "output_index": 0, "content_index": 0}
    done = dict(response, status="completed", usage={
        "input_tokens": 5, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": n, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": n + 5})
    return [
        _sse("response.created", {"type": "response.created", "sequence_number": 0,
                                  "response": response}),
        _sse("response.output_item.added", {
            "type": "response.output_item.added", "sequence_number": 1, "output_index": 0,
            "item": {"id": "msg_bench", "type": "message", "status": "in_progress",
                     "role": "assistant", "content": []}}),
        _sse("response.content_part.added", {
            "type": "response.content_part.added", "sequence_number": 2, **ids,
            "part": {"type": "output_text", "text": "", "annotations": []}}),
        *repeat(_sse("response.output_text.delta", {
            "type": "response.output_text.delta", "sequence_number": 3, **ids,
            "delta": "Hello", "logprobs": []}), n),
        _sse("response.completed", {"type": "response.completed", "sequence_number": 4,
                                    "response": done}),
    ]


def _client(sdk: str, chunks: list[bytes]) -> Any:
    httpx2 = importlib.import_module("httpx2")
    module = importlib.import_module(sdk)

    def handle(request: Any) -> Any:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"},
                               content=iter(chunks))

    http = httpx2.Client(transport=httpx2.MockTransport(handle))
    if sdk == "anthropic":
        return module.Anthropic(api_key="bench", base_url="http://anthropic.bench",
                                max_retries=0, http_client=http)
    return module.OpenAI(api_key="bench", base_url="http://openai.bench/v1", max_retries=0,
                         http_client=http)


def _open(api: str, n: int) -> Any:
    """A live SDK stream of `api` with n token events (the request made here, untimed)."""
    if api == "anthropic":
        return _client("anthropic", _anthropic_body(n)).messages.create(
            model="claude-sonnet-4-5", max_tokens=1024, stream=True,
            messages=[{"role": "user", "content": "hi"}])
    if api == "openai-chat":
        return _client("openai", _chat_body(n)).chat.completions.create(
            model="gpt-4o", stream=True, messages=[{"role": "user", "content": "hi"}])
    return _client("openai", _responses_body(n)).responses.create(
        model="gpt-4.1", input="hi", stream=True)


_ADAPTERS: dict[str, Callable[[Any], Any]] = {
    "anthropic": anthropic_adapter.convert,
    "openai-chat": openai_adapter.convert,
    "openai-responses": openai_adapter.convert,
}


def sdk_alone(api: str, n: int) -> Body:
    """Iterate the SDK stream: what reading the provider costs without fastevents."""
    sdk_stream = _open(api, n)

    def run() -> int:
        count = 0
        for _ in sdk_stream:
            count += 1
        return count

    return Body(run, n)


def _converted(items: Any, api: str, n: int) -> Body:
    """``convert`` over `items`, each event sent into a stream and received."""
    convert = _ADAPTERS[api]
    stream = _stream.EventStream(64)
    send, receive = stream.send, stream.try_receive

    def run() -> int:
        count = 0
        for ev in convert(items):
            send(ev)
            receive()
            count += 1
        return count

    return Body(run, n)


def sdk_with_adapter(api: str, n: int) -> Body:
    """The same stream through ``convert``, each event sent into a stream and received."""
    return _converted(_open(api, n), api, n)


def adapter_alone(api: str, n: int) -> Body:
    """The adapter's own share: ``convert`` + send/receive over SDK objects read before
    the timed run (the difference the two rows above measure, without their noise)."""
    return _converted(list(_open(api, n)), api, n)


def _missing(sdk: str) -> str:
    for name in (sdk, "httpx2"):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            return f"not installed ({exc}); pip install 'fastevents-stream[test]'"
    return ""


def cases() -> list[Case]:
    """A1's tables: one per provider API (registered in `_catalog`)."""
    cases = []
    for api, sdk in (("anthropic", "anthropic"), ("openai-chat", "openai"),
                     ("openai-responses", "openai")):
        reason = _missing(sdk)
        rows = (
            Row("sdk", f"{sdk} SDK stream alone",
                None if reason else functools.partial(sdk_alone, api), reason),
            Row("adapter", "SDK + convert + send/receive",
                None if reason else functools.partial(sdk_with_adapter, api), reason),
            Row("convert", "convert + send/receive alone",
                None if reason else functools.partial(adapter_alone, api), reason),
        )
        cases.append(Case(api, rows, "sdk", "SDK alone", fallback=None, targets=(
            Target("adapter", "sdk", 0.8, "adapter adds <=25% to the SDK"),)))
    return cases
