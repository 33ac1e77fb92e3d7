"""Issue 9, items 3, 4 and 5: wake-ups that must not be lost.

3. After ``os.fork()`` the child drops waiters whose loop is not the forking thread's,
   so the child's first wake-up is not spent on a task that does not exist there.
4. A task parked on a loop that is stopped (not closed) does not eat a wake-up that a
   live task on another loop needs.
5. An exception while waking (a Ctrl-C inside ``call_soon_threadsafe``) neither stops
   the other wake-ups nor is lost: every waiter is woken, a wake-up the failed waiter
   could not take is handed on, and the first exception comes out after. A Ctrl-C on
   the main thread is re-delivered (a new SIGINT) rather than raised from the call,
   whose own operation has taken effect: a receive keeps its event (issue 14 round).

Both twins through ``stream_cls``. The symptom of each bug is a hang, so every wait has
a timeout, and the fork test runs in a subprocess with a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import fastevents as fe
from _bg import JOIN, Bg

# The tasks' own timeouts are longer than the test waits for them: a task that was never
# woken must show up as hung, not be rescued by its final attempt after its timeout.
LONG = 3 * JOIN


def ev(i: int = 0) -> fe.Event:
    return fe.text_delta_event(str(i))


def wait_until(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + JOIN
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


# -- item 3: fork --------------------------------------------------------------------------------

FORK_CHILD = textwrap.dedent(
    """
    import asyncio, os, sys, threading, time
    import fastevents as fe

    cls = getattr(fe, sys.argv[1])
    s = cls(4)

    def other_thread():
        async def park():
            try:
                await s.areceive(timeout=20)
            except Exception:
                pass
        asyncio.run(park())

    t = threading.Thread(target=other_thread, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while s._waiting() != (0, 1):
        assert time.monotonic() < deadline
        time.sleep(0.005)

    pid = os.fork()  # from the main thread, whose own loop is not running
    if pid == 0:
        code = 1
        try:
            # The other thread and its loop do not exist here: its waiter must be gone.
            if s._waiting() != (0, 0):
                code = 4
                raise SystemExit
            async def child():
                task = asyncio.ensure_future(s.areceive(timeout=5))
                while s._waiting() != (0, 1):
                    await asyncio.sleep(0.005)
                s.send(fe.text_delta_event("child"))
                return await asyncio.wait_for(task, 3)
            got = asyncio.run(child())
            code = 0 if got.data["text"] == "child" else 2
        except BaseException as exc:
            print("child:", repr(exc), file=sys.stderr, flush=True)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    s.close()
    t.join(10)
    sys.exit(os.waitstatus_to_exitcode(status))
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
def test_child_after_fork_drops_waiters_of_other_threads_loops(stream_cls: type) -> None:
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", FORK_CHILD, stream_cls.__name__],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, (
        "the child's task did not get the event sent in the child "
        f"(rc={out.returncode}):\n{out.stdout}\n{out.stderr}"
    )


# -- item 4: a stopped loop ---------------------------------------------------------------------


def test_stopped_loop_does_not_eat_a_wake_up(stream_cls: type) -> None:
    s = stream_cls(4)
    stopped = asyncio.new_event_loop()
    try:
        parked: list[asyncio.Task[Any]] = []

        async def park() -> None:
            parked.append(asyncio.ensure_future(s.areceive()))
            await asyncio.sleep(0.01)

        # run_until_complete returns with the task still parked; the loop stops.
        stopped.run_until_complete(park())
        assert s._waiting() == (0, 1)

        live = Bg(asyncio.run, s.areceive(timeout=LONG))
        wait_until(lambda: s._waiting() == (0, 2), "the live task to park")
        e = ev(1)
        s.send(e)  # FIFO: offered to the stopped loop's task first
        assert live.join() is e

        # When the stopped loop runs again its task simply waits on.
        s.close()
        with pytest.raises(fe.StreamClosed):
            stopped.run_until_complete(asyncio.wait_for(parked[0], JOIN))
    finally:
        stopped.close()


def test_stopped_loop_does_not_eat_a_room_wake_up(stream_cls: type) -> None:
    s = stream_cls(1)
    s.send(ev(0))
    stopped = asyncio.new_event_loop()
    try:
        parked: list[asyncio.Task[Any]] = []

        async def park() -> None:
            parked.append(asyncio.ensure_future(s.asend(ev(1))))
            await asyncio.sleep(0.01)

        stopped.run_until_complete(park())
        assert s._waiting() == (1, 0)
        e2 = ev(2)
        live = Bg(asyncio.run, s.asend(e2, timeout=LONG))
        wait_until(lambda: s._waiting() == (2, 0), "the live sender to park")
        assert s.receive(timeout=0) is not None  # room for one: offered to `stopped` first
        live.join()
        assert s.receive(timeout=0) is e2
        s.close()
        with pytest.raises(fe.StreamClosed):
            stopped.run_until_complete(asyncio.wait_for(parked[0], JOIN))
    finally:
        stopped.close()


# -- item 5: exceptions while waking ------------------------------------------------------------


class InterruptedLoop(asyncio.SelectorEventLoop):
    """A loop whose next cross-thread wake-up is hit by Ctrl-C: ``raise_before`` (the
    callback was not scheduled) or after scheduling it."""

    def __init__(self) -> None:
        super().__init__()
        self.armed: str | None = None

    def call_soon_threadsafe(self, *args: Any, **kwargs: Any) -> Any:
        how, self.armed = self.armed, None
        if how == "before":
            raise KeyboardInterrupt
        handle = super().call_soon_threadsafe(*args, **kwargs)
        if how == "after":
            raise KeyboardInterrupt
        return handle


class LoopThread:
    """A loop running in a thread; ``submit`` runs a coroutine there."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def submit(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(JOIN)
        assert not self.thread.is_alive()
        self.loop.close()


def outcome(fut: Any) -> Any:
    try:
        return fut.result(JOIN)
    except BaseException as exc:
        return type(exc)


@contextlib.contextmanager
def sigint_recorder() -> Iterator[list[int]]:
    """Record SIGINTs (a re-delivered Ctrl-C) instead of raising KeyboardInterrupt."""
    hits: list[int] = []
    old = signal.signal(signal.SIGINT, lambda signum, frame: hits.append(signum))
    try:
        yield hits
    finally:
        signal.signal(signal.SIGINT, old)


def redelivered(hits: list[int]) -> None:
    # The handler runs at the interpreter's next check on the main thread: at once.
    wait_until(lambda: bool(hits), "the re-delivered SIGINT")
    assert hits == [signal.SIGINT]


def test_ctrl_c_while_waking_on_close_wakes_every_other_waiter(stream_cls: type) -> None:
    s = stream_cls(4)
    evil = LoopThread(InterruptedLoop())
    good = LoopThread()
    try:
        first = evil.submit(s.areceive(timeout=LONG))
        wait_until(lambda: s._waiting() == (0, 1), "the first task to park")
        others = [good.submit(s.areceive(timeout=LONG)) for _ in range(3)]
        wait_until(lambda: s._waiting() == (0, 4), "every task to park")
        evil.loop.armed = "after"  # type: ignore[attr-defined]
        with sigint_recorder() as hits:
            s.close()  # the interrupt is re-delivered, never swallowed...
            redelivered(hits)
        assert s.closed
        # ...and every waiter was woken all the same.
        assert [outcome(f) for f in others] == [fe.StreamClosed] * 3
        assert outcome(first) is fe.StreamClosed
    finally:
        evil.stop()
        good.stop()


def test_ctrl_c_before_a_wake_up_hands_it_on(stream_cls: type) -> None:
    """The interrupted waiter never got its wake-up: the event goes to the next one."""
    s = stream_cls(4)
    evil = LoopThread(InterruptedLoop())
    good = LoopThread()
    try:
        first = evil.submit(s.areceive(timeout=0.5))
        wait_until(lambda: s._waiting() == (0, 1), "the first task to park")
        second = good.submit(s.areceive(timeout=LONG))
        wait_until(lambda: s._waiting() == (0, 2), "the second task to park")
        evil.loop.armed = "before"  # type: ignore[attr-defined]
        e = ev(1)
        with sigint_recorder() as hits:
            s.send(e)  # accepted, and says so; the interrupt comes right after
            redelivered(hits)
        assert second.result(JOIN) is e
        assert outcome(first) is TimeoutError  # it never got a wake-up; nothing lost
        assert len(s) == 0
    finally:
        evil.stop()
        good.stop()


def test_ctrl_c_while_waking_senders_wakes_the_others(stream_cls: type) -> None:
    s = stream_cls(2)
    taken = [ev(0), ev(1)]
    s.send_many(taken)
    evil = LoopThread(InterruptedLoop())
    good = LoopThread()
    try:
        first = evil.submit(s.asend(ev(2), timeout=LONG))
        wait_until(lambda: s._waiting() == (1, 0), "the first sender to park")
        second = good.submit(s.asend(ev(3), timeout=LONG))
        wait_until(lambda: s._waiting() == (2, 0), "the second sender to park")
        evil.loop.armed = "after"  # type: ignore[attr-defined]
        with sigint_recorder() as hits:
            got = s.receive_many(2, timeout=0)  # room for two: both senders are woken
            redelivered(hits)
        assert got == taken  # the batch it took is returned, not lost with the Ctrl-C
        assert outcome(first) is None and outcome(second) is None
        assert sorted(int(e.data["text"]) for e in s.receive_many(2, timeout=0)) == [2, 3]
    finally:
        evil.stop()
        good.stop()


@pytest.mark.parametrize("how", ["receive", "receive_entry", "try_receive", "next"])
def test_ctrl_c_while_a_receive_wakes_a_sender_keeps_its_event(stream_cls: type,
                                                               how: str) -> None:
    """Before: the receive raised KeyboardInterrupt and the event it had taken was gone."""
    s = stream_cls(1)
    e0 = ev(0)
    s.send(e0)
    evil = LoopThread(InterruptedLoop())
    try:
        sender = evil.submit(s.asend(ev(1), timeout=LONG))
        wait_until(lambda: s._waiting() == (1, 0), "the sender to park")
        evil.loop.armed = "after"  # type: ignore[attr-defined]
        with sigint_recorder() as hits:
            if how == "receive":
                got = s.receive(timeout=0)
            elif how == "receive_entry":
                got = s.receive_entry(timeout=0)[1]
            elif how == "try_receive":
                got = s.try_receive()
            else:
                got = next(iter(s))
            redelivered(hits)
        assert got is e0
        assert outcome(sender) is None
        assert s.receive(timeout=0).data["text"] == "1"
    finally:
        evil.stop()


def test_ctrl_c_off_the_main_thread_is_raised(stream_cls: type) -> None:
    """Only the main thread gets signals, so only there can a Ctrl-C be re-delivered:
    an interrupt raised while another thread wakes waiters comes out of its call."""
    s = stream_cls(4)
    evil = LoopThread(InterruptedLoop())
    try:
        waiter = evil.submit(s.areceive(timeout=LONG))
        wait_until(lambda: s._waiting() == (0, 1), "the task to park")
        evil.loop.armed = "after"  # type: ignore[attr-defined]
        raised: list[BaseException] = []

        def send() -> None:
            try:
                s.send(ev(7))
            except BaseException as exc:
                raised.append(exc)

        th = threading.Thread(target=send)
        th.start()
        th.join(JOIN)
        assert len(raised) == 1 and isinstance(raised[0], KeyboardInterrupt)
        assert outcome(waiter).data["text"] == "7"  # accepted all the same
    finally:
        evil.stop()
