"""``RedisStreamManager``: ``StreamManager``'s API with its state in Redis.

A name points at its current instance (``<prefix>cur``); creating, finding, closing and
cleaning up go through scripts on that one hash tag, so many processes agree: one
``get_or_create`` creates, ``cleanup_inactive`` sees every process's activity and
waiters. The namespace's index (a sorted set by creation time) lists the names; it is
pruned of names whose keys expired, and disappears with its last name.
"""

from __future__ import annotations

import math
import numbers
import secrets
import threading
import time
import weakref
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any

from .. import _forksafe
from .._args import (
    check_buffer_size,
    check_history,
    check_policy,
    check_stream_id,
    check_threshold,
)
from .._errors import StreamExists, StreamNotFound
from .._manager import StreamInfo
from .._types import BackpressurePolicy
from ._backend import Backend, translated
from ._keys import check_namespace, index_key, instance_keys, name_prefix
from ._stream import RedisEventStream

__all__ = ["RedisStreamManager"]


def _member(stream_id: str) -> bytes:
    """A name as the index stores it (any str, lone surrogates too)."""
    return stream_id.encode("utf-8", "surrogatepass")


def _check_seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    seconds = float(value)
    if math.isnan(seconds) or math.isinf(seconds) or seconds <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return seconds


class RedisStreamManager:
    """Named streams in Redis, shared by every process using the same URL and namespace."""

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        buffer_size: int = 100,
        policy: BackpressurePolicy = BackpressurePolicy.BLOCK,
        *,
        namespace: str = "fastevents",
        history: int = 0,
        ttl: float = 86400.0,
        socket_timeout: float = 5.0,
        max_connections: int = 16,
    ) -> None:
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, not {type(url).__name__}")
        self._buffer_size = check_buffer_size(buffer_size)
        self._policy = check_policy(policy)
        self._history = check_history(history)
        self._namespace = check_namespace(namespace)
        self._ttl_ms = max(1, int(_check_seconds("ttl", ttl) * 1000))
        timeout = _check_seconds("socket_timeout", socket_timeout)
        if isinstance(max_connections, bool) or not isinstance(max_connections, int):
            raise TypeError("max_connections must be an int")
        if max_connections < 2:
            raise ValueError("max_connections must be >= 2")
        self._backend = Backend(
            url, namespace=self._namespace, socket_timeout=timeout,
            max_connections=max_connections,
        )
        self._index = index_key(self._namespace)
        # One object per live instance while anyone holds it, so repeated lookups
        # return the same stream; names that expired in Redis leave nothing behind here.
        self._streams: weakref.WeakValueDictionary[str, RedisEventStream] = (
            weakref.WeakValueDictionary())
        self._lock = threading.Lock()
        # A fork while another thread holds the lock must not leave it locked in the
        # child (the backend renews its own connections and threads after a fork).
        _forksafe.register(self)

    # -- configuration ----------------------------------------------------------------

    @property
    def buffer_size(self) -> int:
        return self._buffer_size

    @property
    def policy(self) -> BackpressurePolicy:
        return self._policy

    @property
    def history(self) -> int:
        return self._history

    @property
    def namespace(self) -> str:
        return self._namespace

    def __repr__(self) -> str:
        return (
            f"<RedisStreamManager namespace={self._namespace!r}"
            f" buffer_size={self._buffer_size} policy={self._policy.name}>"
        )

    def close(self) -> None:
        """Release the connections and the wait thread (the streams in Redis stay as
        they are). Callers waiting in this manager's streams, and any later call on them,
        get a ``StreamError`` saying that the manager is closed; a second close does
        nothing."""
        self._backend.close()

    def __enter__(self) -> RedisStreamManager:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _fork_acquire(self) -> None:
        self._lock.acquire()

    def _fork_release(self) -> None:
        self._lock.release()

    def _fork_reinit(self) -> None:
        self._lock = threading.Lock()

    # -- creation and lookup ----------------------------------------------------------

    def _stream(self, stream_id: str, gen: str, bs: int, hist: int) -> RedisEventStream:
        with self._lock:
            stream = self._streams.get(stream_id)
            if stream is None or stream._gen != gen:
                keys = instance_keys(name_prefix(self._namespace, stream_id), gen)
                stream = RedisEventStream(self._backend, stream_id, gen, keys, bs, hist)
                self._streams[stream_id] = stream
            return stream

    def _obtain(self, stream_id: str, op: str, mode: str) -> tuple[RedisEventStream, bool]:
        prefix = name_prefix(self._namespace, stream_id)
        gen = secrets.token_hex(8)
        keys = instance_keys(prefix, gen)
        backend = self._backend
        with translated(stream_id, op):
            # Indexed first (NX keeps the first creation time): a name is never live and
            # missing from the index; a name indexed but never created is pruned later.
            # The index has no TTL of its own: sends and receives (other slots on a
            # Cluster) cannot refresh it, and a live stream must stay listed. Names whose
            # keys expired are pruned whenever a manager lists or cleans up.
            backend.client.zadd(self._index, {_member(stream_id): time.time()}, nx=True)
            res = backend.scripts.create(
                keys=[keys.cur, keys.m, keys.s],
                args=[gen, self._buffer_size, int(self._policy), self._history,
                      self._ttl_ms, mode, prefix],
            )
        code = int(res[0])
        if code == 1:
            raise StreamExists(stream_id=stream_id, op=op)
        gen = res[1].decode()
        return self._stream(stream_id, gen, int(res[2]), int(res[4])), code == 2

    def create_stream(self, stream_id: str) -> RedisEventStream:
        """Create a stream (replacing a closed one); ``StreamExists`` if an open one has the id."""
        return self._obtain(check_stream_id(stream_id), "create", "create")[0]

    def get_or_create(self, stream_id: str) -> tuple[RedisEventStream, bool]:
        """``(stream, created)``; many processes at once create one stream."""
        return self._obtain(check_stream_id(stream_id), "get_or_create", "get_or_create")

    def _lookup(self, stream_id: str, op: str, touch: bool) -> list[Any]:
        prefix = name_prefix(self._namespace, stream_id)
        with translated(stream_id, op):
            return list(self._backend.scripts.lookup(
                keys=[prefix + "cur"], args=[prefix, "1" if touch else "0"]))

    def get_stream(self, stream_id: str) -> RedisEventStream:
        """The stream (closed ones too, until replaced or cleaned up); else ``StreamNotFound``."""
        res = self._lookup(check_stream_id(stream_id), "get", touch=True)
        if not res:
            raise StreamNotFound(stream_id=stream_id, op="get")
        return self._stream(stream_id, res[0].decode(), int(res[2]), int(res[4]))

    def __contains__(self, stream_id: object) -> bool:
        if not isinstance(stream_id, str) or not stream_id:
            return False
        return bool(self._lookup(stream_id, "contains", touch=False))

    # -- closing ----------------------------------------------------------------------

    def close_stream(self, stream_id: str) -> None:
        """Close the stream (even if already closed) and remove its name."""
        check_stream_id(stream_id)
        res = self._lookup(stream_id, "close", touch=False)
        if not res:
            raise StreamNotFound(stream_id=stream_id, op="close")
        stream = self._stream(stream_id, res[0].decode(), int(res[2]), int(res[4]))
        stream._close(unlink=True)
        self._forget(stream_id)

    def _forget(self, *stream_ids: str) -> None:
        if not stream_ids:
            return
        with translated(None, "index"):
            self._backend.client.zrem(self._index, *map(_member, stream_ids))
        with self._lock:
            for sid in stream_ids:
                self._streams.pop(sid, None)

    def close_all(self) -> None:
        for stream_id in self.list_streams():
            try:
                self.close_stream(stream_id)
            except StreamNotFound:  # closed by another process meanwhile
                pass

    def cleanup_inactive(self, threshold: float | timedelta) -> int:
        """Close and remove streams idle longer than ``threshold`` in every process."""
        seconds = check_threshold(threshold)
        if seconds <= 0:
            return 0
        names = self._names()
        if not names:
            return 0
        script = self._backend.scripts.cleanup
        with translated(None, "cleanup"):
            pipe = self._backend.client.pipeline(transaction=False)
            for sid in names:
                prefix = name_prefix(self._namespace, sid)
                script(keys=[prefix + "cur"], args=[prefix, int(seconds * 1000)], client=pipe)
            results = pipe.execute()
        removed = [sid for sid, r in zip(names, results, strict=True) if int(r) == 1]
        self._forget(*[sid for sid, r in zip(names, results, strict=True) if int(r) != 0])
        return len(removed)

    # -- inspection -------------------------------------------------------------------

    def _names(self) -> list[str]:
        with translated(None, "list"):
            raw: list[bytes] = self._backend.client.zrange(self._index, 0, -1)  # type: ignore[assignment]
        return [n.decode("utf-8", "surrogatepass") for n in raw]

    def _lookups(self, names: list[str]) -> list[list[Any]]:
        script = self._backend.scripts.lookup
        with translated(None, "list"):
            pipe = self._backend.client.pipeline(transaction=False)
            for sid in names:
                prefix = name_prefix(self._namespace, sid)
                script(keys=[prefix + "cur"], args=[prefix, "0"], client=pipe)
            return [list(r) for r in pipe.execute()] if names else []

    def list_stream_info(self) -> list[StreamInfo]:
        """Snapshots of every stream of the namespace, in creation order."""
        names = self._names()
        infos = []
        gone = []
        for sid, res in zip(names, self._lookups(names), strict=True):
            if res:
                infos.append(self._info(sid, res))
            else:
                gone.append(sid)
        if gone:
            with translated(None, "list"):
                # Only names still without an instance: one may be being created now.
                for sid in gone:
                    if not self._lookup(sid, "list", touch=False):
                        self._backend.client.zrem(self._index, _member(sid))
        return infos

    def list_streams(self) -> list[str]:
        return [info.id for info in self.list_stream_info()]

    def stream_count(self) -> int:
        return len(self.list_streams())

    def __len__(self) -> int:
        return self.stream_count()

    @staticmethod
    def _info(stream_id: str, res: list[Any]) -> StreamInfo:
        _, closed, bs, _, _, length, act, dropped, ws, wr, now = (
            res[0], *(int(x) for x in res[1:]))
        age = max(0, now - act) / 1000.0
        return StreamInfo(
            id=stream_id, buffer_size=bs, current_load=length, is_closed=bool(closed),
            last_activity=datetime.now(timezone.utc) - timedelta(seconds=age),
            dropped=dropped, waiting_senders=ws, waiting_receivers=wr,
        )

    def get_stream_info(self, stream_id: str) -> StreamInfo:
        """A snapshot of one stream (not activity); ``StreamNotFound`` if unknown."""
        res = self._lookup(check_stream_id(stream_id), "info", touch=False)
        if not res:
            raise StreamNotFound(stream_id=stream_id, op="info")
        return self._info(stream_id, res)
