"""``RedisEventStream``: the whole stream API on one Redis-backed stream instance.

Every change of state is one Lua script (``scripts/*.lua``), so the bound, the order and
exactly-once delivery hold for any number of processes. An event leaves the buffer only
inside ``receive.lua``; nothing is taken by a blocking read. A blocked caller parks in
the manager's wait loop (``_waitloop``) with the signal version its failed attempt saw,
then tries again.

Interruptions cannot lose an event:

* asyncio callers run their script calls on worker threads; a task cancelled while its
  receive is in flight lets the call finish, and ``restore.lua`` puts what it took back
  at the front of the stream;
* a receive on the main thread (the one Ctrl-C interrupts) passes a token: the script
  keeps what it took under that token for a few seconds, and the ``KeyboardInterrupt``
  path restores it (and tombstones the token, in case the call reaches Redis late).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import AsyncIterator, Iterable

from .._args import (
    check_after,
    check_event,
    check_events,
    check_max_items,
    check_timeout,
    timeout_error,
)
from .._errors import StreamClosed
from .._event import Event
from . import _runtime
from ._backend import NETWORK_ERRORS, unavailable
from ._stream_sync import (
    _RECEIVER,
    _SENDER,
    _STOP,
    _WAIT,
    RedisStreamCore,
    _decode,
    _Taken,
)
from ._waitloop import Waiter

__all__ = ["RedisEventStream"]


class RedisEventStream(RedisStreamCore):
    """One stream instance in Redis, shared by every process that reaches it.

    Made by :class:`~fastevents.redis.RedisStreamManager`; not constructed directly.
    The sync API and the state live in :class:`RedisStreamCore` (``_stream_sync``);
    the async methods, under asyncio or trio, are here.
    """

    __slots__ = ()

    async def _atake(self, max_items: int, op: str) -> _Taken:
        rt = _runtime.current()
        if isinstance(rt, _runtime.TrioRuntime):
            return await rt.call(self._backend, self._take, max_items, op, False)
        cf, fut = rt.submit(self._backend, self._take, max_items, op, False)
        try:
            return await fut
        except BaseException:
            # Cancelled while the script ran on its worker: it finishes there, and
            # whatever it took goes back to the front of the stream. The cancellation
            # waits for that (one round trip), so a receiver started next sees the
            # events in order.
            if not cf.cancel():
                restored: concurrent.futures.Future[None] = concurrent.futures.Future()

                def restore(f: concurrent.futures.Future[_Taken]) -> None:
                    try:
                        self._restore_if_taken(f)
                    finally:
                        restored.set_result(None)

                if cf.done():  # not on this loop's thread: the restore is a round trip
                    self._backend.submit(restore, cf)
                else:
                    cf.add_done_callback(restore)
                try:
                    await asyncio.wrap_future(restored)
                except BaseException:  # cancelled again: the restore still happens
                    pass
            raise

    async def _asend_call(self, mode: str, batch: list[str]) -> tuple[int, int, int]:
        return await _runtime.current().call(self._backend, self._send_call, mode, batch)

    async def _await(
        self, rt: _runtime.Runtime, sv: int, kind: int, deadline: float | None, op: str,
    ) -> None:
        parker = rt.parker()
        w = Waiter(self._keys, sv, kind, parker)
        waits = self._backend.waits
        try:
            if waits.park(w):
                try:
                    await rt.call(self._backend, waits.interrupt)
                except NETWORK_ERRORS as exc:
                    raise unavailable(exc, self._id, op) from exc
            await parker.wait(deadline)
        finally:
            waits.unpark(w)
        if w.error is not None:
            raise self._wait_error(w.error, op)

    async def asend(self, event: Event, *, timeout: float | None = None) -> None:
        check_event(event, self._id, "send")
        t = check_timeout(timeout)
        batch = [self._json(event, "send")]
        code, _, sv = await self._asend_call("first", batch)
        if self._send_done(code, "send"):
            return
        rt = _runtime.current()
        deadline = None if t is None else rt.time() + t
        while True:
            if deadline is not None and rt.time() >= deadline:
                raise timeout_error(self._id, "send")
            await self._await(rt, sv, _SENDER, deadline, "send")
            code, _, sv = await self._asend_call("block", batch)
            if self._send_done(code, "send"):
                return

    async def asend_many(self, events: Iterable[Event], *, timeout: float | None = None) -> int:
        batch = check_events(events, self._id, "send_many")
        t = check_timeout(timeout)
        docs = [self._json(e, "send_many") for e in batch]
        rt = _runtime.current()
        deadline = None if t is None else rt.time() + t
        sent = 0
        mode = "first"
        while sent < len(docs):
            code, n, sv = await self._asend_call(mode, docs[sent:])
            sent += n
            step = self._batch_step(code, n, sent, len(docs) - sent + n)
            if step == _STOP:
                break
            mode = "block"
            if step == _WAIT:
                if deadline is not None and rt.time() >= deadline:
                    raise self._batch_timeout(sent)
                await self._await(rt, sv, _SENDER, deadline, "send_many")
        return sent

    async def _areceive_items(self, max_items: int, timeout: float | None, op: str) -> list[bytes]:
        rt = _runtime.current()
        deadline = None
        while True:
            code, sv, items = await self._atake(max_items, op)
            got = self._received(code, items)
            if got is not None:
                return got
            deadline = self._receive_deadline(deadline, timeout, rt.time(), op)
            await self._await(rt, sv, _RECEIVER, deadline, op)

    async def areceive_entry(self, *, timeout: float | None = None) -> tuple[int, Event]:
        t = check_timeout(timeout)
        items = await self._areceive_items(1, t, "receive")
        if not items:
            raise self._error(StreamClosed, "receive")
        return _decode(items[0])

    async def areceive(self, *, timeout: float | None = None) -> Event:
        return (await self.areceive_entry(timeout=timeout))[1]

    async def areceive_many(self, max_items: int, *, timeout: float | None = None) -> list[Event]:
        n = check_max_items(max_items)
        t = check_timeout(timeout)
        items = await self._areceive_items(n, t, "receive_many")
        return [_decode(i)[1] for i in items]

    def aentries(self, after: int | None = None) -> AsyncIterator[tuple[int, Event]]:
        if after is not None:
            after = check_after(after)
        return self._aentries(after)

    async def _aentries(self, after: int | None) -> AsyncIterator[tuple[int, Event]]:
        if after is not None:
            rt = _runtime.current()
            for entry in await rt.call(self._backend, self.replay, after):
                yield entry
        while True:
            try:
                seq, event = await self.areceive_entry()
            except StreamClosed:
                return
            if after is None or seq > after:
                yield seq, event

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.areceive()
        except StreamClosed:
            raise StopAsyncIteration from None

    def __enter__(self) -> RedisEventStream:
        return self
