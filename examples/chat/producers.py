"""Where the answer comes from: Claude, OpenAI, or a recorded answer replayed offline.

A producer is ``async def produce(prompt, stream) -> None``: it sends the answer's events
into ``stream`` and closes it. The provider adapters (``fastevents.providers``) do the
mapping; BLOCK backpressure throttles the read from the provider when the readers lag.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import fastevents as fe

Producer = Callable[[str, fe.Stream], Coroutine[Any, Any, None]]

RECORDED = Path(__file__).with_name("recorded.jsonl")
# Seconds between two replayed events: ~40 tokens/s, the pace of a fast hosted model.
DEFAULT_PACE = 0.025
_TOKEN_TYPES = {fe.EventType.TEXT_DELTA, fe.EventType.THINKING}


def recorded_events() -> list[fe.Event]:
    """The recorded answer, as fastevents events (what the Anthropic adapter produced)."""
    lines = RECORDED.read_text(encoding="utf-8").splitlines()
    return [fe.Event.from_json(line) for line in lines if line.strip()]


def recorded_text() -> str:
    """The answer's visible text: what the page must show once the answer is complete."""
    return "".join(
        e.data["text"] for e in recorded_events() if e.type == fe.EventType.TEXT_DELTA
    )


async def replay(prompt: str, stream: fe.Stream, *, pace: float | None = None) -> None:
    """Replay the recorded answer (whatever the prompt) at a realistic token pace."""
    if pace is None:
        pace = float(os.environ.get("FASTEVENTS_CHAT_PACE", DEFAULT_PACE))
    try:
        for recorded in recorded_events():
            if recorded.type in _TOKEN_TYPES and pace > 0:
                await asyncio.sleep(pace)
            # Stamped now: a replay is a new answer, not an old one.
            await stream.asend(fe.Event(recorded.type, recorded.data))
    finally:
        await _close(stream)


async def anthropic_answer(prompt: str, stream: fe.Stream) -> None:
    """Ask Claude (``ANTHROPIC_API_KEY``; ``FASTEVENTS_CHAT_MODEL`` picks the model)."""
    import anthropic

    from fastevents.providers.anthropic import apump

    async def run() -> None:
        client = anthropic.AsyncAnthropic()
        model = os.environ.get("FASTEVENTS_CHAT_MODEL", "claude-sonnet-4-5")
        # messages.stream() is a context manager; the adapter reads the stream it gives
        # (raw events and the SDK's helper events alike).
        async with client.messages.stream(
            model=model, max_tokens=2048, messages=[{"role": "user", "content": prompt}],
        ) as sdk_stream:
            await apump(sdk_stream, stream, close=False)

    await _answer(run(), stream)


async def openai_answer(prompt: str, stream: fe.Stream) -> None:
    """Ask OpenAI (``OPENAI_API_KEY``; ``FASTEVENTS_CHAT_MODEL`` picks the model)."""
    import openai

    from fastevents.providers.openai import apump

    async def run() -> None:
        client = openai.AsyncOpenAI()
        model = os.environ.get("FASTEVENTS_CHAT_MODEL", "gpt-4o-mini")
        sdk_stream = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": prompt}], stream=True,
            stream_options={"include_usage": True},  # token counts -> a Usage event
        )
        async with sdk_stream:  # closes the HTTP response, also when cancelled
            await apump(sdk_stream, stream, close=False)

    await _answer(run(), stream)


def pick_producer() -> tuple[str, Producer]:
    """The provider the environment asks for: a key picks a live model, else the replay."""
    if os.environ.get("ANTHROPIC_API_KEY"):
        return "anthropic", anthropic_answer
    if os.environ.get("OPENAI_API_KEY"):
        return "openai", openai_answer
    return "replay", replay


async def _answer(run: Awaitable[None], stream: fe.Stream) -> None:
    """Run a provider call; a failure before the first event still reaches the page."""
    try:
        await run
    except Exception as exc:
        # apump already sent an error the SDK raised mid-stream; one raised before the
        # stream started (a bad key, an unknown model) has not been sent yet.
        if await asyncio.to_thread(lambda: stream.last_seq) == 0:
            await stream.asend(fe.error_event(str(exc) or type(exc).__name__,
                                              error_type=type(exc).__name__))
        raise
    finally:
        await _close(stream)


async def _close(stream: fe.Stream) -> None:
    # Readers end once the stream is closed and drained: close it however the answer
    # ends. A Redis stream's close() is a round trip: off the event loop.
    try:
        await asyncio.to_thread(stream.close)
    except fe.StreamClosed:
        pass
