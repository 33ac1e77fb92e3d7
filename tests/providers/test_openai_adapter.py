"""fastevents.providers.openai against the real ``openai`` SDK over recorded streams:
Chat Completions (OpenAI, DeepSeek's and vLLM's reasoning fields) and the Responses API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _recorded import (
    CHAT_ARGS,
    RESPONSES_ARGS,
    Served,
    check_invariants,
    messages,
    openai_client,
    shape,
    text_of,
    tool_arguments,
)

import fastevents as fe
from fastevents.providers import openai as adapter

openai = pytest.importorskip("openai", reason="the openai SDK is not installed")
T = fe.EventType


def _create(client: Any, name: str) -> Any:
    if name.startswith("openai_responses"):
        return client.responses.create(**RESPONSES_ARGS, stream=True)
    return client.chat.completions.create(**CHAT_ARGS, stream=True)


def convert_sync(name: str) -> list[fe.Event]:
    client = openai_client(Served(messages(name)))
    return list(adapter.convert(_create(client, name)))


def convert_async(name: str) -> list[fe.Event]:
    async def main() -> list[fe.Event]:
        client = openai_client(Served(messages(name)), is_async=True)
        return [ev async for ev in adapter.aconvert(await _create(client, name))]

    return asyncio.run(main())


RUN = [pytest.param(convert_sync, id="sync"), pytest.param(convert_async, id="async")]


# -- Chat Completions ----------------------------------------------------------------------


@pytest.mark.parametrize("run", RUN)
def test_chat_text_without_usage(run: Any) -> None:
    events = run("openai_chat_text.sse")
    assert shape(events) == [
        ("MessageStart", {"message_id": "chatcmpl-AZt5Xq1", "model": "gpt-4o-2024-08-06",
                          "system_fingerprint": "fp_7f6be3efb0"}),
        ("ContentStart", {"index": 0, "block_type": "text"}),
        ("TextDelta", {"text": "Hello", "index": 0}),
        ("TextDelta", {"text": "! How can I", "index": 0}),
        ("TextDelta", {"text": " help you today?", "index": 0}),
        ("ContentEnd", {"index": 0}),
        ("MessageStop", {"message_id": "chatcmpl-AZt5Xq1", "stop_reason": "stop"}),
    ]
    check_invariants(events)


@pytest.mark.parametrize("run", RUN)
def test_chat_parallel_tool_calls_with_include_usage(run: Any) -> None:
    events = run("openai_chat_tools_usage.sse")
    check_invariants(events)
    starts = [ev.data for ev in events if ev.type is T.CONTENT_START]
    assert starts == [
        {"index": 0, "block_type": "tool_use", "tool_use_id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
         "name": "get_weather"},
        {"index": 1, "block_type": "tool_use", "tool_use_id": "call_Z4eRtK8lQm2nVbXc5sDf6gHj",
         "name": "get_time"},
    ]
    assert tool_arguments(events) == {0: {"location": "Paris, France"},
                                      1: {"tz": "Europe/Paris"}}
    (usage,) = [ev.data for ev in events if ev.type is T.USAGE]
    assert usage == {
        "prompt_tokens": 82, "completion_tokens": 41, "total_tokens": 123,
        "cache_read_input_tokens": 64, "reasoning_tokens": 0,
        "prompt_tokens_details": {"audio_tokens": 0},
        "completion_tokens_details": {"audio_tokens": 0, "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    }
    # include_usage sends the usage after the finish_reason chunk: Usage, then the stop.
    assert shape(events)[-2:][1] == (
        "MessageStop", {"message_id": "chatcmpl-B7tools", "stop_reason": "tool_calls"})


@pytest.mark.parametrize("run", RUN)
@pytest.mark.parametrize(
    ("name", "thinking", "text", "stop"),
    [
        ("openai_chat_reasoning.sse", "9.11 vs 9.9: compare tenths: 1 < 9.", "9.9 is greater.",
         "stop"),  # DeepSeek: delta.reasoning_content
        ("openai_chat_vllm_reasoning.sse", "Short question; answer directly.", "Paris.",
         "length"),  # vLLM: delta.reasoning
    ],
)
def test_chat_reasoning_fields(run: Any, name: str, thinking: str, text: str, stop: str) -> None:
    events = run(name)
    check_invariants(events)
    kinds = [ev.data["block_type"] for ev in events if ev.type is T.CONTENT_START]
    assert kinds == ["thinking", "text"]
    assert "".join(ev.data["thinking"] for ev in events if ev.type is T.THINKING) == thinking
    assert text_of(events) == text
    assert events[-1].data["stop_reason"] == stop


def test_chat_deepseek_usage_keeps_its_cache_counts() -> None:
    (usage,) = [ev.data for ev in convert_sync("openai_chat_reasoning.sse")
                if ev.type is T.USAGE]
    assert usage == {"prompt_tokens": 17, "completion_tokens": 30, "total_tokens": 47,
                     "cache_read_input_tokens": 0, "reasoning_tokens": 21,
                     "prompt_cache_hit_tokens": 0, "prompt_cache_miss_tokens": 17}


@pytest.mark.parametrize("run", RUN)
def test_chat_error_mid_stream(run: Any) -> None:
    events = run("openai_chat_error.sse")
    check_invariants(events, ended_by_error=True)
    assert shape(events)[-2:] == [
        ("TextDelta", {"text": "Once upon", "index": 0}),
        ("Error", {"error": "The server had an error while processing your request. "
                            "Sorry about that!", "error_type": "server_error"}),
    ]


@pytest.mark.parametrize("run", RUN)
def test_chat_error_keeps_the_code_beside_the_type(run: Any) -> None:
    # OpenAI's rate-limit error says type "tokens" and code "rate_limit_exceeded": both.
    events = run("openai_chat_error_code.sse")
    check_invariants(events, ended_by_error=True)
    assert events[-1].data == {
        "error": "Rate limit reached for gpt-4o in organization org-123 on tokens per min "
                 "(TPM): Limit 30000, Used 30000, Requested 120.",
        "error_type": "tokens", "code": "rate_limit_exceeded"}


def test_responses_failed_keeps_the_usage_billed() -> None:
    usage = ('"usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":0},'
             '"output_tokens":3,"output_tokens_details":{"reasoning_tokens":0},'
             '"total_tokens":15}')
    chunks = messages("openai_responses_failed.sse")
    chunks[-1] = chunks[-1].replace(b'"usage":null', usage.encode())
    client = openai_client(Served(chunks))
    events = list(adapter.convert(_create(client, "openai_responses_failed.sse")))
    check_invariants(events, ended_by_error=True)
    assert events[-1].data["usage"] == {"input_tokens": 12, "output_tokens": 3,
                                        "total_tokens": 15,
                                        "input_tokens_details": {"cached_tokens": 0},
                                        "output_tokens_details": {"reasoning_tokens": 0}}
    assert events[-1].data["error_type"] == "server_error"


def test_chat_pump_error_closes_and_reraises(stream_cls: Any) -> None:
    client = openai_client(Served(messages("openai_chat_error.sse")))
    stream = stream_cls(16)
    with pytest.raises(openai.APIError, match="server had an error"):
        adapter.pump(_create(client, "openai_chat_error.sse"), stream)
    assert stream.closed
    assert [str(ev.type) for ev in stream][-1] == "Error"


def test_chat_stream_helper_counts_each_chunk_once() -> None:
    # chat.completions.stream() yields "chunk" events plus helper events that repeat them.
    client = openai_client(Served(messages("openai_chat_tools_usage.sse")))
    with client.chat.completions.stream(**CHAT_ARGS) as stream:
        events = list(adapter.convert(stream))
    assert shape(events) == shape(convert_sync("openai_chat_tools_usage.sse"))


# -- Responses API ------------------------------------------------------------------------


@pytest.mark.parametrize("run", RUN)
def test_responses_reasoning_function_call_text_citation_usage(run: Any) -> None:
    events = run("openai_responses.sse")
    check_invariants(events)
    assert events[0].data == {"message_id": "resp_67ccd2bed1ec8190",
                              "model": "o4-mini-2025-04-16"}
    starts = [ev.data for ev in events if ev.type is T.CONTENT_START]
    assert starts == [
        {"index": 0, "block_type": "thinking", "item_id": "rs_67ccd2bf1e8c8190"},
        {"index": 1, "block_type": "tool_use", "tool_use_id": "call_unLAR8MvFNptuiZK6K6HCy5k",
         "name": "get_weather", "item_id": "fc_67ccd2c0b9588190"},
        {"index": 2, "block_type": "text", "item_id": "msg_67ccd2c1c4848190"},
    ]
    thinking = [ev.data for ev in events if ev.type is T.THINKING]
    assert "".join(d["thinking"] for d in thinking) == (
        "**Checking the weather**\n\nThe user asks about Paris; I will call get_weather.")
    assert thinking[-1] == {"thinking": "", "index": 0,
                            "signature": "gAAAAABoISQ24OyVRYbkYfukJZ3xqcmgc5"}
    assert tool_arguments(events) == {1: {"location": "Paris, France"}}
    assert text_of(events) == "It is 18°C in Paris."
    citations = [ev.data["citation"] for ev in events if "citation" in ev.data]
    assert citations == [{"type": "url_citation", "start_index": 0, "end_index": 20,
                          "title": "Paris weather", "url": "https://example.com/paris"}]
    (usage,) = [ev.data for ev in events if ev.type is T.USAGE]
    assert usage == {"prompt_tokens": 328, "completion_tokens": 148, "total_tokens": 476,
                     "cache_creation_input_tokens": 0, "cache_read_input_tokens": 128,
                     "reasoning_tokens": 64}
    assert events[-1].data == {"message_id": "resp_67ccd2bed1ec8190",
                               "stop_reason": "completed"}


@pytest.mark.parametrize("run", RUN)
@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("openai_responses_failed.sse",
         {"error": "The model failed to generate a response.", "error_type": "server_error"}),
        ("openai_responses_error.sse",
         {"error": "Rate limit reached for gpt-4.1 in organization org-123 on tokens per min "
                   "(TPM).", "error_type": "rate_limit_exceeded", "param": "model"}),
    ],
)
def test_responses_failed_and_error_events(run: Any, name: str, error: dict[str, str]) -> None:
    events = run(name)
    check_invariants(events, ended_by_error=True)
    assert events[-1].data == error


def test_responses_pump_error_event_is_sent_and_the_stream_closed(stream_cls: Any) -> None:
    # The Responses API reports these errors as events, not as an exception of the SDK:
    # pump sends the Error, closes, and returns the count.
    client = openai_client(Served(messages("openai_responses_failed.sse")))
    stream = stream_cls(16)
    n = adapter.pump(_create(client, "openai_responses_failed.sse"), stream)
    got = list(stream)
    assert stream.closed and n == len(got) == 4
    assert got[-1].data["error_type"] == "server_error"


def test_responses_stream_helper_gives_the_same_events() -> None:
    client = openai_client(Served(messages("openai_responses.sse")))
    with client.responses.stream(**RESPONSES_ARGS) as stream:
        events = list(adapter.convert(stream))
    assert shape(events) == shape(convert_sync("openai_responses.sse"))


@pytest.mark.parametrize(("name", "api"), [("openai_chat_tools_usage.sse", "chat"),
                                         ("openai_responses.sse", "responses")])
def test_async_stream_helpers_give_the_same_events(name: str, api: str) -> None:
    # AsyncChatCompletionStream / AsyncResponseStream yield helper events beside the
    # raw ones: each raw one is converted once.
    async def main() -> list[fe.Event]:
        client = openai_client(Served(messages(name)), is_async=True)
        if api == "chat":
            manager = client.chat.completions.stream(**CHAT_ARGS)
        else:
            manager = client.responses.stream(**RESPONSES_ARGS)
        async with manager as stream:
            return [ev async for ev in adapter.aconvert(stream)]

    assert shape(asyncio.run(main())) == shape(convert_sync(name))


def test_an_empty_stream_gives_no_events() -> None:
    assert list(adapter.convert(iter(()))) == []


@pytest.mark.parametrize("run", RUN)
def test_chat_logprobs_fingerprint_and_service_tier_are_kept(run: Any) -> None:
    events = run("openai_chat_logprobs.sse")
    check_invariants(events)
    assert events[0].data == {"message_id": "chatcmpl-LP01", "model": "gpt-4o-mini-2024-07-18",
                              "system_fingerprint": "fp_0ba0d124f1", "service_tier": "default"}
    deltas = [ev.data for ev in events if ev.type is T.TEXT_DELTA]
    assert deltas == [
        {"text": "Hi", "index": 0, "logprobs": {"content": [
            {"token": "Hi", "logprob": -0.0009, "bytes": [72, 105], "top_logprobs": []}]}},
        {"text": "!", "index": 0, "logprobs": {"content": [
            {"token": "!", "logprob": -0.31, "bytes": [33], "top_logprobs": []}]}},
    ]


@pytest.mark.parametrize("run", RUN)
def test_chat_two_choices(run: Any) -> None:
    events = run("openai_chat_n2.sse")
    check_invariants(events)
    starts = [ev.data for ev in events if ev.type is T.CONTENT_START]
    assert starts == [{"index": 0, "block_type": "text"},
                      {"index": 1, "block_type": "text", "choice": 1}]
    by_block: dict[int, str] = {}
    for ev in events:
        if ev.type is T.TEXT_DELTA:
            by_block[ev.data["index"]] = by_block.get(ev.data["index"], "") + ev.data["text"]
    assert by_block == {0: "Red.", 1: "Blue sky"}
    assert events[-1].data == {"message_id": "chatcmpl-N2", "stop_reason": "stop",
                               "finish_reasons": {"0": "stop", "1": "length"}}


@pytest.mark.parametrize("run", RUN)
def test_responses_other_items_arrive_whole_and_incomplete_stops(run: Any) -> None:
    events = run("openai_responses_web_search_incomplete.sse")
    check_invariants(events)
    search_start, text_start = [ev.data for ev in events if ev.type is T.CONTENT_START]
    assert search_start == {"index": 0, "block_type": "web_search_call", "item_id": "ws_01",
                            "item": {"id": "ws_01", "type": "web_search_call",
                                     "status": "in_progress"}}
    search_end = next(ev.data for ev in events if ev.type is T.CONTENT_END)
    assert search_end["index"] == 0
    assert search_end["item"]["action"] == {"type": "search", "query": "positive news today"}
    assert text_start["block_type"] == "text" and text_of(events) == "Today a"
    # response.incomplete closes the open text block, then Usage and the stop.
    assert shape(events)[-3:] == [
        ("ContentEnd", {"index": 1}),
        ("Usage", {"prompt_tokens": 40, "completion_tokens": 2, "total_tokens": 42,
                   "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                   "reasoning_tokens": 0}),
        ("MessageStop", {"message_id": "resp_ws01", "stop_reason": "incomplete",
                         "incomplete_details": {"reason": "max_output_tokens"}}),
    ]


# -- what the real SDK can yield beyond text, thinking and tools (losslessness) ----------


@pytest.mark.parametrize("run", RUN)
def test_chat_audio_output_and_moderation_are_carried(run: Any) -> None:
    # delta.audio (gpt-4o-audio): the transcript is the text of an "audio" block, the id,
    # the base64 data and the expiry ride along; chunk.moderation goes on MessageStop.
    events = run("openai_chat_audio_moderation.sse")
    check_invariants(events)
    assert shape(events)[1:7] == [
        ("ContentStart", {"index": 0, "block_type": "audio"}),
        ("TextDelta", {"text": "Hello", "index": 0, "audio": {"id": "audio_6752a1f2"}}),
        ("TextDelta", {"text": "", "index": 0, "audio": {"data": "UklGRiQAAABXQVZF"}}),
        ("TextDelta", {"text": " there!", "index": 0}),
        ("TextDelta", {"text": "", "index": 0, "audio": {"expires_at": 1733003900}}),
        ("ContentEnd", {"index": 0}),
    ]
    stop = events[-1].data
    assert stop["stop_reason"] == "stop"
    assert stop["moderation"]["input"]["results"][0]["category_scores"] == {"violence": 0.0001}
    assert stop["moderation"]["output"]["results"][0]["category_scores"] == {"violence": 0.0002}


@pytest.mark.parametrize("run", RUN)
def test_chat_azure_preamble_and_content_filters_are_carried(run: Any) -> None:
    # Azure OpenAI opens with a chunk that has no id, no model, no choices: the message
    # id and model are the next chunk's, the prompt filter results go on MessageStart,
    # each chunk's content_filter_results on the text it judged.
    events = run("openai_chat_azure_filters.sse")
    check_invariants(events)
    start = events[0].data
    assert (start["message_id"], start["model"]) == ("chatcmpl-Azr1", "gpt-4o-2024-11-20")
    assert start["prompt_filter_results"][0]["content_filter_results"]["hate"] == {
        "filtered": False, "severity": "safe"}
    texts = [ev.data for ev in events if ev.type is T.TEXT_DELTA]
    assert [d["text"] for d in texts] == ["Hi", " there"]
    assert texts[1]["content_filter_results"]["violence"] == {"filtered": False,
                                                              "severity": "low"}
    assert events[-1].data == {"message_id": "chatcmpl-Azr1", "stop_reason": "stop"}


@pytest.mark.parametrize("run", RUN)
def test_chat_server_fields_reasoning_details_and_matched_stop_string(run: Any) -> None:
    # OpenRouter/vLLM-style extras: a chunk field (provider), a delta field beside the
    # reasoning (reasoning_details) and the choice's matched stop string (stop_reason).
    events = run("openai_chat_vllm_stop_string.sse")
    check_invariants(events)
    assert events[0].data["provider"] == "Anthropic"
    (thinking,) = [ev.data for ev in events if ev.type is T.THINKING]
    assert thinking["thinking"] == "Think."
    assert thinking["reasoning_details"] == [{"type": "reasoning.text", "text": "Think.",
                                              "format": "anthropic-claude-v1", "index": 0}]
    assert text_of(events) == "42"
    assert events[-1].data == {"message_id": "gen-1733000500-OR1", "stop_reason": "stop",
                               "stop_sequence": "</answer>"}


@pytest.mark.parametrize("run", RUN)
def test_responses_items_that_arrive_whole_are_not_lost(run: Any) -> None:
    # A compatible server may send an item only in output_item.done (no deltas, no
    # content_part events, even no output_item.added): its reasoning summary and text,
    # the call's arguments and the message's text and citations come from the item.
    events = run("openai_responses_whole_items.sse")
    check_invariants(events)
    thinking = [ev.data for ev in events if ev.type is T.THINKING]
    assert thinking == [
        {"thinking": "Look it up.", "index": 0, "summary_index": 0},
        {"thinking": "Then answer.", "index": 0, "summary_index": 1},
        {"thinking": "The user asks about Paris.", "index": 0},
        {"thinking": "", "index": 0, "signature": "gAAAAABo-whole"},
    ]
    starts = [ev.data for ev in events if ev.type is T.CONTENT_START]
    assert starts[1] == {"index": 1, "block_type": "tool_use", "tool_use_id": "call_whole01",
                         "name": "get_weather", "item_id": "fc_whole01"}
    assert tool_arguments(events) == {1: {"city": "Paris"}}
    assert text_of(events) == "It is sunny in Paris."
    (citation,) = [ev.data["citation"] for ev in events if "citation" in ev.data]
    assert citation["url"] == "https://example.com/paris"

