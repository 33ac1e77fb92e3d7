"""The connections one manager (and its streams) share: a bounded blocking pool for the
scripts, a small thread pool that runs them for asyncio callers, and the wait loop.

Why asyncio callers go through threads rather than ``redis.asyncio``: a stream must work
from any event loop in any thread, and an asyncio connection belongs to one loop. A
script call handed to a worker thread also cannot be interrupted half-way by a task's
cancellation: it finishes, and a receive whose caller is gone puts its events back
(``restore.lua``). Waiting itself costs no thread: waiters park in the wait loop.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
import secrets
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .._errors import StreamError
from ._errors import RedisUnavailable
from ._scripts import Scripts
from ._waitloop import WaitLoop

_T = TypeVar("_T")

# redis-py's ConnectionError covers refused, reset and "no connection available in the
# pool"; its TimeoutError is not the builtin one. BusyLoadingError (Redis replaying its
# AOF after a restart) is a ConnectionError too.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
)


class ManagerClosed(redis.exceptions.RedisError):
    """Raised by a closed manager's pool instead of opening a connection again."""


class _Pool(redis.BlockingConnectionPool):
    """The scripts' pool; once its manager is closed it hands out no connection, and
    closes those that calls still in flight give back (no connection outlives close())."""

    refuse = False

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if self.refuse:
            raise ManagerClosed("the manager is closed")
        return super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]

    def release(self, connection: Any) -> None:
        super().release(connection)  # type: ignore[no-untyped-call]
        if self.refuse:
            connection.disconnect()


def unavailable(exc: BaseException, stream_id: str | None, op: str) -> RedisUnavailable:
    err = RedisUnavailable(str(exc) or type(exc).__name__, stream_id=stream_id, op=op)
    err.__cause__ = exc
    return err


def translate(exc: redis.exceptions.RedisError, stream_id: str | None, op: str) -> StreamError:
    """redis-py's error as a fastevents error (raise it ``from exc``)."""
    if isinstance(exc, NETWORK_ERRORS):
        return unavailable(exc, stream_id, op)
    if isinstance(exc, ManagerClosed):
        return StreamError(str(exc), stream_id=stream_id, op=op)
    return StreamError(f"redis: {exc}", stream_id=stream_id, op=op)


@contextmanager
def translated(stream_id: str | None, op: str) -> Iterator[None]:
    """Turn redis-py's errors into fastevents errors (its own as ``__cause__``)."""
    try:
        yield
    except redis.exceptions.RedisError as exc:
        raise translate(exc, stream_id, op) from exc


_LIVE: weakref.WeakSet[Backend] = weakref.WeakSet()


class Backend:
    """Connections, scripts, worker threads and the wait loop of one manager."""

    def __init__(
        self, url: str, *, namespace: str, socket_timeout: float, max_connections: int,
    ) -> None:
        self.url = url
        self.namespace = namespace
        self.socket_timeout = socket_timeout
        self.max_connections = max_connections
        self._closed = False
        self._setup()
        _LIVE.add(self)

    def _setup(self) -> None:
        # No retries: a retried script could run twice (a send accepted twice).
        # The pool blocks for a free connection at most socket_timeout, then raises.
        self.pool = _Pool.from_url(
            self.url,
            max_connections=self.max_connections,
            timeout=self.socket_timeout,
            socket_timeout=self.socket_timeout,
            socket_connect_timeout=self.socket_timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self.client = redis.Redis(connection_pool=self.pool)
        self.scripts = Scripts(self.client)
        self.process = secrets.token_hex(6)
        self._tokens = itertools.count(1)
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self.waits = WaitLoop(self)

    def reader(self) -> redis.Redis:
        """A client with one connection of its own, for the wait loop's blocking reads."""
        pool = redis.ConnectionPool.from_url(
            self.url,
            max_connections=1,
            # Each BLOCK is shorter than this (WaitLoop.block_ms): redis-py would otherwise
            # time out a healthy blocked read.
            socket_timeout=self.socket_timeout,
            socket_connect_timeout=self.socket_timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        return redis.Redis(connection_pool=pool)

    def token(self) -> str:
        return f"{self.process}.{next(self._tokens)}"

    def submit(self, fn: Callable[..., _T], *args: Any) -> concurrent.futures.Future[_T]:
        """Run ``fn`` on a worker thread (asyncio callers' script calls)."""
        if self._closed:
            # No thread after close(): ``fn`` fails at once on the closed pool.
            done: concurrent.futures.Future[_T] = concurrent.futures.Future()
            try:
                done.set_result(fn(*args))
            except BaseException as exc:
                done.set_exception(exc)
            return done
        executor = self._executor
        if executor is None:
            with self._executor_lock:
                executor = self._executor
                if executor is None:
                    executor = self._executor = concurrent.futures.ThreadPoolExecutor(
                        max_workers=self.max_connections,
                        thread_name_prefix="fastevents-redis",
                    )
        return executor.submit(fn, *args)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.pool.refuse = True
        self.waits.stop()  # wakes the waiters ("the manager is closed"), ends its thread
        with self._executor_lock:
            if self._executor is not None:
                # Idle workers end now; a call in flight finishes, then its thread ends.
                self._executor.shutdown(wait=False)
        # Idle connections now; those in use are closed as their calls give them back.
        try:
            self.pool.disconnect(inuse_connections=False)
        except TypeError:  # redis-py 5.0's blocking pool: all of them
            self.pool.disconnect()

    def _after_fork(self) -> None:
        # The child has none of the parent's threads, and must not share its sockets.
        self._setup()


def _reinit_after_fork() -> None:
    for backend in list(_LIVE):
        if not backend._closed:
            backend._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)
