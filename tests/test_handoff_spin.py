"""Hand-off spinning (compiled twin, issue 14): a thread that finds the stream full or
empty polls it for a few microseconds, GIL released, before it sleeps.

What must hold whatever the timing: nothing is lost, duplicated or reordered with
spinning on or off; a waiter whose other side is idle does not burn a CPU; closing
wakes a spinner. Every test runs on both twins (the pure twin never spins: for it these
are plain behaviour tests), and with spinning switched on and off for the compiled one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import fastevents as fe

JOIN = 60.0  # a bound that only catches hangs


def ev(i: int) -> fe.Event:
    return fe.text_delta_event(str(i))


@pytest.fixture(params=[True, False], ids=["spin", "nospin"])
def spinning(request: pytest.FixtureRequest, stream_cls: type) -> Iterator[bool]:
    """Switch hand-off spinning for the streams the test creates (compiled twin; the
    pure twin never spins, and just runs the test twice)."""
    if stream_cls is fe.PyEventStream:
        yield False
        return
    from fastevents import _stream_c

    old = _stream_c._set_spinning(request.param)
    try:
        yield request.param
    finally:
        _stream_c._set_spinning(old)


def _join(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.join(JOIN)
        assert not t.is_alive(), "hand-off hung"


@pytest.mark.parametrize("buffer_size", [1, 2, 100])
@pytest.mark.parametrize("producers", [1, 4])
def test_many_to_one_exact(stream_cls: type, spinning: bool, buffer_size: int,
                           producers: int) -> None:
    s = stream_cls(buffer_size)
    per = 5_000
    got: list[int] = []
    errors: list[BaseException] = []

    def produce(k: int) -> None:
        try:
            for i in range(per):
                s.send(ev(k * 1_000_000 + i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def consume() -> None:
        try:
            for _ in range(per * producers):
                got.append(int(s.receive(timeout=JOIN).data["text"]))
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(producers)]
    threads.append(threading.Thread(target=consume))
    for t in threads:
        t.start()
    _join(threads)
    assert not errors
    assert len(got) == per * producers
    for k in range(producers):  # each producer's events arrive once, in order
        mine = [x for x in got if x // 1_000_000 == k]
        assert mine == [k * 1_000_000 + i for i in range(per)]
    assert len(s) == 0
    assert s._waiting() == (0, 0)


def test_receive_many_and_batches_exact(stream_cls: type, spinning: bool) -> None:
    s = stream_cls(16)
    n = 20_000
    got: list[int] = []

    def produce() -> None:
        i = 0
        while i < n:
            batch = [ev(j) for j in range(i, min(n, i + 7))]
            s.send_many(batch)
            i += len(batch)
        s.close()

    def consume() -> None:
        while True:
            batch = s.receive_many(5, timeout=JOIN)
            if not batch:
                return
            got.extend(int(e.data["text"]) for e in batch)

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for t in threads:
        t.start()
    _join(threads)
    assert got == list(range(n))


def _thread_cpu(target: Any) -> float:
    """Run target in a thread; return the CPU time that thread used."""
    out: list[float] = []

    def body() -> None:
        t0 = time.thread_time()
        target()
        out.append(time.thread_time() - t0)

    th = threading.Thread(target=body)
    th.start()
    _join([th])
    return out[0]


def test_idle_waiters_do_not_burn_a_cpu(stream_cls: type, spinning: bool) -> None:
    """A receiver on an empty stream and a sender on a full one, each waiting ~1 s with
    nobody on the other side: spinning is bounded to microseconds per wait, so each uses
    a sliver of a CPU (the bound is generous: a busy loop would use ~1 s)."""
    s = stream_cls(1)

    def receive() -> None:
        with pytest.raises(TimeoutError):
            s.receive(timeout=1.0)

    def send() -> None:
        with pytest.raises(TimeoutError):
            s.send(ev(1), timeout=1.0)

    assert _thread_cpu(receive) < 0.25
    s.send(ev(0))
    assert _thread_cpu(send) < 0.25


def test_slow_producer_does_not_keep_the_consumer_spinning(stream_cls: type,
                                                          spinning: bool) -> None:
    """A producer that sends an event every 5 ms (a model's tokens): the consumer's
    spins fail, spinning backs off, and its CPU stays a small part of the wall time."""
    s = stream_cls(100)
    n = 200

    def produce() -> None:
        for i in range(n):
            time.sleep(0.005)
            s.send(ev(i))

    th = threading.Thread(target=produce)
    th.start()
    t0 = time.monotonic()
    cpu = _thread_cpu(lambda: [s.receive(timeout=JOIN) for _ in range(n)])
    wall = time.monotonic() - t0
    _join([th])
    assert cpu < 0.3 * wall


@pytest.mark.parametrize("side", ["receiver", "sender"])
def test_close_wakes_a_waiting_thread(stream_cls: type, spinning: bool, side: str) -> None:
    """close() reaches a thread whether it is spinning or asleep."""
    for delay in (0.0, 0.00002, 0.0002, 0.01):   # inside and past the spin window
        s = stream_cls(1)
        if side == "sender":
            s.send(ev(0))
        out: list[BaseException] = []

        def wait() -> None:
            try:
                if side == "receiver":
                    s.receive(timeout=JOIN)
                else:
                    s.send(ev(1), timeout=JOIN)
            except BaseException as exc:
                out.append(exc)

        th = threading.Thread(target=wait)
        th.start()
        time.sleep(delay)
        s.close()
        _join([th])
        assert len(out) == 1 and isinstance(out[0], fe.StreamClosed)


@pytest.mark.c_extension
def test_fastevents_spin_0_turns_spinning_off() -> None:
    """FASTEVENTS_SPIN=0 (for machines that always run more threads than CPUs) is read
    at import: streams then never spin."""
    import os
    import subprocess
    import sys

    if fe.CEventStream is None:
        pytest.skip("the compiled core is not available here")
    code = "from fastevents import _stream_c; print(_stream_c._set_spinning(True))"
    env = {**os.environ, "FASTEVENTS_SPIN": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout.strip()
    assert out == "False"
    env["FASTEVENTS_SPIN"] = "1"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout.strip()
    from fastevents import _stream_c

    old = _stream_c._set_spinning(True)
    possible = _stream_c._set_spinning(old)  # True unless this machine has one CPU
    assert out == str(possible)
