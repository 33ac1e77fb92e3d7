"""The peers: every queue the benchmarks compare, behind one small interface.

A peer builds a `Channel` whose attributes are the *native bound methods* of the thing
under test (``stream.send``, ``queue.put`` ...), not wrappers: a scenario binds them to
locals and calls them in its loop, so every peer pays only for itself.

Optional peers (janus, culsans, the compiled core) are looked up once; a peer that is not
there is *skipped with its reason*, never an error.
"""

from __future__ import annotations

import asyncio
import collections
import importlib
import queue
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastevents as fe

# Capabilities (a peer lists the ones it has).
SINGLE = "single"  # put/get from one thread without blocking (P1)
THREADS = "threads"  # blocking put/get across threads (P2, P3, P8)
BOUNDED = "bounded"  # has a capacity: can be full (P4)
ASYNC = "async"  # awaitable put/get on one loop (P9)
THREAD_TO_ASYNC = "thread_to_async"  # sync put in a thread, awaitable get on a loop (P10)


class Channel:
    """One queue instance, seen through the uniform interface.

    ``put``/``get`` block (or, for single-thread peers, simply do not wait);
    ``try_put`` returns False when full (None if the peer has no such call);
    ``put_nowait`` raises ``full_exc`` when full; ``get_nowait`` returns an item or raises;
    ``aput``/``aget`` are coroutine functions; ``aclose`` ends a consumer's ``async for``
    (fastevents) or is a no-op. ``obj`` is the underlying object.
    """

    __slots__ = (
        "aclose",
        "aget",
        "aput",
        "close",
        "full_exc",
        "get",
        "get_nowait",
        "obj",
        "put",
        "put_nowait",
        "try_put",
    )

    def __init__(self, obj: Any, **methods: Any) -> None:
        self.obj = obj
        self.put = methods.get("put")
        self.get = methods.get("get")
        self.try_put = methods.get("try_put")
        self.put_nowait = methods.get("put_nowait")
        self.get_nowait = methods.get("get_nowait")
        self.full_exc = methods.get("full_exc", queue.Full)
        self.aput = methods.get("aput")
        self.aget = methods.get("aget")
        self.close = methods.get("close") or _noop
        self.aclose = methods.get("aclose") or _anoop


def _noop() -> None:
    return None


async def _anoop() -> None:
    return None


@dataclass(frozen=True)
class Peer:
    """A competitor: ``make(maxsize, drop)`` builds a fresh `Channel`."""

    key: str
    name: str
    caps: frozenset[str]
    make: Callable[[int, bool], Channel] | None
    reason: str = ""  # why it is unavailable ("" when available)
    fastevents: bool = False
    version: str = ""

    @property
    def available(self) -> bool:
        return self.make is not None

    def has(self, cap: str) -> bool:
        return cap in self.caps


# -- fastevents ------------------------------------------------------------------------


def _fe_maker(cls: Any) -> Callable[[int, bool], Channel]:
    drop_policy = fe.BackpressurePolicy.DROP
    block_policy = fe.BackpressurePolicy.BLOCK

    def make(maxsize: int, drop: bool = False) -> Channel:
        s = cls(maxsize, drop_policy if drop else block_policy)
        return Channel(
            s, put=s.send, get=s.receive, try_put=s.try_send, put_nowait=s.send,
            get_nowait=s.try_receive, full_exc=fe.StreamFull, aput=s.asend,
            aget=s.areceive, close=s.close, aclose=_async_close(s),
        )

    return make


def _async_close(s: Any) -> Callable[[], Any]:
    async def aclose() -> None:
        s.close()

    return aclose


_ALL_CAPS = frozenset({SINGLE, THREADS, BOUNDED, ASYNC, THREAD_TO_ASYNC})


def _fastevents_peers() -> list[Peer]:
    if fe.CEventStream is not None:
        c = Peer("fe-c", "fastevents (cython)", _ALL_CAPS, _fe_maker(fe.CEventStream),
                 fastevents=True, version=fe.__version__)
    else:
        why = "compiled core unavailable"
        if fe.EXTENSION_IMPORT_ERROR is not None:
            why += f": {fe.EXTENSION_IMPORT_ERROR}"
        else:
            why += " (FASTEVENTS_NO_EXTENSIONS is set, or not CPython)"
        c = Peer("fe-c", "fastevents (cython)", _ALL_CAPS, None, why, fastevents=True)
    py = Peer("fe-py", "fastevents (python)", _ALL_CAPS, _fe_maker(fe.PyEventStream),
              fastevents=True, version=fe.__version__)
    return [c, py]


# -- the standard library ----------------------------------------------------------------


def _make_queue(maxsize: int, drop: bool = False) -> Channel:
    q: queue.Queue[Any] = queue.Queue(maxsize)
    return Channel(q, put=q.put, get=q.get, put_nowait=q.put_nowait,
                   get_nowait=q.get_nowait, full_exc=queue.Full)


def _make_simple(maxsize: int, drop: bool = False) -> Channel:
    q: queue.SimpleQueue[Any] = queue.SimpleQueue()  # unbounded: maxsize is ignored
    return Channel(q, put=q.put, get=q.get, put_nowait=q.put_nowait, get_nowait=q.get_nowait)


def _make_deque(maxsize: int, drop: bool = False) -> Channel:
    d: collections.deque[Any] = collections.deque()  # unbounded, not a blocking queue
    return Channel(d, put=d.append, get=d.popleft, put_nowait=d.append, get_nowait=d.popleft)


def _make_asyncio(maxsize: int, drop: bool = False) -> Channel:
    # Python >= 3.10: the queue binds to a loop on first use, not at creation.
    q: asyncio.Queue[Any] = asyncio.Queue(maxsize)
    return Channel(q, put_nowait=q.put_nowait, get_nowait=q.get_nowait,
                   full_exc=asyncio.QueueFull, aput=q.put, aget=q.get)


# -- optional third-party peers ------------------------------------------------------------


def _import(name: str) -> tuple[Any, str]:
    try:
        return importlib.import_module(name), ""
    except Exception as exc:  # ImportError, or a broken install
        return None, (f"not installed ({type(exc).__name__}: {exc}); "
                      "pip install 'fastevents-stream[bench]'")


def _mixed_maker(mod: Any) -> Callable[[int, bool], Channel]:
    """janus and culsans share one shape: ``Queue(maxsize)`` with ``sync_q``/``async_q``."""

    def make(maxsize: int, drop: bool = False) -> Channel:
        q = mod.Queue(maxsize)
        s, a = q.sync_q, q.async_q
        return Channel(q, put=s.put, get=s.get, put_nowait=s.put_nowait,
                       get_nowait=s.get_nowait, full_exc=queue.Full, aput=a.put,
                       aget=a.get, close=q.close, aclose=q.aclose)

    return make


def _version(dist: str) -> str:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return ""


def _mixed_peer(key: str) -> Peer:
    caps = frozenset({SINGLE, THREADS, BOUNDED, ASYNC, THREAD_TO_ASYNC})
    mod, reason = _import(key)
    if mod is None:
        return Peer(key, key, caps, None, reason)
    return Peer(key, key, caps, _mixed_maker(mod), version=_version(key))


def _make_anyio(maxsize: int, drop: bool = False) -> Channel:
    import anyio

    send, recv = anyio.create_memory_object_stream[Any](maxsize)

    def close() -> None:
        send.close()
        recv.close()

    async def aclose() -> None:
        close()

    return Channel((send, recv), put_nowait=send.send_nowait, get_nowait=recv.receive_nowait,
                   full_exc=anyio.WouldBlock, aput=send.send, aget=recv.receive,
                   close=close, aclose=aclose)


def _anyio_peer() -> Peer:
    caps = frozenset({ASYNC, BOUNDED})
    mod, reason = _import("anyio")
    if mod is None:
        return Peer("anyio", "anyio memory stream", caps, None, reason)
    return Peer("anyio", "anyio memory stream", caps, _make_anyio, version=_version("anyio"))


def _make_aiologic(maxsize: int, drop: bool = False) -> Channel:
    import aiologic

    q: Any = aiologic.Queue(maxsize)

    def put_nowait(item: Any) -> None:
        q.green_put(item, blocking=False)

    def get_nowait() -> Any:
        return q.green_get(blocking=False)

    return Channel(q, put=q.green_put, get=q.green_get, put_nowait=put_nowait,
                   get_nowait=get_nowait, full_exc=aiologic.QueueFull, aput=q.async_put,
                   aget=q.async_get)


def _aiologic_peer() -> Peer:
    # A thread-to-task queue (it claims to beat culsans): compared where it is one (P10),
    # and between tasks of one loop (P9).
    caps = frozenset({ASYNC, THREAD_TO_ASYNC})
    mod, reason = _import("aiologic")
    if mod is None:
        return Peer("aiologic", "aiologic.Queue", caps, None, reason)
    return Peer("aiologic", "aiologic.Queue", caps, _make_aiologic,
                version=_version("aiologic"))


_PEERS: list[Peer] | None = None


def all_peers() -> list[Peer]:
    """Every peer, available or not, in report order (computed once)."""
    global _PEERS
    if _PEERS is None:
        _PEERS = [
            *_fastevents_peers(),
            Peer("queue", "queue.Queue", frozenset({SINGLE, THREADS, BOUNDED}), _make_queue),
            Peer("simplequeue", "queue.SimpleQueue", frozenset({SINGLE, THREADS}),
                 _make_simple),
            Peer("deque", "collections.deque", frozenset({SINGLE}), _make_deque),
            Peer("asyncio", "asyncio.Queue", frozenset({ASYNC, BOUNDED}), _make_asyncio),
            _mixed_peer("janus"),
            _mixed_peer("culsans"),
            _anyio_peer(),
            _aiologic_peer(),
        ]
    return _PEERS


def peer(key: str) -> Peer:
    """The peer called ``key`` (``fe-c``, ``fe-py``, ``queue`` ...); KeyError if unknown."""
    for p in all_peers():
        if p.key == key:
            return p
    raise KeyError(key)


def peers_with(cap: str, *, exclude: tuple[str, ...] = ()) -> list[Peer]:
    """Every peer (available or not) that has ``cap``."""
    return [p for p in all_peers() if p.has(cap) and p.key not in exclude]
