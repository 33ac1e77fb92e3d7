"""Which async library runs the caller (asyncio or trio), and the three things the Redis
stream needs from it: its clock, running a blocking script call off the event loop, and
parking until the wait loop wakes it.

Script calls run on threads under both, and neither can abandon one half-way: asyncio's
worker finishes the call after a cancellation (the stream then restores what a receive
took), and trio's ``to_thread.run_sync`` defers the cancellation until the call returns,
so its result is never lost. ``trio`` is looked up in ``sys.modules`` only: a trio run
has imported it already, and ``import fastevents.redis`` does not.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ._backend import Backend

_T = TypeVar("_T")


def _resolve(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_result(None)


class AsyncioRuntime:
    __slots__ = ("loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def time(self) -> float:
        return self.loop.time()

    def submit(
        self, backend: Backend, fn: Callable[..., _T], *args: Any,
    ) -> tuple[concurrent.futures.Future[_T], asyncio.Future[_T]]:
        cf = backend.submit(fn, *args)
        return cf, asyncio.wrap_future(cf, loop=self.loop)

    async def call(self, backend: Backend, fn: Callable[..., _T], *args: Any) -> _T:
        return await self.submit(backend, fn, *args)[1]

    def parker(self) -> AsyncioParker:
        return AsyncioParker(self.loop)


class AsyncioParker:
    __slots__ = ("fut", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.fut: asyncio.Future[None] = loop.create_future()

    def wake(self) -> None:
        try:
            self.loop.call_soon_threadsafe(_resolve, self.fut)
        except RuntimeError:  # its loop is closed: nobody waits for this any more
            pass

    async def wait(self, deadline: float | None) -> None:
        """Until woken or the deadline (loop time); the caller's cancellation propagates."""
        timer = None
        if deadline is not None:
            timer = self.loop.call_at(deadline, _resolve, self.fut)
        try:
            await self.fut
        finally:
            if timer is not None:
                timer.cancel()


class TrioRuntime:
    __slots__ = ("token", "trio")

    def __init__(self, trio: Any, token: Any) -> None:
        self.trio = trio
        self.token = token

    def time(self) -> float:
        return float(self.trio.current_time())

    async def call(self, backend: Backend, fn: Callable[..., _T], *args: Any) -> _T:
        # Not abandoned on cancel: the call finishes and its result is returned (trio
        # delivers the cancellation at the caller's next checkpoint).
        result: _T = await self.trio.to_thread.run_sync(fn, *args)
        return result

    def parker(self) -> TrioParker:
        return TrioParker(self.trio, self.token)


class TrioParker:
    __slots__ = ("event", "token", "trio")

    def __init__(self, trio: Any, token: Any) -> None:
        self.trio = trio
        self.token = token
        self.event = trio.Event()

    def wake(self) -> None:
        try:
            self.token.run_sync_soon(self.event.set)
        except self.trio.RunFinishedError:  # the run is over: nobody waits any more
            pass

    async def wait(self, deadline: float | None) -> None:
        if deadline is None:
            await self.event.wait()
            return
        with self.trio.move_on_at(deadline):
            await self.event.wait()


Runtime = AsyncioRuntime | TrioRuntime
Parker = AsyncioParker | TrioParker


def current() -> Runtime:
    """The async library driving the calling task."""
    loop = asyncio._get_running_loop()
    if loop is not None:
        return AsyncioRuntime(loop)
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            token = trio.lowlevel.current_trio_token()
        except RuntimeError:
            token = None
        if token is not None:
            return TrioRuntime(trio, token)
    raise RuntimeError(
        "fastevents.redis: the async stream methods need a running asyncio event loop or "
        "trio run (anyio works on either backend)"
    )
