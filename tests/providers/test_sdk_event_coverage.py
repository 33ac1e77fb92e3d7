"""Every kind of object the SDKs can yield for a stream is either converted or skipped on
purpose (it repeats another event, or reports progress a later event carries whole), read
off the SDKs' own type unions: a new SDK release that adds an event type fails here
instead of being dropped in silence.  Whatever is still unknown at run time (a newer API
than the SDK) is kept whole on the terminal event as ``unknown_events``."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from _recorded import (
    ANTHROPIC_ARGS,
    RESPONSES_ARGS,
    Served,
    anthropic_client,
    check_invariants,
    messages,
    openai_client,
    text_of,
)

from fastevents.providers import anthropic as anthropic_adapter
from fastevents.providers import openai as openai_adapter


def _members(union: Any) -> list[type]:
    """The classes of an (Annotated) Union of pydantic models, nested unions flattened."""
    while typing.get_origin(union) is typing.Annotated:
        union = typing.get_args(union)[0]
    if typing.get_origin(union) is typing.Union:
        return [cls for arg in typing.get_args(union) for cls in _members(arg)]
    return [union]


def _type_names(union: Any) -> set[str]:
    names: set[str] = set()
    for cls in _members(union):
        origin = typing.get_origin(cls) or cls  # Parsed...Event[T]
        literal = origin.model_fields["type"].annotation
        names.update(typing.get_args(literal))
    return names


def _covered(conv: Any) -> set[str]:
    return set(conv._handlers) | set(conv.skipped)


def test_every_anthropic_stream_event_type_is_converted_or_skipped_on_purpose() -> None:
    anthropic = pytest.importorskip("anthropic")
    from anthropic.lib.streaming import _beta_types, _types

    names = (_type_names(anthropic.types.RawMessageStreamEvent)
             | _type_names(anthropic.types.beta.BetaRawMessageStreamEvent)
             | _type_names(_types.ParsedMessageStreamEvent)
             | _type_names(_beta_types.ParsedBetaMessageStreamEvent))
    assert {"message_start", "content_block_delta", "text", "compaction"} <= names
    conv = anthropic_adapter.AnthropicConverter()
    assert names - _covered(conv) == set()
    # and the skipped ones are only the helper events that repeat a raw delta
    assert conv.skipped <= names and not conv.skipped & set(conv._handlers)


def test_every_responses_stream_event_type_is_converted_or_skipped_on_purpose() -> None:
    openai = pytest.importorskip("openai")
    names = _type_names(openai.types.responses.ResponseStreamEvent)
    assert len(names) > 50
    conv = openai_adapter.ResponsesConverter()
    assert names - _covered(conv) == set()
    assert conv.skipped <= names and not conv.skipped & set(conv._handlers)


def _unknown_anthropic_event() -> bytes:
    return (b'event: message_annotation\ndata: {"type":"message_annotation",'
            b'"annotation":{"kind":"note","text":"from a newer API"}}\n\n')


@pytest.mark.parametrize("helper", [False, True], ids=["create", "stream-helper"])
def test_an_unknown_anthropic_event_is_kept_on_message_stop(helper: bool) -> None:
    pytest.importorskip("anthropic")
    chunks = messages("anthropic_text.sse")
    chunks.insert(4, _unknown_anthropic_event())
    client = anthropic_client(Served(chunks))
    if helper:
        with client.messages.stream(**ANTHROPIC_ARGS) as stream:
            events = list(anthropic_adapter.convert(stream))
    else:
        events = list(anthropic_adapter.convert(
            client.messages.create(**ANTHROPIC_ARGS, stream=True)))
    check_invariants(events)
    assert text_of(events) == "Hello! How can I help you today?"
    assert events[-1].data["unknown_events"] == [
        {"type": "message_annotation",
         "annotation": {"kind": "note", "text": "from a newer API"}}]


def test_known_events_leave_no_unknown_events() -> None:
    pytest.importorskip("anthropic")
    client = anthropic_client(Served(messages("anthropic_citations_redacted.sse")))
    with client.messages.stream(**ANTHROPIC_ARGS) as stream:
        events = list(anthropic_adapter.convert(stream))
    assert "unknown_events" not in events[-1].data


def test_an_unknown_responses_event_is_kept_on_message_stop() -> None:
    pytest.importorskip("openai")
    chunks = messages("openai_responses.sse")
    chunks.insert(2, b'event: response.output_text.highlight\ndata: {"type":'
                     b'"response.output_text.highlight","sequence_number":99,"start":0}\n\n')
    client = openai_client(Served(chunks))
    events = list(openai_adapter.convert(client.responses.create(**RESPONSES_ARGS,
                                                                 stream=True)))
    check_invariants(events)
    assert events[-1].data["unknown_events"] == [
        {"type": "response.output_text.highlight", "sequence_number": 99, "start": 0}]
    plain = openai_client(Served(messages("openai_responses.sse")))
    again = list(openai_adapter.convert(plain.responses.create(**RESPONSES_ARGS, stream=True)))
    assert "unknown_events" not in again[-1].data
