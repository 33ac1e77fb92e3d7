"""fastevents.providers.anthropic against the real ``anthropic`` SDK over recorded streams."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _recorded import (
    ANTHROPIC_ARGS,
    Served,
    anthropic_client,
    check_invariants,
    messages,
    shape,
    text_of,
    tool_arguments,
)

import fastevents as fe
from fastevents.providers import anthropic as adapter

anthropic = pytest.importorskip("anthropic", reason="the anthropic SDK is not installed")
T = fe.EventType


def convert_sync(name: str, *, helper: bool = False) -> list[fe.Event]:
    client = anthropic_client(Served(messages(name)))
    if helper:
        with client.messages.stream(**ANTHROPIC_ARGS) as stream:
            return list(adapter.convert(stream))
    return list(adapter.convert(client.messages.create(**ANTHROPIC_ARGS, stream=True)))


def convert_async(name: str, *, helper: bool = False) -> list[fe.Event]:
    async def main() -> list[fe.Event]:
        client = anthropic_client(Served(messages(name)), is_async=True)
        if helper:
            async with client.messages.stream(**ANTHROPIC_ARGS) as stream:
                return [ev async for ev in adapter.aconvert(stream)]
        raw = await client.messages.create(**ANTHROPIC_ARGS, stream=True)
        return [ev async for ev in adapter.aconvert(raw)]

    return asyncio.run(main())


CONVERTERS = [
    pytest.param(convert_sync, False, id="sync-create"),
    pytest.param(convert_sync, True, id="sync-stream-helper"),
    pytest.param(convert_async, False, id="async-create"),
    pytest.param(convert_async, True, id="async-stream-helper"),
]


@pytest.mark.parametrize(("run", "helper"), CONVERTERS)
def test_text(run: Any, helper: bool) -> None:
    events = run("anthropic_text.sse", helper=helper)
    msg = "msg_01XFDUDYJgAACzvnptvVoYEL"
    # messages.stream() yields helper events ("text") beside the raw ones: not counted twice.
    assert shape(events) == [
        ("MessageStart", {"message_id": msg, "model": "claude-sonnet-4-5"}),
        ("ContentStart", {"index": 0, "block_type": "text"}),
        ("TextDelta", {"text": "Hello", "index": 0}),
        ("TextDelta", {"text": "! How can I", "index": 0}),
        ("TextDelta", {"text": " help you today?", "index": 0}),
        ("ContentEnd", {"index": 0}),
        ("Usage", {"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40}),
        ("MessageStop", {"message_id": msg, "stop_reason": "end_turn"}),
    ]
    check_invariants(events)


@pytest.mark.parametrize(("run", "helper"), CONVERTERS)
def test_thinking_signature_tool_use_and_cache_usage(run: Any, helper: bool) -> None:
    events = run("anthropic_thinking_tools.sse", helper=helper)
    check_invariants(events)
    starts = [ev.data for ev in events if ev.type is T.CONTENT_START]
    assert starts == [
        {"index": 0, "block_type": "thinking"},
        {"index": 1, "block_type": "text"},
        {"index": 2, "block_type": "tool_use", "tool_use_id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
         "name": "get_weather"},
    ]
    thinking = [ev.data for ev in events if ev.type is T.THINKING]
    assert "".join(d["thinking"] for d in thinking) == (
        "The user wants the weather in Paris. I should call get_weather."
    )
    assert thinking[-1] == {"thinking": "", "index": 0,
                            "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds..."}
    assert tool_arguments(events) == {2: {"location": "Paris, France", "unit": "celsius"}}
    assert text_of(events) == "Let me check the weather in Paris."
    (usage,) = [ev.data for ev in events if ev.type is T.USAGE]
    # prompt_tokens counts every input token: 472 uncached + 1200 written + 3400 read.
    assert usage == {"prompt_tokens": 5072, "completion_tokens": 89, "total_tokens": 5161,
                     "cache_creation_input_tokens": 1200, "cache_read_input_tokens": 3400,
                     "reasoning_tokens": 41}
    assert events[-1].data == {"message_id": "msg_01TK3v5ZxLkVhTjp8bKJbcNw",
                               "stop_reason": "tool_use"}


@pytest.mark.parametrize(("run", "helper"), CONVERTERS)
def test_redacted_thinking_server_tools_citations_stop_sequence(run: Any, helper: bool) -> None:
    events = run("anthropic_citations_redacted.sse", helper=helper)
    check_invariants(events)
    by_index = {ev.data["index"]: ev.data for ev in events if ev.type is T.CONTENT_START}
    assert by_index[0]["block_type"] == "redacted_thinking"
    assert by_index[0]["redacted_data"].startswith("EmwKAhgBEgy3va3pzix")
    assert by_index[1] == {"index": 1, "block_type": "server_tool_use",
                           "tool_use_id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB",
                           "name": "web_search"}
    assert tool_arguments(events) == {1: {"query": "grass color"}}
    result = by_index[2]
    assert result["block_type"] == "web_search_tool_result"
    assert result["content_block"]["tool_use_id"] == "srvtoolu_014hJH82Qum7Td6UV8gDXThB"
    assert result["content_block"]["content"][0]["url"] == "https://example.com/grass"
    citations = [ev.data for ev in events if "citation" in ev.data]
    assert citations == [{
        "text": "", "index": 3,
        "citation": {"type": "char_location", "cited_text": "The grass is green.",
                     "document_index": 0, "document_title": "Example Document",
                     "start_char_index": 0, "end_char_index": 20},
    }]
    assert text_of(events) == "the grass is green and the sky is"
    (usage,) = [ev.data for ev in events if ev.type is T.USAGE]
    assert usage["server_tool_use"] == {"web_search_requests": 1}
    assert events[-1].data == {"message_id": "msg_01Cit8rZ3qH7nWvYp2xKdLmN",
                               "stop_reason": "stop_sequence", "stop_sequence": "\n\nHuman:"}


@pytest.mark.parametrize(("run", "helper"), CONVERTERS)
def test_message_start_fields_beyond_id_and_model_are_kept(run: Any, helper: bool) -> None:
    # message_start's message can carry a container (code execution) and cache
    # diagnostics; its usage, service tier, region and speed go on Usage.
    events = run("anthropic_message_extras.sse", helper=helper)
    check_invariants(events)
    assert events[0].data == {
        "message_id": "msg_01Xtr4sContainerDiag", "model": "claude-sonnet-4-5",
        "container": {"id": "container_011CPR5CNjB747bTd36fQLFk",
                      "expires_at": "2026-12-01T16:45:00Z"},
        "diagnostics": {"cache_miss_reason": {"type": "model_changed",
                                              "cache_missed_input_tokens": 2048}},
    }
    (usage,) = [ev.data for ev in events if ev.type is T.USAGE]
    assert usage == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15,
                     "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                     "service_tier": "standard", "inference_geo": "us", "speed": "standard"}


@pytest.mark.parametrize(("run", "helper"), CONVERTERS)
def test_error_mid_stream_ends_convert_with_an_error_event(run: Any, helper: bool) -> None:
    events = run("anthropic_error.sse", helper=helper)
    check_invariants(events, ended_by_error=True)
    assert shape(events)[-2:] == [
        ("TextDelta", {"text": "Once upon", "index": 0}),
        ("Error", {"error": "Overloaded", "error_type": "overloaded_error"}),
    ]


def test_the_error_keeps_the_request_id() -> None:
    chunks = messages("anthropic_error.sse")
    chunks[-1] = chunks[-1].replace(b'"message":"Overloaded"}}', b'"message":"Overloaded"},'
                                    b'"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}')
    client = anthropic_client(Served(chunks))
    events = list(adapter.convert(client.messages.create(**ANTHROPIC_ARGS, stream=True)))
    assert events[-1].data == {"error": "Overloaded", "error_type": "overloaded_error",
                               "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}


def test_pump_sends_the_error_closes_and_reraises(stream_cls: Any) -> None:
    client = anthropic_client(Served(messages("anthropic_error.sse")))
    stream = stream_cls(16)
    with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
        adapter.pump(client.messages.create(**ANTHROPIC_ARGS, stream=True), stream)
    assert stream.closed
    got = list(stream)
    assert [str(ev.type) for ev in got] == [
        "MessageStart", "ContentStart", "TextDelta", "Error"]
    assert got[-1].data == {"error": "Overloaded", "error_type": "overloaded_error"}


def test_apump_sends_the_error_closes_and_reraises(stream_cls: Any) -> None:
    async def main() -> list[fe.Event]:
        client = anthropic_client(Served(messages("anthropic_error.sse")), is_async=True)
        stream = stream_cls(16)
        raw = await client.messages.create(**ANTHROPIC_ARGS, stream=True)
        with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
            await adapter.apump(raw, stream)
        assert stream.closed
        return [ev async for ev in stream]

    got = asyncio.run(main())
    assert [str(ev.type) for ev in got][-1] == "Error"
    assert got[-1].data["error_type"] == "overloaded_error"


def test_pump_returns_the_count_and_keeps_the_stream_open_when_asked(stream_cls: Any) -> None:
    client = anthropic_client(Served(messages("anthropic_thinking_tools.sse")))
    stream = stream_cls(64)
    n = adapter.pump(client.messages.create(**ANTHROPIC_ARGS, stream=True), stream, close=False)
    assert n == len(stream) == 17 and not stream.closed
    stream.close()
    assert shape(list(stream)) == shape(convert_sync("anthropic_thinking_tools.sse"))


def test_pump_into_a_closed_stream_stops_reading_and_releases_the_response(
    stream_cls: Any,
) -> None:
    served = Served(messages("anthropic_text.sse"))
    client = anthropic_client(served)
    raw = client.messages.create(**ANTHROPIC_ARGS, stream=True)
    stream = stream_cls(4)
    stream.close()
    with pytest.raises(fe.StreamClosed):
        adapter.pump(raw, stream)
    assert raw.response.is_closed
    assert served.pulled < len(served.chunks)  # it stopped reading


def test_importing_the_adapters_imports_no_sdk() -> None:
    import subprocess
    import sys

    code = ("import sys, fastevents, fastevents.providers.anthropic, "
            "fastevents.providers.openai; "
            "bad = [m for m in ('anthropic', 'openai', 'httpx', 'httpx2', 'pydantic') "
            "if m in sys.modules]; print(bad); assert not bad")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_stream_cut_short_still_ends_with_its_blocks_closed_and_a_stop() -> None:
    # The connection ends after a token, with no message_stop and no error event.
    chunks = messages("anthropic_thinking_tools.sse")[:4]
    client = anthropic_client(Served(chunks))
    events = list(adapter.convert(client.messages.create(**ANTHROPIC_ARGS, stream=True)))
    check_invariants(events)
    assert shape(events)[-3:] == [
        ("ContentEnd", {"index": 0}),
        ("Usage", {"prompt_tokens": 5072, "completion_tokens": 2, "total_tokens": 5074,
                   "cache_creation_input_tokens": 1200, "cache_read_input_tokens": 3400}),
        ("MessageStop", {"message_id": "msg_01TK3v5ZxLkVhTjp8bKJbcNw",
                         "stop_reason": "incomplete"}),
    ]


def test_a_tool_called_without_arguments_still_has_json_arguments() -> None:
    chunks = messages("anthropic_thinking_tools.sse")
    # Keep the tool block's start, its empty "" piece and its stop; drop the other pieces.
    kept = [c for c in chunks if b'"partial_json":"' not in c or b'"partial_json":""' in c]
    client = anthropic_client(Served(kept))
    events = list(adapter.convert(client.messages.create(**ANTHROPIC_ARGS, stream=True)))
    check_invariants(events)
    assert tool_arguments(events) == {2: {}}
