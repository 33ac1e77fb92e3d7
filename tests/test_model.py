"""Model-based tests (issue #5): each twin against a tiny reference model.

A hypothesis ``RuleBasedStateMachine`` drives one real stream and a model of it (a deque,
the capacity, ``closed`` and the policy) through random sequences of every operation:
``send``/``try_send``/``send_many``/``receive``/``try_receive``/``receive_many``/iteration/
``close``/policy switches and the asyncio ``asend``/``areceive``/``asend_many``/
``areceive_many``. Everything runs in one thread and every call that could wait has
``timeout=0``, so the model is exact: after every step the contents (by identity), their
order, ``len``, ``closed``, ``policy`` and the error raised (``StreamFull``,
``StreamClosed``, ``TimeoutError``, ``InvalidEvent``, ``.sent`` of ``send_many``) must be
what the model predicts.

``FASTEVENTS_MODEL_EXAMPLES`` sets the number of runs per twin (default 80, ~40 steps each;
600 with ``FASTEVENTS_SLOW=1``).
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections import deque
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import fastevents as fe

BLOCK = fe.BackpressurePolicy.BLOCK
DROP = fe.BackpressurePolicy.DROP

MODEL_SETTINGS = settings(
    max_examples=int(os.environ.get(
        "FASTEVENTS_MODEL_EXAMPLES", "600" if os.environ.get("FASTEVENTS_SLOW") == "1" else "80"
    )),
    stateful_step_count=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

_counter = itertools.count()


def new_event() -> fe.Event:
    return fe.text_delta_event(str(next(_counter)))


def bad_event() -> fe.Event:
    return fe.Event(fe.EventType.TEXT_DELTA, {"text": "x"}, timestamp=None)


class Model:
    """The reference: what a bounded stream must do, written as plainly as possible."""

    def __init__(
        self, capacity: int, policy: fe.BackpressurePolicy, history: int = 0
    ) -> None:
        self.buf: deque[fe.Event] = deque()
        self.capacity = capacity
        self.closed = False
        self.policy = policy
        # Issue 10: the k-th event received has number k; the last `history` received
        # are kept for replay; refusals without waiting are counted.
        self.history = history
        self.popped = 0
        self.hist: deque[tuple[int, fe.Event]] = deque(maxlen=history or None)
        self.dropped = 0

    def took(self, event: fe.Event) -> int:
        """Record that `event` (the head of buf) was received; return its number."""
        self.popped += 1
        if self.history:
            self.hist.append((self.popped, event))
        return self.popped

    def replay(self, after: int) -> tuple[list[tuple[int, fe.Event]] | None, int | None]:
        """(entries, None), or (None, oldest) when replay(after) must raise HistoryLost."""
        if after >= self.popped:
            return [], None
        oldest = self.popped - len(self.hist) + 1
        if after + 1 < oldest:
            return None, (oldest if self.hist else None)
        return [(n, e) for n, e in self.hist if n > after], None

    @property
    def full(self) -> bool:
        return len(self.buf) >= self.capacity

    def send(self) -> type[BaseException] | None:
        """The error a ``send(timeout=0)`` must raise, or None when it enqueues."""
        if self.closed:
            return fe.StreamClosed
        if self.full:
            return fe.StreamFull if self.policy == DROP else TimeoutError
        return None

    def send_many(self, n: int) -> tuple[int, type[BaseException] | None]:
        """(events enqueued, error raised) for ``send_many`` of n events with timeout=0."""
        if self.closed:
            return 0, fe.StreamClosed
        room = self.capacity - len(self.buf)
        if n <= room:
            return n, None
        if self.policy == DROP:
            return room, None
        return room, TimeoutError

    def receive(self) -> type[BaseException] | None:
        if self.buf:
            return None
        return fe.StreamClosed if self.closed else TimeoutError


def make_machine(stream_cls: type) -> type[RuleBasedStateMachine]:
    """One state machine class per twin."""

    class StreamMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.stream: Any = None
            self.model: Model | None = None

        def teardown(self) -> None:
            self.loop.close()

        @initialize(
            capacity=st.integers(min_value=1, max_value=6),
            policy=st.sampled_from([BLOCK, DROP]),
            via_default=st.booleans(),
            history=st.sampled_from([0, 0, 1, 2, 5]),
        )
        def create(
            self, capacity: int, policy: fe.BackpressurePolicy, via_default: bool, history: int
        ) -> None:
            if via_default and policy == BLOCK and history == 0:
                self.stream = stream_cls(capacity)  # BLOCK is the default
            else:
                self.stream = stream_cls(capacity, policy, stream_id="m", history=history)
            self.model = Model(capacity, policy, history)

        # -- helpers --------------------------------------------------------------------

        @property
        def m(self) -> Model:
            assert self.model is not None
            return self.model

        def expect(self, expected: type[BaseException] | None, call: Callable[[], Any]) -> Any:
            """Run call; it must raise exactly `expected` (a class) or succeed if None."""
            if expected is None:
                return call()
            # (StreamFull, StreamClosed and TimeoutError are unrelated classes.)
            with pytest.raises(expected) as info:
                call()
            if expected is fe.StreamFull:
                assert info.value.buffer_size == self.m.capacity
                self.m.dropped += 1
            return info.value

        def arun(self, coro: Any) -> Any:
            return self.loop.run_until_complete(coro)

        def take(self, got: Any, n: int) -> None:
            """`got` must be the first n events of the model, which are then removed."""
            want = [self.m.buf.popleft() for _ in range(n)]
            assert len(got) == len(want)
            for g, w in zip(got, want, strict=True):
                assert g is w, "not the very object sent, or out of order"
                self.m.took(w)

        def take_entry(self, got: Any) -> None:
            """`got` must be (number, event) of the model's head, which is removed."""
            assert isinstance(got, tuple) and len(got) == 2
            w = self.m.buf.popleft()
            assert got[1] is w, "not the very object sent, or out of order"
            assert got[0] == self.m.took(w)

        # -- sending --------------------------------------------------------------------

        @rule()
        def send(self) -> None:
            e = new_event()
            err = self.m.send()
            self.expect(err, lambda: self.stream.send(e, timeout=0))
            if err is None:
                self.m.buf.append(e)

        @rule()
        def send_no_timeout_when_it_cannot_block(self) -> None:
            # Without a timeout a send may only be made when it cannot wait.
            if not self.m.closed and self.m.full and self.m.policy == BLOCK:
                return
            e = new_event()
            err = self.m.send()
            self.expect(err, lambda: self.stream.send(e))
            if err is None:
                self.m.buf.append(e)

        @rule()
        def send_invalid(self) -> None:
            # Validation comes first: InvalidEvent even on a closed or full stream.
            self.expect(fe.InvalidEvent, lambda: self.stream.send(bad_event(), timeout=0))
            self.expect(fe.InvalidEvent, lambda: self.stream.send(None, timeout=0))  # type: ignore[arg-type]

        @rule()
        def try_send(self) -> None:
            e = new_event()
            if self.m.closed:
                self.expect(fe.StreamClosed, lambda: self.stream.try_send(e))
                return
            ok = self.stream.try_send(e)
            assert ok is (not self.m.full)
            if ok:
                self.m.buf.append(e)
            else:
                self.m.dropped += 1

        @rule(n=st.integers(min_value=0, max_value=8))
        def send_many(self, n: int) -> None:
            batch = [new_event() for _ in range(n)]
            sent, err = self.m.send_many(n)
            if err is None:
                assert self.stream.send_many(batch, timeout=0) == sent
                self.m.dropped += n - sent  # DROP: the rest is refused
            else:
                exc = self.expect(err, lambda: self.stream.send_many(batch, timeout=0))
                assert exc.sent == sent
            self.m.buf.extend(batch[:sent])

        @rule(n=st.integers(min_value=1, max_value=4))
        def send_many_with_invalid(self, n: int) -> None:
            # One bad event: nothing is enqueued at all.
            batch = [new_event() for _ in range(n)]
            batch.insert(n // 2, bad_event())
            self.expect(fe.InvalidEvent, lambda: self.stream.send_many(batch, timeout=0))

        # -- receiving ------------------------------------------------------------------

        @rule()
        def receive(self) -> None:
            err = self.m.receive()
            got = self.expect(err, lambda: self.stream.receive(timeout=0))
            if err is None:
                self.take([got], 1)

        @rule()
        def try_receive(self) -> None:
            got = self.stream.try_receive()
            if self.m.buf:
                self.take([got], 1)
            else:
                assert got is None

        @rule(n=st.integers(min_value=1, max_value=8))
        def receive_many(self, n: int) -> None:
            if not self.m.buf:
                if self.m.closed:
                    assert self.stream.receive_many(n, timeout=0) == []
                else:
                    self.expect(TimeoutError, lambda: self.stream.receive_many(n, timeout=0))
                return
            got = self.stream.receive_many(n, timeout=0)
            assert isinstance(got, list)
            self.take(got, min(n, len(self.m.buf)))

        @rule()
        def receive_entry(self) -> None:
            err = self.m.receive()
            got = self.expect(err, lambda: self.stream.receive_entry(timeout=0))
            if err is None:
                self.take_entry(got)

        @rule()
        def try_receive_entry(self) -> None:
            got = self.stream.try_receive_entry()
            if self.m.buf:
                self.take_entry(got)
            else:
                assert got is None

        @rule()
        def areceive_entry(self) -> None:
            err = self.m.receive()
            got = self.expect(err, lambda: self.arun(self.stream.areceive_entry(timeout=0)))
            if err is None:
                self.take_entry(got)

        @rule(back=st.integers(min_value=-2, max_value=8))
        def replay(self, back: int) -> None:
            after = max(0, self.m.popped - back)
            want, oldest = self.m.replay(after)
            if want is None:
                exc = self.expect(fe.HistoryLost, lambda: self.stream.replay(after))
                assert exc.oldest == oldest
                return
            got = self.stream.replay(after)
            assert [n for n, _ in got] == [n for n, _ in want]
            assert all(g is w for (_, g), (_, w) in zip(got, want, strict=True))

        @rule()
        def replay_negative_is_value_error(self) -> None:
            self.expect(ValueError, lambda: self.stream.replay(-1))

        @rule()
        def receive_many_bad_count(self) -> None:
            self.expect(ValueError, lambda: self.stream.receive_many(0, timeout=0))

        @precondition(lambda self: bool(self.model and (self.model.buf or self.model.closed)))
        @rule()
        def next_of_iterator(self) -> None:
            # Only when it cannot block: something buffered, or closed (then it ends).
            it = iter(self.stream)
            if self.m.buf:
                self.take([next(it)], 1)
            else:
                with pytest.raises(StopIteration):
                    next(it)

        # -- asyncio --------------------------------------------------------------------

        @rule()
        def asend(self) -> None:
            e = new_event()
            err = self.m.send()
            self.expect(err, lambda: self.arun(self.stream.asend(e, timeout=0)))
            if err is None:
                self.m.buf.append(e)

        @rule()
        def areceive(self) -> None:
            err = self.m.receive()
            got = self.expect(err, lambda: self.arun(self.stream.areceive(timeout=0)))
            if err is None:
                self.take([got], 1)

        @rule(n=st.integers(min_value=0, max_value=6))
        def asend_many(self, n: int) -> None:
            batch = [new_event() for _ in range(n)]
            sent, err = self.m.send_many(n)
            if err is None:
                assert self.arun(self.stream.asend_many(batch, timeout=0)) == sent
                self.m.dropped += n - sent
            else:
                exc = self.expect(err, lambda: self.arun(self.stream.asend_many(batch, timeout=0)))
                assert exc.sent == sent
            self.m.buf.extend(batch[:sent])

        @rule(n=st.integers(min_value=1, max_value=6))
        def areceive_many(self, n: int) -> None:
            if not self.m.buf:
                if self.m.closed:
                    assert self.arun(self.stream.areceive_many(n, timeout=0)) == []
                else:
                    self.expect(
                        TimeoutError, lambda: self.arun(self.stream.areceive_many(n, timeout=0))
                    )
                return
            got = self.arun(self.stream.areceive_many(n, timeout=0))
            self.take(got, min(n, len(self.m.buf)))

        # -- control --------------------------------------------------------------------

        @rule()
        def close(self) -> None:
            if self.m.closed:
                self.expect(fe.StreamClosed, self.stream.close)
            else:
                self.stream.close()
                self.m.closed = True

        @rule(policy=st.sampled_from([BLOCK, DROP]), via_setter=st.booleans())
        def switch_policy(self, policy: fe.BackpressurePolicy, via_setter: bool) -> None:
            if via_setter:
                self.stream.set_backpressure_policy(policy)
            else:
                self.stream.policy = policy
            self.m.policy = policy

        @rule(bad=st.sampled_from(["DROP", 2, -1, None, 1.0, True]))
        def bad_policy_changes_nothing(self, bad: Any) -> None:
            with pytest.raises((TypeError, ValueError)):
                self.stream.policy = bad
            with pytest.raises((TypeError, ValueError)):
                self.stream.set_backpressure_policy(bad)

        @rule(bad=st.sampled_from([-1, -0.5, float("nan"), "1", [], True]))
        def bad_timeout_changes_nothing(self, bad: Any) -> None:
            with pytest.raises((TypeError, ValueError)):
                self.stream.send(new_event(), timeout=bad)
            with pytest.raises((TypeError, ValueError)):
                self.stream.receive(timeout=bad)
            with pytest.raises((TypeError, ValueError)):
                self.stream.receive_many(3, timeout=bad)
            with pytest.raises((TypeError, ValueError)):
                self.stream.send_many([new_event()], timeout=bad)

        # -- after every step -----------------------------------------------------------

        @invariant()
        def observable_state_matches(self) -> None:
            if self.model is None:
                return
            assert len(self.stream) == len(self.m.buf)
            assert self.stream.closed is self.m.closed
            assert self.stream.policy == self.m.policy
            assert self.stream.buffer_size == self.m.capacity
            assert self.stream.last_seq == self.m.popped + len(self.m.buf)
            assert self.stream.dropped == self.m.dropped
            assert self.stream.history == self.m.history

    StreamMachine.__name__ = StreamMachine.__qualname__ = f"StreamMachine_{stream_cls.__name__}"
    return StreamMachine


def test_stream_matches_model(stream_cls: type) -> None:
    run_state_machine_as_test(make_machine(stream_cls), settings=MODEL_SETTINGS)


def test_final_drain_matches_model(stream_cls: type) -> None:
    """A fixed scenario the machine reaches rarely: close a full stream with all APIs mixed."""
    s = stream_cls(3, BLOCK)
    evs = [new_event() for _ in range(5)]
    assert s.send_many(evs[:2]) == 2
    assert s.try_send(evs[2]) is True
    assert s.try_send(evs[3]) is False
    s.close()
    with pytest.raises(fe.StreamClosed):
        s.send(evs[4], timeout=0)
    with pytest.raises(fe.StreamClosed) as info:
        s.send_many(evs[3:], timeout=0)
    assert info.value.sent == 0
    assert list(s) == evs[:3]
    assert s.receive_many(4, timeout=0) == []
    assert s.try_receive() is None
    with pytest.raises(fe.StreamClosed):
        s.receive(timeout=0)


def test_asend_many_empty_on_closed_raises_like_send_many(stream_cls: type) -> None:
    """``asend_many([])`` on a closed stream: "errors as in the sync methods" (API.md).

    ``send_many([])`` raises StreamClosed (with ``sent == 0``) on a closed stream; the
    async twin must do the same rather than return 0.
    """
    s = stream_cls(2)
    s.close()
    with pytest.raises(fe.StreamClosed) as info:
        s.send_many([], timeout=0)
    assert info.value.sent == 0
    with pytest.raises(fe.StreamClosed) as info:
        asyncio.run(s.asend_many([], timeout=0))
    assert info.value.sent == 0
