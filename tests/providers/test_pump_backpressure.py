"""pump/apump into a small BLOCK stream with a slow consumer: the full buffer throttles the
read from the provider (the SDK pulls no further ahead than the buffer allows), and every
event arrives, in order.  Both SDKs, sync and async, both stream twins."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest
from _recorded import (
    ANTHROPIC_ARGS,
    CHAT_ARGS,
    Served,
    anthropic_client,
    openai_client,
    shape,
)

import fastevents as fe
from fastevents.providers import anthropic as anthropic_adapter
from fastevents.providers import openai as openai_adapter

N_TOKENS = 150
BUFFER = 2
# How far the reader may run ahead of the consumer: the buffer, the event a blocked send
# holds, the messages that make no event or several (message_start, block start, ping),
# and a chunk of read-ahead in the SSE decoder.  Without backpressure it would be ~N_TOKENS.
SLACK = BUFFER + 6


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def anthropic_long() -> list[bytes]:
    """A long Anthropic text stream in the documented wire format."""
    chunks = [_sse("message_start", {"type": "message_start", "message": {
        "id": "msg_long", "type": "message", "role": "assistant", "content": [],
        "model": "claude-sonnet-4-5", "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 1}}}),
        _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}})]
    for i in range(N_TOKENS):
        chunks.append(_sse("content_block_delta", {
            "type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": f"t{i} "}}))
    chunks += [_sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
               _sse("message_delta", {"type": "message_delta",
                                      "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                      "usage": {"output_tokens": N_TOKENS}}),
               _sse("message_stop", {"type": "message_stop"})]
    return chunks


def chat_long() -> list[bytes]:
    """A long Chat Completions stream in the documented wire format."""
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = {"id": "chatcmpl-long", "object": "chat.completion.chunk", "created": 1,
                "model": "gpt-4o", "choices": [{"index": 0, "delta": delta,
                                                "logprobs": None, "finish_reason": finish}]}
        return f"data: {json.dumps(body)}\n\n".encode()

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": f"t{i} "}) for i in range(N_TOKENS)]
    return [*chunks, chunk({}, "stop"), b"data: [DONE]\n\n"]


CASES = {
    "anthropic": (anthropic_long, anthropic_client, anthropic_adapter,
                  lambda c: c.messages.create(**ANTHROPIC_ARGS, stream=True)),
    "openai-chat": (chat_long, openai_client, openai_adapter,
                    lambda c: c.chat.completions.create(**CHAT_ARGS, stream=True)),
}


def expected(case: str) -> list[tuple[str, dict[str, Any]]]:
    make_chunks, make_client, adapter, create = CASES[case]
    return shape(list(adapter.convert(create(make_client(Served(make_chunks()))))))


@pytest.mark.parametrize("case", list(CASES))
def test_pump_is_throttled_by_a_slow_consumer(case: str, stream_cls: Any) -> None:
    make_chunks, make_client, adapter, create = CASES[case]
    served = Served(make_chunks())
    sdk_stream = create(make_client(served))
    stream = stream_cls(BUFFER)
    assert stream.policy == fe.BackpressurePolicy.BLOCK
    got: list[fe.Event] = []
    ahead: list[int] = []

    def consume() -> None:
        for ev in stream:
            got.append(ev)
            ahead.append(served.pulled - len(got))
            time.sleep(0.001)  # slower than the reader

    consumer = threading.Thread(target=consume)
    consumer.start()
    sent = adapter.pump(sdk_stream, stream)
    consumer.join(timeout=60)
    assert not consumer.is_alive()
    assert sent == len(got) > N_TOKENS
    assert shape(got) == expected(case)  # all of it, in order
    assert served.pulled == len(served.chunks)
    assert max(ahead) <= SLACK, f"the reader ran {max(ahead)} chunks ahead"


@pytest.mark.parametrize("case", list(CASES))
def test_apump_is_throttled_by_a_slow_consumer(case: str, stream_cls: Any) -> None:
    make_chunks, make_client, adapter, create = CASES[case]
    served = Served(make_chunks())
    got: list[fe.Event] = []
    ahead: list[int] = []

    async def main() -> int:
        sdk_stream = await create(make_client(served, is_async=True))
        stream = stream_cls(BUFFER)

        async def consume() -> None:
            async for ev in stream:
                got.append(ev)
                ahead.append(served.pulled - len(got))
                await asyncio.sleep(0.001)

        consumer = asyncio.create_task(consume())
        sent = await adapter.apump(sdk_stream, stream)
        await asyncio.wait_for(consumer, 60)
        return sent

    sent = asyncio.run(main())
    assert sent == len(got) > N_TOKENS
    assert shape(got) == expected(case)
    assert max(ahead) <= SLACK, f"the reader ran {max(ahead)} chunks ahead"


def test_a_big_buffer_lets_the_reader_run_ahead(stream_cls: Any) -> None:
    """The control for the bound above: the measure would catch a missing throttle."""
    served = Served(anthropic_long())
    sdk_stream = anthropic_client(served).messages.create(**ANTHROPIC_ARGS, stream=True)
    stream = stream_cls(10_000)
    anthropic_adapter.pump(sdk_stream, stream)
    first = stream.receive()
    assert first.type is fe.EventType.MESSAGE_START
    assert served.pulled - 1 > SLACK


@pytest.mark.parametrize("case", list(CASES))
def test_pump_stops_when_the_consumer_closes_the_stream_first(case: str, stream_cls: Any) -> None:
    """The consumer goes away mid-answer (closes the stream) while pump waits in a BLOCK
    send: the send fails at once, pump closes the SDK stream (the provider's connection
    is released, the rest is not read) and raises StreamClosed — no hang."""
    make_chunks, make_client, adapter, create = CASES[case]
    served = Served(make_chunks())
    sdk_stream = create(make_client(served))
    stream = stream_cls(BUFFER)
    outcome: list[BaseException | int] = []

    def produce() -> None:
        try:
            outcome.append(adapter.pump(sdk_stream, stream))
        except BaseException as exc:  # the test inspects it
            outcome.append(exc)

    producer = threading.Thread(target=produce)
    producer.start()
    for _ in range(5):
        stream.receive(timeout=30)
    stream.close()
    producer.join(timeout=60)
    assert not producer.is_alive(), "pump hung after the consumer closed the stream"
    (result,) = outcome
    assert isinstance(result, fe.StreamClosed)
    assert sdk_stream.response.is_closed
    assert served.pulled < len(served.chunks) // 2


@pytest.mark.parametrize("case", list(CASES))
def test_apump_stops_when_the_consumer_closes_the_stream_first(case: str,
                                                               stream_cls: Any) -> None:
    make_chunks, make_client, adapter, create = CASES[case]
    served = Served(make_chunks())

    async def main() -> tuple[BaseException | int, Any]:
        sdk_stream = await create(make_client(served, is_async=True))
        stream = stream_cls(BUFFER)
        pumping = asyncio.create_task(adapter.apump(sdk_stream, stream))
        for _ in range(5):
            await stream.areceive(timeout=30)
        stream.close()
        done, _ = await asyncio.wait([pumping], timeout=60)
        assert done, "apump hung after the consumer closed the stream"
        return (pumping.exception() or pumping.result()), sdk_stream

    result, sdk_stream = asyncio.run(main())
    assert isinstance(result, fe.StreamClosed)
    assert sdk_stream.response.is_closed
    assert served.pulled < len(served.chunks) // 2
