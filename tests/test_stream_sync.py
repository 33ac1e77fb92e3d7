"""The synchronous EventStream API (API.md "EventStream", "Details", "Robustness").

Every test runs against both twins through ``stream_cls`` (see conftest.py). Every call
that may block has a timeout, or runs in a background thread joined with a timeout, so a
bug fails a test instead of hanging the run. Nothing asserts an upper bound on timing.
"""

from __future__ import annotations

import _thread
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import fastevents as fe
from _bg import JOIN, Bg

BLOCK = fe.BackpressurePolicy.BLOCK
DROP = fe.BackpressurePolicy.DROP

SETTLE = 0.1  # time given to a background call to reach its wait


def ev(i: int = 0) -> fe.Event:
    return fe.text_delta_event(str(i))


def bad_event() -> fe.Event:
    """An Event whose validate() fails (explicit None timestamp)."""
    return fe.Event(fe.EventType.TEXT_DELTA, {"text": "x"}, timestamp=None)


def started(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Bg:
    """Start a background call and check that it is (still) waiting after a moment."""
    bg = Bg(fn, *args, **kwargs)
    time.sleep(SETTLE)
    assert bg.waiting, f"expected the call to wait; it ended with {bg.result!r} / {bg.exc!r}"
    return bg


def full_stream(stream_cls: type, size: int = 1, policy: Any = BLOCK, sid: str = "s") -> Any:
    s = stream_cls(buffer_size=size, policy=policy, stream_id=sid)
    for i in range(size):
        s.send(ev(i), timeout=JOIN)
    return s


# -- construction ------------------------------------------------------------------------


def test_defaults(stream_cls: type) -> None:
    s = stream_cls()
    assert s.buffer_size == 100
    assert len(s) == 0
    assert s.closed is False
    assert s.policy == BLOCK
    assert s.stream_id is None
    assert isinstance(s.buffer_size, int)


@pytest.mark.parametrize("size", [0, -1, -100])
def test_non_positive_buffer_size_means_100(stream_cls: type, size: int) -> None:
    assert stream_cls(size).buffer_size == 100
    assert stream_cls(buffer_size=size).buffer_size == 100


def test_arguments_are_kept(stream_cls: type) -> None:
    s = stream_cls(7, DROP, stream_id="chat-1")
    assert s.buffer_size == 7
    assert s.policy == DROP
    assert s.stream_id == "chat-1"
    s2 = stream_cls(buffer_size=1, policy=BLOCK, stream_id="x")
    assert (s2.buffer_size, s2.policy, s2.stream_id) == (1, BLOCK, "x")


@pytest.mark.parametrize("size", ["10", 3.5, None, True, object()])
def test_bad_buffer_size(stream_cls: type, size: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        stream_cls(size)
    with pytest.raises((TypeError, ValueError)):
        stream_cls(buffer_size=size)


@pytest.mark.parametrize("policy", [2, -1, 99, "BLOCK", "drop", None, 1.0])
def test_bad_policy_at_construction(stream_cls: type, policy: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        stream_cls(10, policy)


@pytest.mark.parametrize("policy", [2, -1, "DROP", None, 0.0])
def test_bad_policy_set_changes_nothing(stream_cls: type, policy: Any) -> None:
    s = stream_cls(10, BLOCK)
    with pytest.raises((TypeError, ValueError)):
        s.policy = policy
    assert s.policy == BLOCK
    with pytest.raises((TypeError, ValueError)):
        s.set_backpressure_policy(policy)
    assert s.policy == BLOCK


def test_policy_property_and_setter(stream_cls: type) -> None:
    s = stream_cls(10)
    s.policy = DROP
    assert s.policy == DROP
    assert isinstance(s.policy, fe.BackpressurePolicy)
    s.set_backpressure_policy(BLOCK)
    assert s.policy == BLOCK
    s.set_backpressure_policy(DROP)
    assert s.policy is DROP


@pytest.mark.parametrize("size", [10**8, 2**31])
def test_huge_buffer_size_is_cheap_and_works(stream_cls: type, size: int) -> None:
    streams = [stream_cls(size) for _ in range(20)]  # would be gigabytes if preallocated
    s = streams[0]
    assert s.buffer_size == size
    events = [ev(i) for i in range(1000)]
    for e in events:
        assert s.try_send(e)
    assert len(s) == 1000
    assert s.send_many(events, timeout=1) == 1000
    assert len(s) == 2000
    got = s.receive_many(5000, timeout=1)
    assert got == events + events
    assert len(s) == 0


# -- send / receive ----------------------------------------------------------------------


def test_receive_returns_the_very_object(stream_cls: type) -> None:
    s = stream_cls(10)
    e1, e2, e3, e4 = ev(1), ev(2), ev(3), ev(4)
    s.send(e1)
    assert s.receive(timeout=1) is e1
    assert s.try_send(e2)
    assert s.try_receive() is e2
    s.send_many([e3, e4])
    got = s.receive_many(10, timeout=1)
    assert got[0] is e3 and got[1] is e4
    s.send(e1)
    s.close()
    drained = list(s)  # iteration ends once closed and drained
    assert len(drained) == 1 and drained[0] is e1


def test_fifo_order_and_len(stream_cls: type) -> None:
    s = stream_cls(50)
    events = [ev(i) for i in range(50)]
    for n, e in enumerate(events, 1):
        s.send(e, timeout=1)
        assert len(s) == n
    out = []
    for n in range(50, 0, -1):
        assert len(s) == n
        out.append(s.receive(timeout=1))
    assert len(s) == 0
    assert [o.data["text"] for o in out] == [str(i) for i in range(50)]
    assert all(a is b for a, b in zip(out, events, strict=True))


def test_try_send_and_try_receive(stream_cls: type) -> None:
    for policy in (BLOCK, DROP):
        s = stream_cls(2, policy)
        assert s.try_receive() is None
        a, b = ev(1), ev(2)
        assert s.try_send(a) is True
        assert s.try_send(b) is True
        assert s.try_send(ev(3)) is False  # full: False under any policy, never raises
        assert len(s) == 2
        assert s.try_receive() is a
        assert s.try_receive() is b
        assert s.try_receive() is None


def test_drop_full_raises_stream_full_without_blocking(stream_cls: type) -> None:
    s = full_stream(stream_cls, 2, DROP, sid="drop-1")
    bg = Bg(s.send, ev(9))  # no timeout: must not wait at all
    exc = bg.error()
    assert isinstance(exc, fe.StreamFull)
    assert isinstance(exc, fe.StreamError)
    assert exc.buffer_size == 2
    assert exc.stream_id == "drop-1"
    assert "drop-1" in str(exc)
    assert fe.is_stream_full(exc)
    assert len(s) == 2
    # Dropped, not queued: the buffer still holds the first two.
    assert [s.try_receive().data["text"], s.try_receive().data["text"]] == ["0", "1"]
    s.send(ev(3))
    assert len(s) == 1


def test_block_waits_for_room(stream_cls: type) -> None:
    s = full_stream(stream_cls, 1, BLOCK)
    late = ev(99)
    bg = started(s.send, late, timeout=JOIN)
    first = s.receive(timeout=1)
    assert first.data["text"] == "0"
    bg.join()
    assert s.receive(timeout=1) is late


def test_receive_waits_for_an_event(stream_cls: type) -> None:
    s = stream_cls(5)
    bg = started(s.receive, timeout=JOIN)
    e = ev(1)
    s.send(e)
    assert bg.join() is e


# -- timeouts ----------------------------------------------------------------------------


def test_send_timeout(stream_cls: type) -> None:
    s = full_stream(stream_cls, 1, BLOCK)
    with pytest.raises(TimeoutError) as info:
        s.send(ev(1), timeout=0.05)
    assert isinstance(info.value, TimeoutError)  # the builtin, whatever the Python version
    assert len(s) == 1


def test_receive_timeout(stream_cls: type) -> None:
    s = stream_cls(5)
    with pytest.raises(TimeoutError):
        s.receive(timeout=0.05)
    with pytest.raises(TimeoutError):
        s.receive_many(3, timeout=0.05)


def test_timeout_zero_means_try_once(stream_cls: type) -> None:
    s = stream_cls(1)
    e = ev(1)
    s.send(e, timeout=0)  # room: succeeds
    with pytest.raises(TimeoutError):
        s.send(ev(2), timeout=0)
    with pytest.raises(TimeoutError):
        s.send_many([ev(3)], timeout=0)
    assert len(s) == 1
    assert s.receive(timeout=0) is e
    with pytest.raises(TimeoutError):
        s.receive(timeout=0)
    with pytest.raises(TimeoutError):
        s.receive_many(1, timeout=0)
    s.send(e)
    assert s.receive_many(1, timeout=0) == [e]


def test_timeout_accepts_ints_and_floats(stream_cls: type) -> None:
    s = stream_cls(5)
    s.send(ev(1), timeout=1)
    s.send(ev(2), timeout=1.5)
    s.receive(timeout=1)
    s.receive(timeout=0.5)


@pytest.mark.parametrize("timeout", [-1, -0.001, float("-inf")])
def test_negative_timeout_is_value_error(stream_cls: type, timeout: float) -> None:
    s = stream_cls(5)
    with pytest.raises(ValueError):
        s.send(ev(1), timeout=timeout)
    with pytest.raises(ValueError):
        s.send_many([ev(1)], timeout=timeout)
    assert len(s) == 0
    s.send(ev(2))
    with pytest.raises(ValueError):
        s.receive(timeout=timeout)
    with pytest.raises(ValueError):
        s.receive_many(1, timeout=timeout)
    assert len(s) == 1


@pytest.mark.parametrize("timeout", ["1", object(), [1], b"1"])
def test_bad_timeout_type(stream_cls: type, timeout: Any) -> None:
    s = stream_cls(5)
    with pytest.raises(TypeError):
        s.send(ev(1), timeout=timeout)
    with pytest.raises(TypeError):
        s.send_many([ev(1)], timeout=timeout)
    assert len(s) == 0
    s.send(ev(2))
    with pytest.raises(TypeError):
        s.receive(timeout=timeout)
    with pytest.raises(TypeError):
        s.receive_many(1, timeout=timeout)
    assert len(s) == 1


# -- cancel tokens -----------------------------------------------------------------------


def test_cancel_set_before_wait(stream_cls: type) -> None:
    token = threading.Event()
    token.set()
    s = full_stream(stream_cls, 1, BLOCK, sid="c-1")
    with pytest.raises(fe.Cancelled) as info:
        s.send(ev(1), timeout=JOIN, cancel=token)
    assert isinstance(info.value, fe.StreamError)
    assert "c-1" in str(info.value)
    assert len(s) == 1
    empty = stream_cls(1)
    with pytest.raises(fe.Cancelled):
        empty.receive(timeout=JOIN, cancel=token)


def test_cancel_during_wait(stream_cls: type) -> None:
    s = full_stream(stream_cls, 1, BLOCK)
    token = threading.Event()
    bg = started(s.send, ev(1), timeout=JOIN, cancel=token)
    token.set()
    assert isinstance(bg.error(), fe.Cancelled)
    assert len(s) == 1

    empty = stream_cls(1)
    token2 = threading.Event()
    bg = started(empty.receive, timeout=JOIN, cancel=token2)
    token2.set()
    assert isinstance(bg.error(), fe.Cancelled)
    # Nothing was lost: a later event still arrives.
    e = ev(2)
    empty.send(e)
    assert empty.receive(timeout=1) is e


def test_cancel_only_interrupts_waiting(stream_cls: type) -> None:
    token = threading.Event()
    token.set()
    s = stream_cls(2)
    e = ev(1)
    s.send(e, cancel=token)  # room: the token does not matter
    assert len(s) == 1
    assert s.receive(cancel=token) is e  # an event is there: no wait, no Cancelled


def test_cancel_token_duck_typed(stream_cls: type) -> None:
    class Token:
        def __init__(self) -> None:
            self.flag = False

        def is_set(self) -> bool:
            return self.flag

    token = Token()
    s = stream_cls(1)
    bg = started(s.receive, timeout=JOIN, cancel=token)
    token.flag = True
    assert isinstance(bg.error(), fe.Cancelled)


@pytest.mark.parametrize("cancel", [object(), "yes", True, 1])
def test_bad_cancel_type(stream_cls: type, cancel: Any) -> None:
    s = stream_cls(5)
    with pytest.raises(TypeError):
        s.send(ev(1), cancel=cancel)
    assert len(s) == 0
    s.send(ev(2))
    with pytest.raises(TypeError):
        s.receive(cancel=cancel)
    assert len(s) == 1


# -- close -------------------------------------------------------------------------------


def test_close_wakes_blocked_sender(stream_cls: type) -> None:
    s = full_stream(stream_cls, 1, BLOCK, sid="closing")
    bg = started(s.send, ev(1), timeout=JOIN)
    s.close()
    exc = bg.error()
    assert isinstance(exc, fe.StreamClosed)
    assert fe.is_stream_closed(exc)
    assert "closing" in str(exc)
    # The event already buffered is still there.
    assert len(s) == 1
    assert s.receive(timeout=1).data["text"] == "0"


def test_close_wakes_blocked_receivers(stream_cls: type) -> None:
    s = stream_cls(5)
    receivers = [Bg(s.receive, timeout=JOIN) for _ in range(3)]
    time.sleep(SETTLE)
    assert all(r.waiting for r in receivers)
    s.close()
    for r in receivers:
        assert isinstance(r.error(), fe.StreamClosed)


def test_close_lets_blocked_iterators_drain_then_end(stream_cls: type) -> None:
    s = stream_cls(10)
    consumer = started(list, s)
    events = [ev(i) for i in range(5)]
    for e in events:
        s.send(e)
    s.close()
    got = consumer.join()
    assert len(got) == 5 and all(a is b for a, b in zip(got, events, strict=True))


def test_buffered_events_survive_close(stream_cls: type) -> None:
    s = stream_cls(5, stream_id="drain")
    a, b, c = ev(1), ev(2), ev(3)
    s.send_many([a, b, c])
    s.close()
    assert s.closed is True
    assert len(s) == 3
    assert s.receive(timeout=1) is a
    assert s.receive_many(1, timeout=1) == [b]
    assert s.try_receive() is c
    # closed and drained
    assert s.try_receive() is None
    assert s.receive_many(5, timeout=1) == []
    with pytest.raises(fe.StreamClosed) as info:
        s.receive(timeout=1)
    assert "drain" in str(info.value)
    assert list(s) == []


def test_second_close_raises(stream_cls: type) -> None:
    s = stream_cls(5, stream_id="twice")
    s.close()
    with pytest.raises(fe.StreamClosed) as info:
        s.close()
    assert info.value.stream_id == "twice"
    assert str(info.value).startswith("stream twice: close:")
    assert s.closed is True


def test_send_on_closed(stream_cls: type) -> None:
    s = stream_cls(5, stream_id="gone")
    s.close()
    with pytest.raises(fe.StreamClosed) as info:
        s.send(ev(1))
    assert info.value.stream_id == "gone"
    assert str(info.value).startswith("stream gone: send:")
    with pytest.raises(fe.StreamClosed):
        s.try_send(ev(1))
    with pytest.raises(fe.StreamClosed) as info2:
        s.send_many([ev(1), ev(2)])
    assert info2.value.sent == 0
    assert len(s) == 0


def test_closed_property(stream_cls: type) -> None:
    s = stream_cls(5)
    assert s.closed is False
    s.close()
    assert s.closed is True


def test_context_manager(stream_cls: type) -> None:
    with stream_cls(5) as s:
        assert s.buffer_size == 5
        assert not s.closed
        s.send(ev(1))
    assert s.closed
    assert len(s) == 1  # still receivable
    # Closing inside the block is fine: exit does not close twice.
    with stream_cls(5) as s2:
        s2.close()
    assert s2.closed
    # An exception propagates and the stream is closed.
    with pytest.raises(RuntimeError):
        with stream_cls(5) as s3:
            raise RuntimeError("boom")
    assert s3.closed


# -- send_many / receive_many ------------------------------------------------------------


def test_send_many_basic(stream_cls: type) -> None:
    s = stream_cls(10)
    events = [ev(i) for i in range(5)]
    assert s.send_many(events) == 5
    assert len(s) == 5
    assert s.send_many([]) == 0
    assert s.send_many(iter([ev(5), ev(6)])) == 2  # any iterable
    got = s.receive_many(10, timeout=1)
    assert got[:5] == events and all(a is b for a, b in zip(got[:5], events, strict=True))
    assert [g.data["text"] for g in got] == [str(i) for i in range(7)]


@pytest.mark.parametrize("bad", [None, "not an event", 42, {"type": 0}])
def test_send_many_validates_all_first(stream_cls: type, bad: Any) -> None:
    for policy in (BLOCK, DROP):
        s = stream_cls(10, policy, stream_id="batch")
        with pytest.raises(fe.InvalidEvent) as info:
            s.send_many([ev(1), ev(2), bad, ev(3)])
        assert len(s) == 0
        assert "batch" in str(info.value)


def test_send_many_validates_event_contents(stream_cls: type) -> None:
    s = stream_cls(10)
    with pytest.raises(fe.InvalidEvent):
        s.send_many([ev(1), bad_event()])
    assert len(s) == 0


def test_send_many_drop_enqueues_what_fits(stream_cls: type) -> None:
    s = stream_cls(3, DROP)
    events = [ev(i) for i in range(5)]
    bg = Bg(s.send_many, events)  # must not wait
    assert bg.join() == 3
    assert len(s) == 3
    assert s.receive_many(10, timeout=1) == events[:3]
    s.send(ev(9))
    assert s.send_many(events) == 2
    assert [x.data["text"] for x in s.receive_many(10, timeout=1)] == ["9", "0", "1"]
    s2 = full_stream(stream_cls, 2, DROP)
    assert s2.send_many([ev(7)]) == 0


def test_send_many_block_waits_for_room(stream_cls: type) -> None:
    s = stream_cls(2, BLOCK)
    events = [ev(i) for i in range(6)]
    bg = started(s.send_many, events, timeout=JOIN)
    got: list[fe.Event] = []
    while len(got) < 6:
        got.extend(s.receive_many(6, timeout=JOIN))
    assert bg.join() == 6
    assert got == events and all(a is b for a, b in zip(got, events, strict=True))


def test_send_many_timeout_carries_sent(stream_cls: type) -> None:
    s = stream_cls(2, BLOCK)
    with pytest.raises(TimeoutError) as info:
        s.send_many([ev(i) for i in range(5)], timeout=0.05)
    assert getattr(info.value, "sent", None) == 2
    assert [x.data["text"] for x in s.receive_many(5, timeout=1)] == ["0", "1"]


def test_send_many_close_carries_sent(stream_cls: type) -> None:
    s = stream_cls(2, BLOCK)
    bg = started(s.send_many, [ev(i) for i in range(5)], timeout=JOIN)
    s.close()
    exc = bg.error()
    assert isinstance(exc, fe.StreamClosed)
    assert exc.sent == 2
    assert len(s) == 2


def test_receive_many_waits_for_at_least_one(stream_cls: type) -> None:
    s = stream_cls(10)
    bg = started(s.receive_many, 5, timeout=JOIN)
    e = ev(1)
    s.send(e)
    got = bg.join()
    assert len(got) >= 1 and got[0] is e


def test_receive_many_up_to_max_items(stream_cls: type) -> None:
    s = stream_cls(10)
    events = [ev(i) for i in range(5)]
    s.send_many(events)
    assert s.receive_many(3, timeout=1) == events[:3]
    assert s.receive_many(3, timeout=1) == events[3:]
    s.send(events[0])
    assert s.receive_many(1) == [events[0]]
    assert len(s) == 0


def test_receive_many_closed_and_drained(stream_cls: type) -> None:
    s = stream_cls(10)
    s.send(ev(1))
    s.close()
    assert len(s.receive_many(5, timeout=1)) == 1
    assert s.receive_many(5, timeout=1) == []
    assert s.receive_many(5) == []  # no timeout: still returns at once


def test_receive_many_woken_by_close(stream_cls: type) -> None:
    s = stream_cls(10)
    bg = started(s.receive_many, 5, timeout=JOIN)
    s.close()
    assert bg.join() == []


@pytest.mark.parametrize("max_items", [0, -1])
def test_receive_many_bad_max_items(stream_cls: type, max_items: int) -> None:
    s = stream_cls(10)
    s.send(ev(1))
    with pytest.raises(ValueError):
        s.receive_many(max_items, timeout=1)
    assert len(s) == 1


# -- iteration ---------------------------------------------------------------------------


def test_iteration_ends_on_close_and_drain(stream_cls: type) -> None:
    s = stream_cls(10)
    events = [ev(i) for i in range(4)]
    s.send_many(events)
    s.close()
    got = list(s)
    assert got == events and all(a is b for a, b in zip(got, events, strict=True))
    assert list(s) == []


def test_iteration_blocks_for_each_event(stream_cls: type) -> None:
    s = stream_cls(1)
    consumer = Bg(list, s)
    events = [ev(i) for i in range(20)]
    for e in events:
        s.send(e, timeout=JOIN)
    s.close()
    assert consumer.join() == events


# -- policy switch -----------------------------------------------------------------------


def test_policy_is_read_when_a_send_starts(stream_cls: type) -> None:
    s = full_stream(stream_cls, 1, BLOCK)
    late = ev(42)
    bg = started(s.send, late, timeout=JOIN)
    s.policy = DROP
    time.sleep(SETTLE)
    assert bg.waiting  # still waiting under BLOCK, did not turn into StreamFull
    assert s.receive(timeout=1).data["text"] == "0"
    bg.join()
    # A send that starts now sees DROP.
    with pytest.raises(fe.StreamFull):
        s.send(ev(43))
    assert s.receive(timeout=1) is late


def test_send_many_policy_is_read_when_it_starts(stream_cls: type) -> None:
    s = stream_cls(1, BLOCK)
    events = [ev(i) for i in range(3)]
    bg = started(s.send_many, events, timeout=JOIN)
    s.set_backpressure_policy(DROP)
    got: list[fe.Event] = []
    while len(got) < 3:
        got.extend(s.receive_many(3, timeout=JOIN))
    assert bg.join() == 3
    assert got == events


# -- invalid events and messages ---------------------------------------------------------


def test_send_none(stream_cls: type) -> None:
    s = stream_cls(5, stream_id="nil")
    with pytest.raises(fe.InvalidEvent) as info:
        s.send(None)
    assert "None" in str(info.value)
    assert "nil" in str(info.value)
    assert info.value.stream_id == "nil"
    assert fe.is_invalid_event(info.value)
    with pytest.raises(fe.InvalidEvent) as info2:
        s.try_send(None)
    assert "None" in str(info2.value)
    assert len(s) == 0


@pytest.mark.parametrize("bad", ["text", 1, {"type": "TextDelta", "data": {}}, object()])
def test_send_non_event(stream_cls: type, bad: Any) -> None:
    s = stream_cls(5, stream_id="typed")
    with pytest.raises(fe.InvalidEvent) as info:
        s.send(bad)
    assert "typed" in str(info.value)
    with pytest.raises(fe.InvalidEvent):
        s.try_send(bad)
    assert len(s) == 0


def test_send_event_failing_validate(stream_cls: type) -> None:
    s = stream_cls(5, stream_id="val")
    with pytest.raises(fe.InvalidEvent) as info:
        s.send(bad_event())
    assert str(info.value).startswith("stream val: ")
    assert "timestamp" in str(info.value)
    with pytest.raises(fe.InvalidEvent):
        s.try_send(fe.Event(999, {}))
    with pytest.raises(fe.InvalidEvent):
        s.send(fe.Event(fe.EventType.USAGE, None))
    assert len(s) == 0


def test_invalid_event_checked_before_closed_or_full(stream_cls: type) -> None:
    # Under DROP a bad event must not be reported as StreamFull (nor wait under BLOCK).
    s = full_stream(stream_cls, 1, DROP)
    with pytest.raises(fe.InvalidEvent):
        s.send(None)
    b = full_stream(stream_cls, 1, BLOCK)
    with pytest.raises(fe.InvalidEvent):
        b.send(bad_event(), timeout=JOIN)


def test_errors_carry_stream_id_and_op(stream_cls: type) -> None:
    s = stream_cls(1, DROP, stream_id="ids-7")
    s.send(ev(1))
    with pytest.raises(fe.StreamFull) as info:
        s.send(ev(2))
    assert info.value.stream_id == "ids-7"
    assert info.value.op == "send"
    assert str(info.value).startswith("stream ids-7: send: ")


def test_errors_without_stream_id(stream_cls: type) -> None:
    s = stream_cls(1)
    s.close()
    with pytest.raises(fe.StreamClosed) as info:
        s.send(ev(1))
    assert info.value.stream_id is None
    assert str(info.value)  # readable, whatever it says for a nameless stream


def test_wrong_args_change_nothing(stream_cls: type) -> None:
    s = stream_cls(3, BLOCK, stream_id="same")
    s.send(ev(1))
    calls: list[Callable[[], Any]] = [
        lambda: s.send(ev(2), timeout="1"),
        lambda: s.send(ev(2), cancel=object()),
        lambda: s.send_many([ev(2)], timeout=object()),
        lambda: s.receive(timeout="1"),
        lambda: s.receive_many("2"),
        lambda: s.receive_many(2, timeout=-1),
        lambda: s.set_backpressure_policy(7),
    ]
    for call in calls:
        with pytest.raises((TypeError, ValueError)):
            call()
    assert len(s) == 1
    assert s.policy == BLOCK
    assert s.buffer_size == 3
    assert not s.closed
    assert s.receive(timeout=1).data["text"] == "1"


# -- Ctrl-C ------------------------------------------------------------------------------


def _interrupted_by_ctrl_c(call: Callable[[], Any], unblock: Callable[[], Any]) -> bool:
    """True if ``call`` (blocked) raised KeyboardInterrupt after a simulated Ctrl-C.

    ``unblock`` ends the wait some seconds later in case the interrupt is not noticed, so
    a failure cannot hang the run; a late interrupt is absorbed here so it cannot reach
    pytest.
    """
    fired = threading.Event()

    def interrupt() -> None:
        fired.set()
        _thread.interrupt_main()

    timer = threading.Timer(0.2, interrupt)
    rescue = threading.Timer(5.0, unblock)
    got = False
    # A process started in the background inherits SIGINT ignored, and then
    # interrupt_main() does nothing: install Python's own handler for the test.
    old_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        timer.start()
        rescue.start()
        try:
            call()
        except KeyboardInterrupt:
            got = True
        except BaseException:
            pass
        if not got:
            try:
                fired.wait(10)
                time.sleep(0.5)  # let a pending interrupt fire here, not in pytest
            except KeyboardInterrupt:
                pass
    except KeyboardInterrupt:  # pragma: no cover - landed between two statements above
        pass
    finally:
        timer.cancel()
        rescue.cancel()
        signal.signal(signal.SIGINT, old_handler)
    return got


def _unclose(s: Any) -> Callable[[], None]:
    def close() -> None:
        if not s.closed:
            s.close()

    return close


ctrl_c = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="Ctrl-C is delivered to the main thread only",
)


@ctrl_c
def test_ctrl_c_interrupts_receive(stream_cls: type) -> None:
    s = stream_cls(1)
    assert _interrupted_by_ctrl_c(lambda: s.receive(timeout=30), _unclose(s))


@ctrl_c
def test_ctrl_c_interrupts_send(stream_cls: type) -> None:
    s = full_stream(stream_cls, 1, BLOCK)
    assert _interrupted_by_ctrl_c(lambda: s.send(ev(1)), _unclose(s))
    assert len(s) == 1


@ctrl_c
def test_ctrl_c_during_send_releases_the_event(stream_cls: type) -> None:
    """An interrupted send drops the reference it took for the buffer (no leak)."""
    s = full_stream(stream_cls, 1, BLOCK)
    event = ev(1)
    before = sys.getrefcount(event)
    assert _interrupted_by_ctrl_c(lambda: s.send(event, timeout=30), _unclose(s))
    assert sys.getrefcount(event) == before
    assert len(s) == 1


@ctrl_c
def test_ctrl_c_interrupts_iteration_and_batches(stream_cls: type) -> None:
    s = stream_cls(1)
    assert _interrupted_by_ctrl_c(lambda: list(s), _unclose(s))
    s2 = stream_cls(1)
    assert _interrupted_by_ctrl_c(lambda: s2.receive_many(5), _unclose(s2))
    s3 = full_stream(stream_cls, 1, BLOCK)
    assert _interrupted_by_ctrl_c(lambda: s3.send_many([ev(1), ev(2)]), _unclose(s3))


# -- many threads ------------------------------------------------------------------------

PRODUCERS = 4
CONSUMERS = 3
PER_PRODUCER = 300


@pytest.mark.parametrize("size", [1, 7, 1000])
def test_many_producers_many_consumers(stream_cls: type, size: int) -> None:
    s = stream_cls(size, BLOCK)

    def produce(p: int) -> None:
        for i in range(PER_PRODUCER):
            e = fe.Event(fe.EventType.TEXT_DELTA, {"p": p, "i": i})
            if i % 50 == 7:
                s.send_many([e], timeout=JOIN)
            else:
                s.send(e, timeout=JOIN)

    def consume_receive() -> list[fe.Event]:
        out = []
        while True:
            try:
                out.append(s.receive(timeout=JOIN))
            except fe.StreamClosed:
                return out

    def consume_many() -> list[fe.Event]:
        out: list[fe.Event] = []
        while True:
            batch = s.receive_many(5, timeout=JOIN)
            if not batch:
                return out
            out.extend(batch)

    def consume_iter() -> list[fe.Event]:
        return list(s)

    consumers = [Bg(consume_receive), Bg(consume_many), Bg(consume_iter)]
    assert len(consumers) == CONSUMERS
    producers = [Bg(produce, p) for p in range(PRODUCERS)]
    for p in producers:
        p.join(60)
    s.close()
    results = [c.join(60) for c in consumers]

    seen: set[tuple[int, int]] = set()
    total = 0
    for got in results:
        last = dict.fromkeys(range(PRODUCERS), -1)
        for e in got:
            key = (e.data["p"], e.data["i"])
            assert key not in seen, f"duplicated {key}"
            seen.add(key)
            total += 1
            # Each consumer sees every producer's events in send order.
            assert key[1] > last[key[0]], f"out of order {key}"
            last[key[0]] = key[1]
    assert total == PRODUCERS * PER_PRODUCER
    assert seen == {(p, i) for p in range(PRODUCERS) for i in range(PER_PRODUCER)}
    assert len(s) == 0


@pytest.mark.parametrize("size", [1, 7])
def test_single_consumer_sees_global_per_producer_order(stream_cls: type, size: int) -> None:
    s = stream_cls(size)
    producers = [
        Bg(lambda p=p: [s.send(fe.Event(fe.EventType.TEXT_DELTA, {"p": p, "i": i}),
                               timeout=JOIN) for i in range(200)])
        for p in range(PRODUCERS)
    ]
    consumer = Bg(list, s)
    for producer in producers:
        producer.join(60)
    s.close()
    got = consumer.join(60)
    assert len(got) == PRODUCERS * 200
    for p in range(PRODUCERS):
        assert [e.data["i"] for e in got if e.data["p"] == p] == list(range(200))
