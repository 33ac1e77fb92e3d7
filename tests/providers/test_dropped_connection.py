"""A connection that drops mid-stream (a transport error inside the SDK's read) is an error
mid-stream like any other: ``Error {error, error_type}``, then the end; ``pump`` sends it,
closes the stream and re-raises what the SDK raised."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from _recorded import (
    ANTHROPIC_ARGS,
    CHAT_ARGS,
    Served,
    anthropic_client,
    check_invariants,
    messages,
    openai_client,
)

from fastevents.providers import anthropic as anthropic_adapter
from fastevents.providers import openai as openai_adapter

httpx2 = pytest.importorskip("httpx2", reason="httpx2 is not installed")


class Dropping(Served):
    """Serves the first chunks of a fixture, then the connection resets."""

    def _sync_body(self) -> Iterator[bytes]:
        for chunk in self.chunks[:4]:
            self.pulled += 1
            yield chunk
        raise httpx2.ReadError("connection reset by peer")

    async def _async_body(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks[:4]:
            self.pulled += 1
            yield chunk
        raise httpx2.ReadError("connection reset by peer")


def _anthropic(served: Served, is_async: bool = False) -> Any:
    pytest.importorskip("anthropic")
    return anthropic_client(served, is_async=is_async).messages.create(**ANTHROPIC_ARGS,
                                                                       stream=True)


def _chat(served: Served, is_async: bool = False) -> Any:
    pytest.importorskip("openai")
    return openai_client(served, is_async=is_async).chat.completions.create(**CHAT_ARGS,
                                                                            stream=True)


CASES = [
    # The anthropic SDK lets the transport error through; openai wraps it.
    pytest.param(_anthropic, anthropic_adapter, "anthropic_text.sse", "ReadError",
                 "connection reset by peer", id="anthropic"),
    pytest.param(_chat, openai_adapter, "openai_chat_text.sse", "APIConnectionError",
                 "Connection error.", id="openai-chat"),
]


@pytest.mark.parametrize(("open_stream", "adapter", "fixture", "error_type", "message"), CASES)
def test_convert_ends_with_an_error_event(open_stream: Any, adapter: Any, fixture: str,
                                          error_type: str, message: str) -> None:
    events = list(adapter.convert(open_stream(Dropping(messages(fixture)))))
    check_invariants(events, ended_by_error=True)
    assert events[-1].data == {"error": message, "error_type": error_type}


@pytest.mark.parametrize(("open_stream", "adapter", "fixture", "error_type", "message"), CASES)
def test_pump_sends_the_error_closes_and_reraises(open_stream: Any, adapter: Any, fixture: str,
                                                  error_type: str, message: str,
                                                  stream_cls: Any) -> None:
    stream = stream_cls(32)
    with pytest.raises(Exception) as info:
        adapter.pump(open_stream(Dropping(messages(fixture))), stream)
    assert type(info.value).__name__ == error_type
    assert stream.closed
    assert list(stream)[-1].data == {"error": message, "error_type": error_type}


@pytest.mark.parametrize(("open_stream", "adapter", "fixture", "error_type", "message"), CASES)
def test_pump_into_a_full_block_stream_still_delivers_the_error(
    open_stream: Any, adapter: Any, fixture: str, error_type: str, message: str,
    stream_cls: Any,
) -> None:
    # One slot and a slow consumer: pump waits in each send, the Error included, then
    # closes the stream (the consumer's loop ends) and re-raises.
    import threading
    import time

    stream = stream_cls(1)
    got: list[Any] = []

    def consume() -> None:
        for ev in stream:
            got.append(ev)
            time.sleep(0.01)

    consumer = threading.Thread(target=consume)
    consumer.start()
    with pytest.raises(Exception) as info:
        adapter.pump(open_stream(Dropping(messages(fixture))), stream)
    consumer.join(timeout=60)
    assert not consumer.is_alive(), "the consumer was never released"
    assert type(info.value).__name__ == error_type
    assert got[-1].data == {"error": message, "error_type": error_type}
    check_invariants(got, ended_by_error=True)


@pytest.mark.parametrize(("open_stream", "adapter", "fixture", "error_type", "message"), CASES)
def test_apump_into_a_full_block_stream_still_delivers_the_error(
    open_stream: Any, adapter: Any, fixture: str, error_type: str, message: str,
    stream_cls: Any,
) -> None:
    import asyncio

    got: list[Any] = []

    async def main() -> BaseException | None:
        stream = stream_cls(1)

        async def consume() -> None:
            async for ev in stream:
                got.append(ev)
                await asyncio.sleep(0.01)

        consumer = asyncio.create_task(consume())
        sdk_stream = await open_stream(Dropping(messages(fixture)), True)
        try:
            await adapter.apump(sdk_stream, stream)
        except Exception as exc:
            raised: BaseException | None = exc
        else:
            raised = None
        await asyncio.wait_for(consumer, 60)  # released by the close
        return raised

    raised = asyncio.run(main())
    assert type(raised).__name__ == error_type
    assert got[-1].data == {"error": message, "error_type": error_type}
    check_invariants(got, ended_by_error=True)
