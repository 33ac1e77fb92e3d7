"""A workload for valgrind: every API path of the compiled stream core, briefly.

Run by ``tools/valgrind.sh`` (under ``valgrind --leak-check=full`` with
``PYTHONMALLOC=malloc``); it runs on its own too: ``python tools/valgrind_workload.py``.

It covers: send/try_send/send_many/receive/try_receive/receive_many/iteration, BLOCK and
DROP (StreamFull, try_send False, partial send_many), timeouts and cancel tokens, close
with blocked senders and receivers in threads, the ring growing, wrapping and shrinking
(and a buffer size of 2**31), asyncio senders and receivers (parked, woken from threads,
timed out, cancelled; parked on their own futures, driven by hand and dropped), hand-off
spinning on and off, streams deallocated with events still buffered, a fork, a
StreamManager on top, sequence numbers / history / replay / entries, and streams freed
by the cycle collector (through a buffered event, or a task of a dropped loop). Besides
what valgrind reports, it checks with weak references that every event it made is gone at
the end, and exits 1 if one is not.

``FE_VALGRIND_SCALE`` (default 1) multiplies the loop counts.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import threading
import weakref

import fastevents as fe

SCALE = int(os.environ.get("FE_VALGRIND_SCALE", "1"))
BLOCK = fe.BackpressurePolicy.BLOCK
DROP = fe.BackpressurePolicy.DROP

C = fe.CEventStream
if C is None:
    sys.exit(f"the compiled core is unavailable: {fe.EXTENSION_IMPORT_ERROR!r}")


class Payload:
    pass


class WEvent(fe.Event):
    __slots__ = ("__weakref__",)


REFS: list[weakref.ref] = []


def ev(i: int = 0) -> fe.Event:
    """Alternate the compiled core's fast validation path and its slow one."""
    if i % 2:
        e = WEvent(fe.EventType.TEXT_DELTA, {"text": str(i)})
        REFS.append(weakref.ref(e))
        return e
    p = Payload()
    REFS.append(weakref.ref(p))
    return fe.Event(fe.EventType.TEXT_DELTA, {"text": str(i), "p": p})


def expect(errors, fn, *args, **kwargs):
    """fn(*args, **kwargs), which may raise one of errors (swallowed)."""
    try:
        return fn(*args, **kwargs)
    except errors:
        return None


def sync_paths() -> None:
    for rnd in range(20 * SCALE):
        s = C(4, stream_id=f"s{rnd}")
        s.send(ev(1))
        assert s.try_send(ev(2))
        assert s.send_many([ev(3), ev(4)]) == 2
        assert s.try_send(ev(5)) is False
        expect(TimeoutError, s.send, ev(6), timeout=0)
        expect(TimeoutError, s.send, ev(7), timeout=0.001)
        expect(TimeoutError, s.send_many, [ev(8), ev(9)], timeout=0.001)
        tok = threading.Event()
        tok.set()
        expect(fe.Cancelled, s.send, ev(10), cancel=tok)
        s.policy = DROP
        expect(fe.StreamFull, s.send, ev(11))
        assert s.send_many([ev(12)]) == 0
        s.set_backpressure_policy(BLOCK)
        assert s.receive() is not None
        assert s.try_receive() is not None
        assert len(s.receive_many(10)) == 2
        expect(TimeoutError, s.receive, timeout=0.001)
        expect(fe.Cancelled, s.receive, cancel=tok)
        expect(TimeoutError, s.receive_many, 3, timeout=0)
        assert s.try_receive() is None
        expect(fe.InvalidEvent, s.send, None)
        expect(fe.InvalidEvent, s.send_many, [ev(13), "x"])
        expect(fe.InvalidEvent, s.send, fe.Event(fe.EventType.ERROR, {}, timestamp=None))
        s.send_many([ev(i) for i in range(4)])
        repr(s)
        s.close()
        expect(fe.StreamClosed, s.close)
        expect(fe.StreamClosed, s.send, ev(14))
        expect(fe.StreamClosed, s.try_send, ev(15))
        expect(fe.StreamClosed, s.send_many, [ev(16)])
        assert len(list(s)) == 4
        assert s.receive_many(3) == []
        expect(fe.StreamClosed, s.receive)
        with C(2) as s2:
            s2.send(ev(17))
    # The ring: growth, wrap-around, shrink after a burst, a huge bound.
    for size in (3, 100, 5000, 2**31):
        s = C(size)
        for _ in range(3):
            n = min(size, 3000)
            s.send_many([ev(i) for i in range(n)])
            s.receive_many(n // 2 + 1)
            s.send_many([ev(i) for i in range(n // 2)])
            while s.try_receive() is not None:
                pass
    # Deallocated with events buffered (wrapped, and big).
    for _ in range(10 * SCALE):
        drop_full_streams()


def drop_full_streams() -> None:
    s = C(8)
    s.send_many([ev(i) for i in range(8)])
    s.receive_many(5)
    s.send_many([ev(i) for i in range(4)])
    big = C(3000)
    big.send_many([ev(i) for i in range(2000)])
    # Both go with their events when this returns.


def producer(s: fe.CEventStream) -> None:
    for i in range(200):
        try:
            if i % 3 == 0:
                s.send_many([ev(i), ev(i + 1)])
            elif i % 3 == 1:
                s.send(ev(i), timeout=1)
            else:
                s.try_send(ev(i))
        except (fe.StreamClosed, TimeoutError):
            return


def consumer(s: fe.CEventStream) -> None:
    while True:
        try:
            if not s.receive_many(3, timeout=1):
                return
        except TimeoutError:
            continue


def iterate(s: fe.CEventStream) -> None:
    for _ in s:
        pass


def run_threads(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.start()


def join_threads(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.join(120)
        assert not t.is_alive()


def thread_paths() -> None:
    from fastevents import _stream_c

    for spin in (True, False):   # hand-off spinning on (the default) and off
        old = _stream_c._set_spinning(spin)
        try:
            _thread_paths()
        finally:
            _stream_c._set_spinning(old)


def _thread_paths() -> None:
    for _ in range(5 * SCALE):
        s = C(2)
        producers = [threading.Thread(target=producer, args=(s,)) for _ in range(3)]
        others = [threading.Thread(target=consumer, args=(s,)) for _ in range(2)]
        others.append(threading.Thread(target=iterate, args=(s,)))
        run_threads(producers + others)
        join_threads(producers)
        s.close()
        join_threads(others)
        # close() racing blocked senders and receivers.
        full = C(1)
        full.send(ev(0))
        empty = C(1)
        blocked = [threading.Thread(target=expect, args=(fe.StreamClosed, full.send, ev(1)))
                   for _ in range(3)]
        blocked += [threading.Thread(target=expect, args=(fe.StreamClosed, empty.receive))
                    for _ in range(3)]
        run_threads(blocked)
        threading.Event().wait(0.05)
        full.close()
        empty.close()
        join_threads(blocked)


def send_from_thread(s: fe.CEventStream, e: fe.Event) -> None:
    threading.Thread(target=s.send, args=(e,)).start()


async def same_loop_and_dropped_awaitables() -> None:
    # Tasks of one loop handing events over (they park on their awaitables' own futures
    # and wake each other without call_soon_threadsafe).
    s = C(4)

    async def produce() -> None:
        for i in range(200):
            await s.asend(ev(i))
        s.close()

    async def consume() -> int:
        return len([e async for e in s])

    got = await asyncio.gather(produce(), consume())
    assert got[1] == 200, got
    # Awaitables driven by hand and parked, then closed or dropped: they leave the list.
    s = C(1)
    aw = s.areceive().__await__()
    aw.send(None)
    aw.close()
    aw = s.areceive().__await__()
    aw.send(None)
    del aw
    s.send(ev(1))
    full = C(1)
    full.send(ev(2))
    aw = full.asend(ev(3)).__await__()
    aw.send(None)
    del aw
    assert full.try_receive() is not None and full.try_receive() is None
    assert s.try_receive() is not None


async def async_paths() -> None:
    await same_loop_and_dropped_awaitables()
    loop = asyncio.get_running_loop()
    for _ in range(5 * SCALE):
        s = C(2)
        await s.asend(ev(1))
        assert await s.areceive() is not None
        assert await s.asend_many([ev(2), ev(3)]) == 2
        assert len(await s.areceive_many(5)) == 2
        await s.asend_many([ev(4), ev(5)])
        # Parked senders: one times out, one is cancelled, one is woken by a thread.
        try:
            await s.asend(ev(6), timeout=0.005)
        except TimeoutError:
            pass
        task = asyncio.ensure_future(s.asend(ev(7)))
        await asyncio.sleep(0.005)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        task = asyncio.ensure_future(s.asend(ev(8)))
        await asyncio.sleep(0.005)
        t = threading.Thread(target=s.receive)
        t.start()
        await task
        t.join(60)
        s.policy = DROP
        try:
            await s.asend(ev(9))
        except fe.StreamFull:
            pass
        assert await s.asend_many([ev(10)]) == 0
        s.policy = BLOCK
        assert len(await s.areceive_many(5)) == 2
        # Parked receivers: woken by a thread's send, by close; cancelled; timed out.
        task = asyncio.ensure_future(s.areceive())
        await asyncio.sleep(0.005)
        loop.call_soon(send_from_thread, s, ev(11))
        assert await asyncio.wait_for(task, 60) is not None
        try:
            await s.areceive(timeout=0.005)
        except TimeoutError:
            pass
        task = asyncio.ensure_future(s.areceive())
        await asyncio.sleep(0.005)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        tasks = [asyncio.ensure_future(s.areceive_many(3)) for _ in range(2)]
        tasks.append(asyncio.ensure_future(s.areceive()))
        await asyncio.sleep(0.005)
        s.close()
        res = await asyncio.gather(*tasks, return_exceptions=True)
        assert res[:2] == [[], []] and isinstance(res[2], fe.StreamClosed), res
        try:
            await s.asend(ev(12))
        except fe.StreamClosed:
            pass
        async for _ in s:
            pass
        # A parked sender on a stream that is then closed.
        s = C(1)
        await s.asend(ev(13))
        task = asyncio.ensure_future(s.asend(ev(14)))
        await asyncio.sleep(0.005)
        s.close()
        try:
            await task
        except fe.StreamClosed:
            pass
        del task, tasks, res


def fork_path() -> None:
    if not hasattr(os, "fork"):
        return
    s = C(4)
    s.send(ev(0))
    pid = os.fork()
    if pid == 0:
        s.send(ev(1))
        s.receive_many(5)
        s.close()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    s.close()
    list(s)


def history_paths() -> None:
    """Sequence numbers, the history ring (growth, eviction, release), replay, entries."""
    for _ in range(5 * SCALE):
        s = C(8, history=5)
        s.send_many([ev(i) for i in range(8)])
        assert s.last_seq == 8
        assert s.receive_entry()[0] == 1
        assert s.try_receive_entry()[0] == 2
        assert len(s.receive_many(2**64)) == 6   # evicts 3 from the history
        assert [seq for seq, _ in s.replay(3)] == [4, 5, 6, 7, 8]
        expect(fe.HistoryLost, s.replay, 1)
        assert s.try_send(ev(9)) and s.dropped == 0
        s.close()
        assert [seq for seq, _ in s.entries(after=7)] == [8, 9]
        assert s.try_receive_entry() is None
        assert len(s.instance_id) == 16
        expect(TypeError, s.__copy__)
        # Deallocated with a full history and buffered events.
        h = C(100, history=50)
        h.send_many([ev(i) for i in range(100)])
        h.receive_many(70)
        expect(ValueError, C, history=-1)


def gc_paths() -> None:
    """Streams the cycle collector frees: through a buffered event, through a task
    parked on a loop that was closed without cancelling it."""
    # asyncio logs "Task was destroyed but it is pending!" for those tasks: expected here.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    for i in range(5 * SCALE):
        s = C(4, history=2)
        e = ev(2 * i)
        e.data["stream"] = s
        s.send(e)
        s.send(ev(1))
        s.receive()
        del s, e
        s = C(1)
        if i % 2:
            s.send(ev(3))
        loop = asyncio.new_event_loop()

        async def wait(s: fe.CEventStream = s, send: bool = bool(i % 2)) -> None:
            if send:
                await s.asend(ev(5))
            else:
                await s.areceive()

        task = loop.create_task(wait())
        loop.run_until_complete(asyncio.sleep(0.001))
        loop.close()
        del s, loop, task
    gc.collect()


def manager_paths() -> None:
    m = fe.StreamManager(buffer_size=3, stream_class=C)
    for i in range(10 * SCALE):
        s, _ = m.get_or_create(f"s{i % 3}")
        s.try_send(ev(i))
        m.get_stream_info(f"s{i % 3}")
        if i % 4 == 0:
            m.close_stream(f"s{i % 3}")
    m.list_stream_info()
    m.cleanup_inactive(0.000001)
    m.close_all()


def main() -> int:
    sync_paths()
    thread_paths()
    asyncio.run(async_paths())
    fork_path()
    manager_paths()
    history_paths()
    gc_paths()
    gc.collect()
    alive = sum(r() is not None for r in REFS)
    print(f"valgrind workload: {len(REFS)} events made, {alive} still alive")
    return 1 if alive else 0


if __name__ == "__main__":
    sys.exit(main())
