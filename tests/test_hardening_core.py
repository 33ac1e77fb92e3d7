"""Issue 9, the core's side: regression tests for the defects the review found, on both twins.

Most symptoms are a hang or a loss that only shows in a fresh process, so those tests run
a small child script (``python -c``) under a timeout and read its verdict from stdout:

* Ctrl-C lands while a consumer waits and an event arrives at once: the event must stay
  in the stream (item 1). On 0.1's compiled core every such event was lost in the
  ``receive``, ``receive_entry``, ``next`` and ``receive_many`` modes; a plain ``for``
  loop did not show it (FOR_ITER does not run signal handlers), it is kept as coverage.
* fork() while GC cycles holding streams are collected inside other at-fork hooks must
  not deadlock (item 2).
* a MemoryError inside ``receive_many`` takes nothing (item 6), swept over every
  allocation it makes.

The others run in-process: GC of streams whose parked task's loop was closed and dropped
(item 7), ``receive_many(2**64)``, FIFO waking of parked tasks, huge timeouts (items 8,
9), and copy/pickle refused with one ``TypeError`` (item 13).
"""

from __future__ import annotations

import asyncio
import copy
import gc
import os
import pickle
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import pytest

import fastevents as fe
from _bg import JOIN, Bg

CHILD_TIMEOUT = 90.0  # generous: the box is shared; a hang is what we look for


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    pkg_parent = str(Path(fe.__file__).resolve().parent.parent)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = pkg_parent + (os.pathsep + old if old else "")
    env.pop("FASTEVENTS_NO_EXTENSIONS", None)  # the twin is chosen by name
    env["PYTHONFAULTHANDLER"] = "1"
    return env


def _twin(stream_cls: type) -> str:
    return "PyEventStream" if stream_cls is fe.PyEventStream else "CEventStream"


def _run_child(script: str, *args: str) -> str:
    """Run a child script; fail on a hang (timeout) or a non-zero exit; return stdout."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", script, *args], env=_child_env(),
            capture_output=True, text=True, timeout=CHILD_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"child hung for {CHILD_TIMEOUT}s; stderr:\n{exc.stderr!r}")
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{proc.stderr}"
    return proc.stdout


def ev(i: int) -> fe.Event:
    return fe.text_delta_event(str(i))


posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and fork")


# -- item 1: Ctrl-C never loses an event ------------------------------------------------------

CTRL_C_CHILD = r"""
import os, signal, sys, threading, time
import fastevents as fe

cls = getattr(fe, sys.argv[1])
mode = sys.argv[2]
ROUNDS = int(sys.argv[3])
s = cls(1000)
waiting = getattr(s, "_waiting", None)
sent = 0

def producer():
    # Each round: raise SIGINT, then send. The signal is pending before the event
    # arrives, so the consumer that the send wakes must raise KeyboardInterrupt *and*
    # leave that event in the stream; it gets it on its next call.
    global sent
    for i in range(ROUNDS):
        time.sleep(0.02)
        # Only once the consumer waits inside the stream: a signal that reached it
        # between two of its calls would drop an event in this script, not the stream.
        # (0.1 had no _waiting(): there the 20 ms pause has to do.)
        deadline = time.monotonic() + 10
        while waiting is not None and waiting()[1] != 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        os.kill(os.getpid(), signal.SIGINT)
        s.send(fe.text_delta_event(str(i)))
        sent += 1
    time.sleep(0.05)
    s.close()

t = threading.Thread(target=producer)
t.start()
got = []
interrupts = 0
while True:
    try:
        if mode == "receive":
            while True:
                got.append(s.receive())
        elif mode == "receive_entry":
            while True:
                got.append(s.receive_entry()[1])
        elif mode == "iterate":
            for e in s:
                got.append(e)
            break
        elif mode == "next":
            # The iterator protocol called explicitly: a KeyboardInterrupt raised right
            # after __next__ returned would drop the event it returned.
            it = iter(s)
            while True:
                got.append(next(it))
        elif mode == "receive_many":
            while True:
                batch = s.receive_many(10)
                if not batch:
                    break
                got.extend(batch)
            break
    except KeyboardInterrupt:
        interrupts += 1
    except (fe.StreamClosed, StopIteration):
        break
t.join()
left = len(s)
texts = [e.data["text"] for e in got]
print(sent, len(got), left, interrupts, texts == [str(i) for i in range(len(got))])
"""


@posix_only
@pytest.mark.parametrize(
    "mode", ["receive", "receive_entry", "iterate", "next", "receive_many"]
)
def test_ctrl_c_while_waiting_leaves_the_event_in_the_stream(
    stream_cls: type, mode: str
) -> None:
    rounds = 40
    out = _run_child(CTRL_C_CHILD, _twin(stream_cls), mode, str(rounds))
    sent, got, left, interrupts, ordered = out.split()
    assert int(sent) == rounds
    assert int(got) + int(left) == rounds, f"lost {rounds - int(got) - int(left)} events"
    assert ordered == "True"
    # The test exercised the race: most rounds interrupted a waiting consumer.
    assert int(interrupts) >= rounds // 2


# -- item 2: fork while GC frees streams inside at-fork hooks ---------------------------------

FORK_GC_CHILD = r"""
import gc, os, sys

class Holder:
    pass

def cycle(cls):
    h = Holder()
    h.stream = cls(4)
    h.me = h              # only the cycle collector frees this stream
    return h

pool = []
def hook():
    # Another library's at-fork hook that collects garbage: it frees streams while the
    # fork is in progress (here: cycles it lets go of, then an explicit collection).
    del pool[:2]
    gc.collect()

# Registered before fastevents is imported, so it runs after fastevents' own Python
# before-hook and before its after-hooks: inside the window an at-fork hook of the
# stream core would hold its locks.
os.register_at_fork(before=hook, after_in_parent=hook, after_in_child=hook)
import fastevents as fe
cls = getattr(fe, sys.argv[1])
kept = cls(4)
for i in range(int(sys.argv[2])):
    pool[:] = [cycle(cls) for _ in range(6)]
    kept.send(fe.text_delta_event(str(i)))
    pid = os.fork()
    if pid == 0:
        # The child uses what it inherited, and a new stream.
        try:
            assert kept.receive(timeout=5).data["text"] == str(i)
            s = cls(2)
            s.send(fe.text_delta_event("x"))
            assert s.receive(timeout=5).data["text"] == "x"
        except BaseException:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
    assert kept.receive(timeout=5).data["text"] == str(i)
print("ok")
"""


@posix_only
def test_fork_while_gc_frees_streams_in_at_fork_hooks(stream_cls: type) -> None:
    assert _run_child(FORK_GC_CHILD, _twin(stream_cls), "40").split() == ["ok"]


# -- item 6: a MemoryError inside receive_many takes nothing ----------------------------------

NOMEM_CHILD = r"""
import sys
import _testcapi
import fastevents as fe

cls = getattr(fe, sys.argv[1])
events = [fe.text_delta_event(str(i)) for i in range(5)]
outcomes = set()
for start in range(0, 400):
    s = cls(10)
    s.send_many(events)
    _testcapi.set_nomemory(start, 0)   # every allocation after the start-th fails
    try:
        try:
            got = s.receive_many(3)
        finally:
            _testcapi.remove_mem_hooks()
    except MemoryError:
        outcomes.add("nomem")
        # Nothing was taken: every event is still there, in order.
        rest = s.receive_many(10)
        if rest != events:
            print("LOST", start, len(rest))
            sys.exit(0)
    else:
        outcomes.add("ok")
        if got != events[:3] or s.receive_many(10) != events[3:]:
            print("WRONG", start)
            sys.exit(0)
print("ok", sorted(outcomes))
"""


def test_receive_many_memory_error_takes_nothing(stream_cls: type) -> None:
    pytest.importorskip("_testcapi")
    out = _run_child(NOMEM_CHILD, _twin(stream_cls))
    # Both outcomes were seen: some runs failed inside receive_many, the later ones not.
    assert out.split("\n")[0] == "ok ['nomem', 'ok']", out


# -- item 7: a parked task whose loop was closed and dropped does not leak its stream ---------

def _park_on_a_loop_then_drop_it(s: fe.Stream, receiver: bool) -> None:
    loop = asyncio.new_event_loop()

    async def wait() -> None:
        if receiver:
            await s.areceive()
        else:
            await s.asend(ev(1))

    task = loop.create_task(wait())
    loop.run_until_complete(asyncio.sleep(0.005))  # the task is parked now
    assert s._waiting() == ((0, 1) if receiver else (1, 0))
    assert not task.done()
    loop.close()  # closed with the task still pending: never cancelled


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # coroutine ... was never awaited
def test_streams_with_tasks_of_dropped_loops_are_collected(stream_cls: type) -> None:
    refs = []
    for i in range(100):
        s = stream_cls(1)
        receiver = i % 2 == 0
        if not receiver:
            s.send(ev(0))  # full: the task parks as a sender
        _park_on_a_loop_then_drop_it(s, receiver)
        refs.append(weakref.ref(s))
        del s
    for _ in range(3):
        gc.collect()
    alive = sum(r() is not None for r in refs)
    assert alive == 0, f"{alive} of 100 streams leaked"


def test_cycle_through_a_buffered_event_is_collected(stream_cls: type) -> None:
    refs = []
    for _ in range(20):
        s = stream_cls(4, history=2)
        e = fe.text_delta_event("x")
        e.data["stream"] = s  # the event refers back to its own stream
        s.send(e)
        s.send(fe.text_delta_event("y"))
        h = fe.text_delta_event("h")
        h.data["stream"] = s
        s.send(h)
        s.receive()  # the first is now only in the history
        refs.append(weakref.ref(s))
        del s, e, h
    gc.collect()
    assert sum(r() is not None for r in refs) == 0


# -- item 8: receive_many(2**64), FIFO waking -------------------------------------------------

def test_receive_many_with_a_huge_max_items(stream_cls: type) -> None:
    s = stream_cls(10)
    s.send_many([ev(i) for i in range(4)])
    got = s.receive_many(2**64)
    assert [e.data["text"] for e in got] == ["0", "1", "2", "3"]
    s.send(ev(4))
    assert [e.data["text"] for e in s.receive_many(sys.maxsize)] == ["4"]
    s.close()
    assert s.receive_many(2**64) == []
    with pytest.raises(ValueError):
        s.receive_many(0)


def test_areceive_many_with_a_huge_max_items(stream_cls: type) -> None:
    s = stream_cls(10)

    async def main() -> list[fe.Event]:
        async def later() -> None:
            await asyncio.sleep(0.02)
            s.send_many([ev(0), ev(1)])

        task = asyncio.ensure_future(later())
        got = await s.areceive_many(2**64, timeout=10)
        await task
        s.close()
        return got + await s.areceive_many(2**64, timeout=10)

    got = asyncio.run(main())
    assert [e.data["text"] for e in got] == ["0", "1"]


def test_parked_receivers_are_woken_fifo(stream_cls: type) -> None:
    s = stream_cls(10)
    n = 6

    async def main() -> list[str]:
        order: list[tuple[int, str]] = []

        async def receiver(i: int) -> None:
            e = await s.areceive(timeout=10)
            order.append((i, e.data["text"]))

        tasks = []
        for i in range(n):
            tasks.append(asyncio.ensure_future(receiver(i)))
            await asyncio.sleep(0)  # park in order 0, 1, 2, ...
        while s._waiting() != (0, n):
            await asyncio.sleep(0.001)
        s.send_many([ev(i) for i in range(n)])  # wakes all of them at once
        await asyncio.gather(*tasks)
        return [f"{i}:{t}" for i, t in order]

    got = asyncio.run(main())
    assert got == [f"{i}:{i}" for i in range(n)]


def test_parked_senders_are_woken_fifo(stream_cls: type) -> None:
    s = stream_cls(3)
    s.send_many([ev(0), ev(1), ev(2)])
    n = 3

    async def main() -> None:
        async def sender(i: int) -> None:
            await s.asend(ev(10 + i), timeout=10)

        tasks = []
        for i in range(n):
            tasks.append(asyncio.ensure_future(sender(i)))
            await asyncio.sleep(0)
        while s._waiting() != (n, 0):
            await asyncio.sleep(0.001)
        assert len(s.receive_many(3)) == 3  # room for all three at once
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert [e.data["text"] for e in s.receive_many(10)] == ["10", "11", "12"]


# -- item 9: huge timeouts ------------------------------------------------------------------

@pytest.mark.parametrize("timeout", [9.2e9, 1e10, 1e18, 1e300])
def test_huge_timeouts_wait_instead_of_timing_out(stream_cls: type, timeout: float) -> None:
    s = stream_cls(1)
    bg = Bg(s.receive, timeout=timeout)
    time.sleep(0.1)
    assert bg.waiting  # neither an immediate TimeoutError nor anything else
    s.send(ev(1))
    assert bg.join().data["text"] == "1"
    s.send(ev(2))
    bg = Bg(s.send, ev(3), timeout=timeout)
    time.sleep(0.1)
    assert bg.waiting
    assert s.receive().data["text"] == "2"
    bg.join()
    assert s.receive_many(5, timeout=timeout)[0].data["text"] == "3"


# -- item 13: streams refuse copy and pickle ----------------------------------------------------

@pytest.mark.parametrize("how", ["copy", "deepcopy", "pickle"])
def test_streams_refuse_copy_and_pickle(stream_cls: type, how: str) -> None:
    s = stream_cls(4)
    s.send(ev(1))
    with pytest.raises(TypeError, match=f"cannot copy or pickle a {stream_cls.__name__}"):
        if how == "copy":
            copy.copy(s)
        elif how == "deepcopy":
            copy.deepcopy(s)
        else:
            pickle.dumps(s)
    assert len(s) == 1 and not s.closed  # unchanged


# -- the manager hooks see sync waiters of both kinds ---------------------------------------------

def test_waiting_counts_sync_waiters(stream_cls: type) -> None:
    s = stream_cls(1)
    r = Bg(s.receive, timeout=10)
    deadline = time.monotonic() + 10
    while s._waiting() != (0, 1) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert s._waiting() == (0, 1)
    s.send(ev(1))
    r.join()
    s.send(ev(2))
    w = Bg(s.send, ev(3), timeout=10)
    while s._waiting() != (1, 0) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert s._waiting() == (1, 0)
    s.close()
    with pytest.raises(fe.StreamClosed):
        w.join()
    assert s._waiting() == (0, 0)


# -- the history's references under concurrency (issue 10, CORE_SPEC "hazards") -------------

class _Payload:
    pass


def test_concurrent_receivers_and_replays_with_a_small_history(stream_cls: type) -> None:
    """Receivers evict history entries while others replay them: every number is taken
    once, every replay is a run of consecutive numbers, and every event is released."""
    n, receivers = 3000, 4
    streams = [stream_cls(16, history=3)]
    refs: list[weakref.ref[_Payload]] = []
    seqs: list[int] = []
    bad: list[str] = []
    lock = threading.Lock()

    def produce() -> None:
        s = streams[0]
        for i in range(n):
            p = _Payload()
            refs.append(weakref.ref(p))
            s.send(fe.Event(fe.EventType.TEXT_DELTA, {"text": str(i), "p": p}))
        s.close()

    def receive() -> None:
        s = streams[0]
        mine = []
        while True:
            try:
                seq, e = s.receive_entry(timeout=JOIN)
            except fe.StreamClosed:
                break
            if e.data["text"] != str(seq - 1):
                bad.append(f"seq {seq} carries {e.data['text']}")
            mine.append(seq)
            try:
                got = s.replay(max(0, seq - 2))
            except fe.HistoryLost as exc:
                if exc.oldest is not None and exc.oldest <= seq - 1:
                    bad.append(f"HistoryLost(oldest={exc.oldest}) though {seq - 1} is kept")
                continue
            nums = [k for k, _ in got]
            if nums and nums != list(range(nums[0], nums[0] + len(nums))):
                bad.append(f"replay not consecutive: {nums}")
            if any(ev.data["text"] != str(k - 1) for k, ev in got):
                bad.append("replay pairs a number with another event")
        with lock:
            seqs.extend(mine)

    threads = [threading.Thread(target=receive) for _ in range(receivers)]
    threads.append(threading.Thread(target=produce))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive(), "hung"
    assert not bad, bad[:5]
    assert sorted(seqs) == list(range(1, n + 1))
    assert [k for k, _ in streams[0].replay(n - 3)] == [n - 2, n - 1, n]
    assert sum(r() is not None for r in refs) == 3  # only the history's three
    streams.clear()
    gc.collect()
    assert sum(r() is not None for r in refs) == 0


def test_gc_passes_while_threads_send_and_receive(stream_cls: type) -> None:
    """The collector traverses streams while blocked senders append without the GIL and
    receivers take with it: no crash, nothing lost, nothing kept."""
    n, producers = 2000, 3
    streams = [stream_cls(2, history=2)]
    refs: list[weakref.ref[_Payload]] = []
    got: list[str] = []
    stop = threading.Event()

    def produce(k: int) -> None:
        s = streams[0]
        for i in range(n):
            p = _Payload()
            refs.append(weakref.ref(p))
            s.send(fe.Event(fe.EventType.TEXT_DELTA, {"text": f"{k}:{i}", "p": p}), timeout=JOIN)

    def consume() -> None:
        s = streams[0]
        while True:
            try:
                got.append(s.receive(timeout=JOIN).data["text"])
            except fe.StreamClosed:
                return

    def collect() -> None:
        while not stop.is_set():
            gc.collect(0)

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(producers)]
    consumer = threading.Thread(target=consume)
    collector = threading.Thread(target=collect)
    for t in [*threads, consumer, collector]:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive(), "producer hung"
    streams[0].close()
    consumer.join(60)
    stop.set()
    collector.join(60)
    assert not consumer.is_alive(), "consumer hung"
    assert len(got) == n * producers
    for k in range(producers):  # each producer's events in order
        mine = [int(t.split(":")[1]) for t in got if t.startswith(f"{k}:")]
        assert mine == list(range(n))
    streams.clear()
    gc.collect()
    assert sum(r() is not None for r in refs) == 0
