"""Keep Python-level locks usable in a child process after ``os.fork()``.

A ``threading.Lock`` held by another thread at the moment of a fork stays locked forever
in the child, because that thread does not exist there. Objects that own such locks
register here; just before a fork we take every registered lock (so no object is caught
half-way through an update), and afterwards the parent releases them while the child
gives each object fresh locks.

The compiled core keeps its own C-level registry for the same job (see ``_stream_c.pyx``).
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Protocol


class ForkSafe(Protocol):
    def _fork_acquire(self) -> None: ...
    def _fork_release(self) -> None: ...
    def _fork_reinit(self) -> None: ...


# Re-entrant: the forking thread holds it across every other library's at-fork hook, and
# such a hook may create a stream (which registers here); a plain Lock deadlocks there.
_registry_lock = threading.RLock()
_registry: weakref.WeakSet[ForkSafe] = weakref.WeakSet()
_held: list[ForkSafe] = []


def register(obj: ForkSafe) -> None:
    with _registry_lock:
        _registry.add(obj)


def _before_fork() -> None:
    # Holding the registry lock keeps new objects out until the fork is over, so every
    # object the child can see was locked (and so consistent) at the fork.
    _registry_lock.acquire()
    _held[:] = list(_registry)
    for obj in _held:
        obj._fork_acquire()


def _after_fork_in_parent() -> None:
    for obj in _held:
        obj._fork_release()
    _held.clear()
    _registry_lock.release()


def _after_fork_in_child() -> None:
    global _registry_lock
    # Every object gets fresh locks even if one of them fails; the first error is
    # re-raised at the end (os.register_at_fork reports it as unraisable).
    first: BaseException | None = None
    # The registry, not only _held: an object registered by a later at-fork hook of the
    # forking thread was not locked at the fork, and gets fresh locks all the same.
    for obj in list(_registry):
        try:
            obj._fork_reinit()
        except BaseException as exc:
            if first is None:
                first = exc
    _held.clear()
    _registry_lock = threading.RLock()
    if first is not None:
        try:
            raise first
        finally:
            first = None


if hasattr(os, "register_at_fork"):  # POSIX only; Windows has no fork.
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
