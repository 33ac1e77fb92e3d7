"""A typed program that uses fastevents the way an application would.

``tests/test_typing.py`` runs ``mypy --strict`` on this file (so it must stay free of
``Any`` leaks and ``type: ignore``), and also runs it, so it must work too. It relays a
fake LLM response: a producer thread turns tokens into events, a consumer renders them;
an asyncio pipeline does the same; a manager keeps one stream per conversation.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import fastevents as fe

TOKENS = ["Hello", ",", " typed", " world", "!"]


@dataclass
class Transcript:
    """What a consumer saw: the text, the thinking, the usage, and every event's type."""

    text: str = ""
    thinking: str = ""
    usage: dict[str, int] = field(default_factory=dict)
    kinds: list[fe.EventType] = field(default_factory=list)
    stop_reason: str | None = None


def response_events(message_id: str, tokens: Iterable[str]) -> Iterator[fe.Event]:
    """One LLM message as events, built with the eight factories."""
    yield fe.message_start_event(message_id)
    yield fe.thinking_event("the user wants a greeting")
    yield fe.content_start_event(0)
    count = 0
    for token in tokens:
        count += 1
        yield fe.text_delta_event(token)
    yield fe.content_end_event(0)
    yield fe.usage_event(prompt_tokens=3, completion_tokens=count, total_tokens=3 + count)
    yield fe.message_stop_event(message_id, "end_turn")


def apply(transcript: Transcript, event: fe.Event) -> None:
    """Fold one event into the transcript (the data dict is typed dict[str, Any])."""
    transcript.kinds.append(event.type)
    if event.type is fe.EventType.TEXT_DELTA:
        text: str = event.data["text"]
        transcript.text += text
    elif event.type == fe.EventType.THINKING:
        transcript.thinking += str(event.data["thinking"])
    elif event.type == fe.EventType.USAGE:
        transcript.usage = {k: int(v) for k, v in event.data.items()}
    elif event.type == fe.EventType.MESSAGE_STOP:
        transcript.stop_reason = str(event.data["stop_reason"])
    elif event.type == fe.EventType.ERROR:
        raise RuntimeError(event.data["error"])


# -- threads -------------------------------------------------------------------------


def produce(stream: fe.EventStream, message_id: str) -> None:
    with stream:  # closes the stream when the response is complete
        for event in response_events(message_id, TOKENS):
            stream.send(event, timeout=5.0)


def consume(stream: fe.EventStream) -> Transcript:
    transcript = Transcript()
    for event in stream:  # ends once the stream is closed and drained
        apply(transcript, event)
    return transcript


def threaded_relay() -> Transcript:
    stream = fe.EventStream(buffer_size=4, policy=fe.BackpressurePolicy.BLOCK)
    producer = threading.Thread(target=produce, args=(stream, "msg-1"))
    producer.start()
    try:
        return consume(stream)
    finally:
        producer.join()


# -- batches, policies and errors ------------------------------------------------------


def batches_and_errors() -> list[str]:
    notes: list[str] = []
    stream = fe.EventStream(2, fe.BackpressurePolicy.DROP, stream_id="lossy")
    sent: int = stream.send_many(fe.text_delta_event(t) for t in TOKENS)
    notes.append(f"dropped {len(TOKENS) - sent} of {len(TOKENS)}")
    try:
        stream.send(fe.text_delta_event("overflow"))
    except fe.StreamFull as err:
        size: int | None = err.buffer_size
        notes.append(f"full at {size} on {err.stream_id!r} during {err.op}")
        assert fe.is_stream_full(err)
    ok: bool = stream.try_send(fe.error_event("not now"))
    notes.append(f"try_send -> {ok}")
    stream.policy = fe.BackpressurePolicy.BLOCK
    stream.set_backpressure_policy(fe.BackpressurePolicy.DROP)
    batch: list[fe.Event] = stream.receive_many(10, timeout=1.0)
    notes.append(f"batch of {len(batch)}; {len(stream)} left of {stream.buffer_size}")
    maybe: fe.Event | None = stream.try_receive()
    assert maybe is None
    try:
        stream.receive(timeout=0.01)
    except TimeoutError:
        notes.append("receive timed out")
    cancel = threading.Event()
    cancel.set()
    try:
        stream.receive(cancel=cancel)
    except fe.Cancelled as err:
        notes.append(f"cancelled: {err}")
    stream.close()
    assert stream.closed
    try:
        stream.send(fe.text_delta_event("late"))
    except fe.StreamError as err:
        assert fe.is_stream_closed(err) and isinstance(err, fe.StreamClosed)
        notes.append(str(err))
    try:
        stream.send(fe.Event(fe.EventType.TEXT_DELTA, {"text": "x"}, timestamp=None))
    except fe.InvalidEvent as err:
        assert fe.is_invalid_event(err)
    return notes


def wire_round_trip() -> fe.Event:
    event = fe.new_event(fe.EventType.USAGE, {"prompt_tokens": 1, "completion_tokens": 2,
                                              "total_tokens": 3})
    when: datetime | None = event.timestamp
    assert when is not None and when.tzinfo is not None
    line: str = event.to_json()
    back = fe.Event.from_json(line)
    assert back == event
    as_dict = event.to_dict()
    again = fe.Event.from_dict(as_dict)
    assert again == event
    kind: fe.EventType = fe.parse_event_type("TextDelta")
    assert kind is fe.EventType.parse(str(kind))
    explicit = fe.Event(kind, {"text": "hi"}, timestamp=datetime(2024, 1, 1, tzinfo=timezone.utc))
    explicit.validate()
    return explicit


# -- the manager -------------------------------------------------------------------------


def managed_conversations() -> list[fe.StreamInfo]:
    manager = fe.StreamManager(buffer_size=8)
    first: fe.EventStream = manager.create_stream("conv-1")
    second, created = manager.get_or_create("conv-2")
    assert created and "conv-2" in manager and len(manager) == manager.stream_count() == 2
    first.send(fe.text_delta_event("queued"))
    try:
        manager.create_stream("conv-1")
    except fe.StreamExists as err:
        assert err.stream_id == "conv-1"
    try:
        manager.get_stream("nope")
    except fe.StreamNotFound as err:
        assert fe.is_stream_not_found(err)
    infos = manager.list_stream_info()
    info = manager.get_stream_info("conv-1")
    load: int = info.current_load
    active: datetime = info.last_activity
    assert load == 1 and active.tzinfo is not None
    ids: list[str] = manager.list_streams()
    removed: int = manager.cleanup_inactive(timedelta(hours=1))
    removed += manager.cleanup_inactive(3600.0)
    assert removed == 0 and sorted(ids) == ["conv-1", "conv-2"]
    manager.close_stream("conv-2")
    assert second.closed
    manager.close_all()
    return infos


# -- resume (round two): sequence numbers, history, one Stream type ------------------------


def resume(stream: fe.Stream) -> list[int]:
    """Any stream: a consumer handles two events, goes away, and resumes."""
    handled: list[int] = []
    for seq, _event in stream.entries():
        handled.append(seq)
        if len(handled) == 2:
            break
    last: int = handled[-1]
    kept: list[tuple[int, fe.Event]] = stream.replay(last)
    assert kept == []
    for seq, _event in stream.entries(after=last):
        handled.append(seq)
    return handled


def resumable() -> list[int]:
    stream: fe.Stream = fe.EventStream(16, history=4)  # fe.Stream accepts every stream
    assert stream.history == 4
    first: fe.Event = next(response_events("msg-3", TOKENS))
    stream.send(first)
    entry: tuple[int, fe.Event] | None = stream.try_receive_entry()
    assert entry is not None and entry[0] == 1 and entry[1] is first
    stream.send_many(response_events("msg-3", TOKENS))
    seq, _ = stream.receive_entry(timeout=5.0)
    assert seq == 2 and stream.last_seq >= seq
    stream.close()
    try:
        stream.replay(0)
    except fe.HistoryLost as err:  # history=4 keeps 1 and 2
        oldest: int | None = err.oldest
        assert oldest == 1
    token: str = stream.instance_id
    dropped: int = stream.dropped
    assert token and dropped == 0
    manager = fe.StreamManager(4, fe.BackpressurePolicy.DROP, history=2)
    lossy = manager.create_stream("lossy")
    while lossy.try_send(first):
        pass
    info = manager.get_stream_info("lossy")
    counts: tuple[int, int, int] = (info.dropped, info.waiting_senders, info.waiting_receivers)
    assert counts == (1, 0, 0)
    lossy.close()
    assert manager.get_or_create("lossy")[1]  # a closed stream is replaced
    return resume(stream)


async def aresume(stream: fe.Stream) -> list[int]:
    out: list[int] = []
    first, _event = await stream.areceive_entry(timeout=5.0)
    out.append(first)
    async for seq, _event in stream.aentries(after=first):
        out.append(seq)
    return out


# -- asyncio -----------------------------------------------------------------------------


async def aproduce(stream: fe.EventStream) -> None:
    events = list(response_events("msg-2", TOKENS))
    await stream.asend(events[0], timeout=5.0)
    n: int = await stream.asend_many(events[1:], timeout=5.0)
    assert n == len(events) - 1
    stream.close()


async def aconsume(stream: fe.EventStream) -> Transcript:
    transcript = Transcript()
    first: fe.Event = await stream.areceive(timeout=5.0)
    apply(transcript, first)
    some: list[fe.Event] = await stream.areceive_many(2, timeout=5.0)
    for event in some:
        apply(transcript, event)
    async for event in stream:
        apply(transcript, event)
    return transcript


async def async_relay() -> Transcript:
    stream = fe.EventStream(3)
    _, transcript = await asyncio.gather(aproduce(stream), aconsume(stream))
    return transcript


def main() -> int:
    print(f"fastevents {fe.__version__} ({fe.IMPLEMENTATION} core)")
    for transcript in (threaded_relay(), asyncio.run(async_relay())):
        assert transcript.text == "".join(TOKENS), transcript
        assert transcript.stop_reason == "end_turn"
        assert transcript.usage["total_tokens"] == 3 + len(TOKENS)
        assert transcript.kinds[0] is fe.EventType.MESSAGE_START
    for note in batches_and_errors():
        print(" ", note)
    print(" ", wire_round_trip())
    print(" ", len(managed_conversations()), "managed streams")
    numbers = resumable()
    assert numbers == list(range(3, 3 + len(numbers))) and len(numbers) == 10
    astream = fe.EventStream(16)
    astream.send_many(response_events("msg-4", TOKENS))
    astream.close()
    numbers = asyncio.run(aresume(astream))
    assert numbers == list(range(1, 12))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
