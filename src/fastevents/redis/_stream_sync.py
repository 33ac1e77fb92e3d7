"""The Redis stream's core: its state, its sync API and the helpers the async side shares.

``RedisEventStream`` (``_stream``) adds the async methods on top of this class; the split
is only for size, and nothing but ``RedisEventStream`` is ever instantiated.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

from redis.exceptions import RedisError

from .._args import (
    check_after,
    check_cancel,
    check_event,
    check_events,
    check_max_items,
    check_policy,
    check_timeout,
    stream_error,
    timeout_error,
)
from .._errors import (
    Cancelled,
    HistoryLost,
    InvalidEvent,
    StreamClosed,
    StreamError,
    StreamFull,
)
from .._event import Event
from .._stream_abc import Stream
from .._types import BackpressurePolicy
from ._backend import NETWORK_ERRORS, translate, translated, unavailable
from ._keys import InstanceKeys
from ._waitloop import Waiter

if TYPE_CHECKING:
    from ._backend import Backend

__all__ = ["RedisStreamCore"]

# Script result codes (see the scripts' headers).
_OK, _CLOSED, _FULL_WAIT, _GONE, _FULL_DROPPED = 0, 1, 2, 3, 4
_EMPTY, _ABANDONED = 2, 4
# What send_many does after one call (_batch_step).
_AGAIN, _WAIT, _STOP = 0, 1, 2
_SENDER, _RECEIVER = 0, 1
_MAIN = threading.main_thread()

_Taken = tuple[int, int, list[bytes]]


def _decode(item: bytes) -> tuple[int, Event]:
    i = item.index(b" ")
    return int(item[:i]), Event.from_json(item[i + 1:])


class RedisStreamCore(Stream):
    """Everything of a Redis stream but its async methods (see ``RedisEventStream``)."""

    __slots__ = (
        "__weakref__", "_backend", "_bs", "_gen", "_hist", "_id", "_keys", "_klist",
        "_last_token", "_recv_keys", "_send_keys",
    )

    def __init__(
        self, backend: Backend, stream_id: str, gen: str, keys: InstanceKeys,
        buffer_size: int, history: int,
    ) -> None:
        self._backend = backend
        self._id = stream_id
        self._gen = gen
        self._keys = keys
        self._klist = list(keys)
        # The hot scripts' keys, encoded once (redis-py passes bytes through as they are).
        self._send_keys = [k.encode() for k in (keys.m, keys.q, keys.s)]
        self._recv_keys = [k.encode() for k in (keys.m, keys.q, keys.h, keys.s)]
        # The main thread's last receive token whose reply arrived: the next receive drops
        # its record, so those records do not pile up until they expire.
        self._last_token: str | None = None
        self._bs = buffer_size
        self._hist = history

    def __repr__(self) -> str:
        return f"<RedisEventStream id={self._id!r} instance={self._gen} buffer_size={self._bs}>"

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("a RedisEventStream cannot be pickled; get it from a manager instead")

    def __copy__(self) -> NoReturn:
        raise TypeError("a RedisEventStream cannot be copied")

    def __deepcopy__(self, memo: object) -> NoReturn:
        raise TypeError("a RedisEventStream cannot be copied")

    # -- helpers ----------------------------------------------------------------------

    def _error(self, cls: type[StreamError], op: str, detail: str | None = None) -> StreamError:
        return stream_error(cls, self._id, op, self._bs, detail)

    def _state(self, *fields: str) -> list[bytes | None]:
        with translated(self._id, "state"):
            return self._backend.client.hmget(self._keys.m, list(fields))  # type: ignore[return-value]

    def _send_call(self, mode: str, batch: list[str]) -> tuple[int, int, int]:
        # Never more than buffer_size events per call: no more can fit, and the rest
        # are passed as a count (for drop accounting), which keeps big batches cheap.
        passed = batch[: self._bs]
        args: list[Any] = [mode, len(batch) - len(passed), *passed]
        scripts = self._backend.scripts
        try:
            code, n, sv = scripts.run(scripts.send, self._send_keys, args)
        except RedisError as exc:
            raise translate(exc, self._id, "send") from exc
        return int(code), int(n), int(sv)

    def _take(self, max_items: int, op: str, interruptible: bool) -> _Taken:
        """One receive attempt: ``(code, sv, items)``."""
        scripts = self._backend.scripts
        if not interruptible:
            try:
                res = scripts.run(scripts.receive, self._recv_keys, [max_items])
            except RedisError as exc:
                raise translate(exc, self._id, op) from exc
            return int(res[0]), int(res[1]), (res[2] if len(res) > 2 else [])
        token_key = self._keys.token(self._backend.token())
        keys: list[Any] = [*self._recv_keys, token_key]
        if self._last_token is not None:
            keys.append(self._last_token)
            self._last_token = None
        try:
            res = scripts.run(scripts.receive, keys, [max_items])
        except RedisError as exc:
            raise translate(exc, self._id, op) from exc
        except BaseException:
            # Ctrl-C (or SystemExit) while the script may have run: put back whatever
            # it took, on a fresh connection (redis-py discarded the interrupted one).
            try:
                scripts.restore(keys=[*self._klist, token_key], args=[])
            except Exception:
                pass
            raise
        if int(res[0]) == _OK:
            self._last_token = token_key
        return int(res[0]), int(res[1]), (res[2] if len(res) > 2 else [])

    def _restore_items(self, items: list[bytes]) -> None:
        try:
            self._backend.scripts.restore(keys=self._klist, args=items)
        except Exception:  # Redis gone: nothing more can be done for these
            pass

    def _restore_if_taken(self, cf: concurrent.futures.Future[_Taken]) -> None:
        if cf.cancelled() or cf.exception() is not None:
            return
        code, _, items = cf.result()
        if code == _OK and items:
            self._restore_items(items)

    # -- waiting ----------------------------------------------------------------------

    def _park(self, w: Waiter) -> None:
        loop = self._backend.waits
        if loop.park(w):
            try:
                with translated(self._id, "wait"):
                    loop.interrupt()
            except BaseException:
                loop.unpark(w)
                raise

    def _wait(
        self, sv: int, kind: int, deadline: float | None,
        cancel: threading.Event | None, op: str,
    ) -> None:
        """Block until the signal moves past ``sv``, the deadline, or ``cancel``."""
        w = Waiter(self._keys, sv, kind)
        self._park(w)
        event = w.event
        assert event is not None
        try:
            # Slices: the cancel token is polled, and Ctrl-C lands within one slice.
            slice_s = 0.05 if cancel is not None else 0.2
            while not event.is_set():
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    event.wait(min(slice_s, remaining))
                else:
                    event.wait(slice_s)
                if cancel is not None and cancel.is_set() and not event.is_set():
                    raise self._error(Cancelled, op)
        finally:
            self._backend.waits.unpark(w)
        if w.error is not None:
            raise self._wait_error(w.error, op)

    def _wait_error(self, error: BaseException, op: str) -> StreamError:
        if isinstance(error, NETWORK_ERRORS):
            return unavailable(error, self._id, op)
        return StreamError(str(error), stream_id=self._id, op=op)

    # -- state ------------------------------------------------------------------------

    @property
    def buffer_size(self) -> int:
        return self._bs

    @property
    def stream_id(self) -> str:
        return self._id

    @property
    def instance_id(self) -> str:
        return self._gen

    @property
    def history(self) -> int:
        return self._hist

    @property
    def closed(self) -> bool:
        # An instance whose keys expired is finished too.
        return self._state("closed")[0] != b"0"

    @property
    def policy(self) -> BackpressurePolicy:
        raw = self._state("pol")[0]
        return BackpressurePolicy(int(raw)) if raw is not None else BackpressurePolicy.BLOCK

    @policy.setter
    def policy(self, value: BackpressurePolicy) -> None:
        self.set_backpressure_policy(value)

    def set_backpressure_policy(self, policy: BackpressurePolicy) -> None:
        pol = check_policy(policy)
        with translated(self._id, "set_policy"):
            self._backend.scripts.set_policy(keys=[self._keys.m], args=[int(pol)])

    @property
    def last_seq(self) -> int:
        return int(self._state("seq")[0] or 0)

    @property
    def dropped(self) -> int:
        return int(self._state("drop")[0] or 0)

    def __len__(self) -> int:
        with translated(self._id, "len"):
            return int(self._backend.client.llen(self._keys.q))

    # -- manager hooks ----------------------------------------------------------------

    def _touch(self) -> None:
        with translated(self._id, "touch"):
            self._backend.scripts.touch(keys=[self._keys.m], args=[])

    def _activity(self) -> tuple[float, int, int]:
        """(seconds since the last real operation, waiting senders, receivers), all processes."""
        with translated(self._id, "info"):
            pipe = self._backend.client.pipeline(transaction=False)
            pipe.hget(self._keys.m, "act")
            pipe.hgetall(self._keys.w)
            pipe.time()
            act, waiters, (secs, micros) = pipe.execute()
        now_ms = secs * 1000 + micros // 1000
        senders = receivers = 0
        for field, value in waiters.items():
            count, _, deadline = value.partition(b":")
            if int(deadline or 0) > now_ms:
                if field.endswith(b":s"):
                    senders += int(count)
                else:
                    receivers += int(count)
        age = max(0.0, (now_ms - int(act or now_ms)) / 1000.0)
        return age, senders, receivers

    def _waiting(self) -> tuple[int, int]:
        _, senders, receivers = self._activity()
        return senders, receivers

    def _last_activity_age(self) -> float:
        return self._activity()[0]

    def _idle_seconds(self) -> float:
        age, senders, receivers = self._activity()
        return 0.0 if senders or receivers else age

    def _last_activity(self) -> datetime:
        return datetime.fromtimestamp(time.time() - self._last_activity_age(), timezone.utc)

    # -- sending ----------------------------------------------------------------------

    def _json(self, event: Event, op: str) -> str:
        try:
            return event.to_json()
        except InvalidEvent as exc:
            raise InvalidEvent(exc.detail, stream_id=self._id, op=op) from None

    def _closed_error(self, op: str, sent: int | None = None) -> StreamError:
        err = self._error(StreamClosed, op)
        err.sent = sent
        return err

    def _send_done(self, code: int, op: str) -> bool:
        """After one send attempt: True when it went in, False to wait for room; raises
        when it cannot wait (closed, expired, refused under ``DROP``)."""
        if code == _OK:
            return True
        if code in (_CLOSED, _GONE):
            raise self._error(StreamClosed, op)
        if code == _FULL_DROPPED:
            raise self._error(StreamFull, op)
        return False

    def _batch_step(self, code: int, n: int, sent: int, remaining: int) -> int:
        """After one ``send_many`` call that took ``n`` of ``remaining`` events (``sent``
        in all now): call again at once, wait for room, or stop (the rest was refused)."""
        if code == _OK:
            return _AGAIN
        if code in (_CLOSED, _GONE):
            raise self._closed_error("send_many", sent)
        if code == _FULL_DROPPED:
            return _STOP
        if n > 0 and n == min(remaining, self._bs):
            return _AGAIN  # a full chunk went in: there may be room for the next one
        return _WAIT

    def _batch_timeout(self, sent: int) -> TimeoutError:
        err = timeout_error(self._id, "send_many")
        err.sent = sent  # type: ignore[attr-defined]
        return err

    def send(
        self, event: Event, *, timeout: float | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        check_event(event, self._id, "send")
        t = check_timeout(timeout)
        check_cancel(cancel)
        batch = [self._json(event, "send")]
        code, _, sv = self._send_call("first", batch)
        if self._send_done(code, "send"):
            return
        deadline = None if t is None else time.monotonic() + t
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                raise timeout_error(self._id, "send")
            if cancel is not None and cancel.is_set():
                raise self._error(Cancelled, "send")
            self._wait(sv, _SENDER, deadline, cancel, "send")
            code, _, sv = self._send_call("block", batch)
            if self._send_done(code, "send"):
                return

    def try_send(self, event: Event) -> bool:
        check_event(event, self._id, "try_send")
        code, _, _ = self._send_call("try", [self._json(event, "try_send")])
        if code in (_CLOSED, _GONE):
            raise self._error(StreamClosed, "try_send")
        return code == _OK

    def send_many(self, events: Iterable[Event], *, timeout: float | None = None) -> int:
        batch = check_events(events, self._id, "send_many")
        t = check_timeout(timeout)
        docs = [self._json(e, "send_many") for e in batch]
        deadline = None if t is None else time.monotonic() + t
        sent = 0
        mode = "first"
        while sent < len(docs):
            code, n, sv = self._send_call(mode, docs[sent:])
            sent += n
            step = self._batch_step(code, n, sent, len(docs) - sent + n)
            if step == _STOP:
                break
            mode = "block"
            if step == _WAIT:
                if deadline is not None and time.monotonic() >= deadline:
                    raise self._batch_timeout(sent)
                self._wait(sv, _SENDER, deadline, None, "send_many")
        return sent

    # -- receiving --------------------------------------------------------------------

    def _received(self, code: int, items: list[bytes]) -> list[bytes] | None:
        """One receive attempt's outcome: the items, ``[]`` once drained (or expired),
        ``None`` to wait (or, for an abandoned token, to try again)."""
        if code == _OK:
            return items
        if code in (_CLOSED, _GONE):
            return []
        return None

    def _receive_deadline(
        self, deadline: float | None, timeout: float | None, now: float, op: str,
    ) -> float | None:
        """The wait's deadline, fixed at the first failed attempt (``timeout=0`` tries
        once); raises ``TimeoutError`` once it has passed."""
        if timeout is None:
            return None
        if deadline is None:
            deadline = now + timeout
        if now >= deadline:
            raise timeout_error(self._id, op)
        return deadline

    def _receive_items(
        self, max_items: int, timeout: float | None, cancel: threading.Event | None, op: str,
    ) -> list[bytes]:
        """Wait for at least one event and take up to ``max_items``; ``[]`` once drained."""
        interruptible = threading.current_thread() is _MAIN
        deadline = None
        while True:
            code, sv, items = self._take(max_items, op, interruptible)
            got = self._received(code, items)
            if got is not None:
                return got
            if code == _ABANDONED:  # cannot happen with a fresh token; try again
                continue
            deadline = self._receive_deadline(deadline, timeout, time.monotonic(), op)
            if cancel is not None and cancel.is_set():
                raise self._error(Cancelled, op)
            self._wait(sv, _RECEIVER, deadline, cancel, op)

    def receive_entry(
        self, *, timeout: float | None = None, cancel: threading.Event | None = None,
    ) -> tuple[int, Event]:
        t = check_timeout(timeout)
        check_cancel(cancel)
        items = self._receive_items(1, t, cancel, "receive")
        if not items:
            raise self._error(StreamClosed, "receive")
        return _decode(items[0])

    def receive(
        self, *, timeout: float | None = None, cancel: threading.Event | None = None,
    ) -> Event:
        return self.receive_entry(timeout=timeout, cancel=cancel)[1]

    def try_receive_entry(self) -> tuple[int, Event] | None:
        code, _, items = self._take(1, "try_receive", threading.current_thread() is _MAIN)
        return _decode(items[0]) if code == _OK and items else None

    def try_receive(self) -> Event | None:
        entry = self.try_receive_entry()
        return None if entry is None else entry[1]

    def receive_many(self, max_items: int, *, timeout: float | None = None) -> list[Event]:
        n = check_max_items(max_items)
        t = check_timeout(timeout)
        return [_decode(i)[1] for i in self._receive_items(n, t, None, "receive_many")]

    # -- history ----------------------------------------------------------------------

    def replay(self, after: int) -> list[tuple[int, Event]]:
        after = check_after(after)
        with translated(self._id, "replay"):
            pipe = self._backend.client.pipeline(transaction=True)
            pipe.hget(self._keys.m, "rs")
            pipe.lrange(self._keys.h, 0, -1)
            received, kept = pipe.execute()
        entries = [_decode(i) for i in kept]
        received = int(received or 0)
        if received <= after:
            return []
        oldest = entries[0][0] if entries else None
        if oldest is None or oldest > after + 1:
            raise HistoryLost(
                f"events after {after} are no longer kept", stream_id=self._id,
                op="replay", oldest=oldest,
            )
        return [(seq, ev) for seq, ev in entries if seq > after]

    def entries(self, after: int | None = None) -> Iterator[tuple[int, Event]]:
        if after is not None:
            after = check_after(after)
        return self._entries(after)

    def _entries(self, after: int | None) -> Iterator[tuple[int, Event]]:
        if after is not None:
            yield from self.replay(after)
        while True:
            try:
                seq, event = self.receive_entry()
            except StreamClosed:
                return
            if after is None or seq > after:
                yield seq, event

    # -- iteration ----------------------------------------------------------------------

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        try:
            return self.receive()
        except StreamClosed:
            raise StopIteration from None

    # -- closing ----------------------------------------------------------------------

    def _close(self, unlink: bool) -> int:
        with translated(self._id, "close"):
            return int(self._backend.scripts.close(
                keys=self._klist, args=[self._gen, "1" if unlink else "0"]))

    def close(self) -> None:
        if self._close(False) != 0:
            raise self._error(StreamClosed, "close")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close(False)
