"""The wait loop: one blocking reader per manager, fanning wake-ups out to local waiters.

A blocked ``XREAD`` pins a Redis connection, so a waiter does not read for itself: it
parks here, and one thread reads every waited-for stream's signal key (``:s``) with a
single ``XREAD BLOCK`` and wakes the waiters whose signal moved -- a
``threading.Event`` for a thread, a future (through ``call_soon_threadsafe``) for a task
on any loop. 1 000 tasks waiting on 1 000 streams cost one connection and, while
nothing happens, one command per ``block_ms``.

No wake-up is lost: a waiter parks with the signal version its failed attempt saw
(``sv``), and ``XREAD`` from ``0-<sv>`` returns at once if the signal has moved since.
A waiter on a key the current read does not cover interrupts it by writing to this
process's control key. Every few seconds (and at least every quarter of the shortest
TTL among the waited-on streams) the loop also leases this process's waiter counts to
Redis (``heartbeat.lua``), so a stream someone waits on is never cleaned up, its keys
never expire under its waiters, and ``StreamInfo`` counts the waiters of every process;
a beat that finds a stream's keys gone wakes its waiters, which then see it closed.
``stop()`` (the manager's ``close()``) wakes every waiter with "the manager is closed"
and ends the thread before it returns.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from ._keys import InstanceKeys

if TYPE_CHECKING:
    from ._backend import Backend

# A process's waiters keep a stream from cleanup for LEASE_MS after its last beat (so a
# crashed process holds a stream at most that long); beats renew it well before.
LEASE_MS = 15000
HEARTBEAT_S = 5.0
IDLE_EXIT_S = 10.0
# A beat also keeps the waited-on streams' keys alive, so it comes at least every quarter
# of the shortest TTL seen (heartbeat.lua returns it); never more often than this.
MIN_BEAT_S = 0.05
# After a failed beat (Redis down), the next one waits this long: no flat-out retries.
BEAT_RETRY_S = 0.5


class _Parker(Protocol):
    def wake(self) -> None: ...


class Waiter:
    """One parked sender or receiver: a thread (``event``) or a task (``parker``)."""

    __slots__ = ("after", "error", "event", "keys", "kind", "parked", "parker")

    def __init__(
        self, keys: InstanceKeys, after: int, kind: int, parker: _Parker | None = None,
    ) -> None:
        self.keys = keys
        self.after = after  # wake when the signal version exceeds this
        self.kind = kind  # 0 sender, 1 receiver
        self.parker = parker
        self.event = threading.Event() if parker is None else None
        self.error: BaseException | None = None
        self.parked = False

    def wake(self, error: BaseException | None = None) -> None:
        self.error = error
        if self.parker is not None:
            self.parker.wake()
        else:
            assert self.event is not None
            self.event.set()


class WaitLoop:
    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._parked: dict[str, set[Waiter]] = {}
        # Waiters per instance in this process, [senders, receivers], and which changed.
        self._counts: dict[InstanceKeys, list[int]] = {}
        self._dirty: set[InstanceKeys] = set()
        self._reading: frozenset[str] | None = None
        self._interrupting = False
        self._thread: threading.Thread | None = None
        self._reader: Any = None
        self._stopped = False
        self._beat_s = HEARTBEAT_S
        self._beat_retry_at = 0.0
        self.control_key = f"{backend.namespace}:wake:{backend.process}"
        # Keep each BLOCK well below the socket timeout.
        self.block_ms = max(10, min(1000, int(backend.socket_timeout * 500)))

    # -- parking (any thread) ---------------------------------------------------------

    def park(self, w: Waiter) -> bool:
        """Park ``w``; True when the caller must :meth:`interrupt` the current read."""
        with self._lock:
            if self._stopped:
                w.wake(RuntimeError("the manager is closed"))
                return False
            self._parked.setdefault(w.keys.s, set()).add(w)
            w.parked = True
            counts = self._counts.setdefault(w.keys, [0, 0])
            counts[w.kind] += 1
            self._dirty.add(w.keys)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="fastevents-redis-waits", daemon=True)
                self._thread.start()
            self._cond.notify()
            if self._reading is None or w.keys.s in self._reading or self._interrupting:
                return False
            self._interrupting = True
            return True

    def unpark(self, w: Waiter) -> None:
        with self._lock:
            if w.parked:
                w.parked = False
                waiters = self._parked.get(w.keys.s)
                if waiters is not None:
                    waiters.discard(w)
                    if not waiters:
                        del self._parked[w.keys.s]
            counts = self._counts.get(w.keys)
            if counts is not None:
                counts[w.kind] -= 1
                self._dirty.add(w.keys)

    def interrupt(self) -> None:
        """End the current blocking read early, so that it picks up a new key."""
        pipe = self._backend.client.pipeline(transaction=False)
        pipe.xadd(self.control_key, {"w": "1"}, maxlen=1)
        pipe.expire(self.control_key, 60)
        pipe.execute()

    def stop(self) -> None:
        """Wake every waiter with "the manager is closed" and end the loop's thread."""
        with self._lock:
            self._stopped = True
            waiters = [w for ws in self._parked.values() for w in ws]
            for w in waiters:
                w.parked = False
            self._parked.clear()
            thread, reader = self._thread, self._reader
            self._cond.notify_all()
        for w in waiters:
            w.wake(RuntimeError("the manager is closed"))
        if reader is not None:
            # Shut the reader's socket: its blocked XREAD ends now, not after block_ms.
            try:
                reader.connection_pool.disconnect()
            except Exception:
                pass
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.block_ms / 1000 + 2)

    def waiting(self, keys: InstanceKeys) -> tuple[int, int]:
        with self._lock:
            counts = self._counts.get(keys)
            return (0, 0) if counts is None else (counts[0], counts[1])

    # -- the loop (its own thread) ----------------------------------------------------

    def _run(self) -> None:
        reader = self._backend.reader()
        with self._lock:
            self._reader = reader  # stop() shuts its socket
        control_after = "0-0"
        last_beat = 0.0
        try:
            while True:
                with self._lock:
                    idle_since = time.monotonic()
                    while True:
                        if self._stopped:
                            return
                        now = time.monotonic()
                        beat_due = now >= self._beat_retry_at and (
                            bool(self._dirty) or (
                                bool(self._counts) and now - last_beat >= self._beat_s))
                        if self._parked or beat_due:
                            break
                        if not self._counts and now - idle_since > IDLE_EXIT_S:
                            self._thread = None
                            return
                        wait_s = 1.0
                        if self._counts:  # the next lease beat
                            wait_s = min(wait_s, last_beat + self._beat_s - now)
                        if self._dirty:  # a beat held back after a failure
                            wait_s = min(wait_s, self._beat_retry_at - now)
                        self._cond.wait(max(0.01, wait_s))
                    streams = {
                        key: f"0-{min(w.after for w in ws)}"
                        for key, ws in self._parked.items()
                    }
                    now = time.monotonic()
                    beats: list[tuple[InstanceKeys, list[int]]] = []
                    full_beat = False
                    if now >= self._beat_retry_at:
                        full_beat = now - last_beat >= self._beat_s
                        dirty = set(self._counts) if full_beat else self._dirty
                        beats = [(k, list(self._counts.get(k, (0, 0)))) for k in dirty]
                        self._dirty = set()
                        for k, c in beats:
                            if c == [0, 0]:
                                self._counts.pop(k, None)
                    self._reading = frozenset(streams)
                    self._interrupting = False
                if beats:
                    if full_beat:
                        last_beat = now
                    self._heartbeat(beats, full_beat)
                if not streams:
                    continue
                streams[self.control_key] = control_after
                try:
                    # Back for the next beat in time (it keeps short-TTL streams alive).
                    block = max(10, min(self.block_ms, int(self._beat_s * 1000)))
                    res = reader.xread(streams, block=block)  # type: ignore[arg-type]
                except Exception as exc:  # Redis down: every waiter hears it
                    self._fail_all(exc)
                    with self._lock:
                        if not self._stopped:
                            self._cond.wait(0.2)
                    continue
                finally:
                    with self._lock:
                        self._reading = None
                if res:
                    control_after = self._wake(res, control_after)
        finally:
            with self._lock:
                if self._reader is reader:
                    self._reader = None
            reader.close()

    def _wake(self, res: Any, control_after: str) -> str:
        woken: list[Waiter] = []
        with self._lock:
            for raw_key, entries in _xread_items(res):
                key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
                last = entries[-1][0]
                last_id = last.decode() if isinstance(last, bytes) else last
                if key == self.control_key:
                    control_after = last_id
                    continue
                version = int(last_id.partition("-")[2])
                waiters = self._parked.get(key)
                if not waiters:
                    continue
                for w in [w for w in waiters if w.after < version]:
                    waiters.discard(w)
                    w.parked = False
                    woken.append(w)
                if not waiters:
                    del self._parked[key]
        for w in woken:
            w.wake()
        return control_after

    def _fail_all(self, exc: BaseException) -> None:
        with self._lock:
            if self._stopped:  # stop() woke them already, with the real reason
                return
            woken = [w for ws in self._parked.values() for w in ws]
            for w in woken:
                w.parked = False
            self._parked.clear()
        for w in woken:
            w.wake(exc)

    def _heartbeat(self, beats: list[tuple[InstanceKeys, list[int]]], full: bool) -> None:
        script = self._backend.scripts.heartbeat
        process = self._backend.process
        try:
            pipe = self._backend.client.pipeline(transaction=False)
            for keys, (senders, receivers) in beats:
                script(keys=list(keys), args=[LEASE_MS, process, senders, receivers], client=pipe)
            results = pipe.execute()
        except Exception:  # best effort: retried after a pause; waiters see real errors
            with self._lock:
                self._dirty.update(k for k, _ in beats)
                self._beat_retry_at = time.monotonic() + BEAT_RETRY_S
            return
        ttls = [int(r) for r in results if int(r) > 0]
        gone = {keys.s for (keys, _), r in zip(beats, results, strict=True) if int(r) == 0}
        woken: list[Waiter] = []
        with self._lock:
            # Beat often enough to keep the shortest-lived waited-on stream alive (a full
            # beat covers every waited-on stream, so it may also lengthen the interval).
            shortest = min(ttls) / 4000 if ttls else HEARTBEAT_S
            current = HEARTBEAT_S if full else self._beat_s
            self._beat_s = max(MIN_BEAT_S, min(current, shortest))
            # A stream whose keys vanished under its waiters (flushed, evicted): wake
            # them, so that their next attempt finds it gone instead of waiting forever.
            for key in gone:
                for w in self._parked.pop(key, ()):
                    w.parked = False
                    woken.append(w)
        for w in woken:
            w.wake()

def _xread_items(res: Any) -> list[tuple[Any, Any]]:
    """``XREAD``'s reply as (key, entries) pairs, in RESP2's shape or RESP3's map."""
    if isinstance(res, dict):
        return [
            (key, value[0] if value and isinstance(value[0], list) else value)
            for key, value in res.items()
        ]
    return [(key, entries) for key, entries in res]
