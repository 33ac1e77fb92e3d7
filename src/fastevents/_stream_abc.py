"""``fastevents.Stream``: what every stream does, whichever backend carries it.

Both in-process twins (``PyEventStream``, ``CEventStream``) and the Redis stream are
instances of :class:`Stream`, so code annotated with ``fe.Stream`` accepts any of them
and type checkers agree. The pure twin subclasses it; the compiled twin (a final
``cdef class``) is registered as a virtual subclass, and its stub declares the base so
``mypy --strict`` sees the same thing ``isinstance`` does.

The methods are abstract: this class carries the typed contract and the docstrings,
each backend the behaviour (see ``docs/API.md``).
"""

from __future__ import annotations

import abc
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from types import TracebackType
from typing import Any, NoReturn, SupportsIndex

from ._args import refuse_copy
from ._event import Event
from ._types import BackpressurePolicy

__all__ = ["Stream"]


class Stream(abc.ABC):
    """A bounded, thread-safe stream of events with sync and async APIs."""

    __slots__ = ()

    # -- state ----------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def buffer_size(self) -> int:
        """The most events the stream holds accepted and not yet received."""

    @property
    @abc.abstractmethod
    def stream_id(self) -> str | None:
        """The id the stream's errors name (set by a manager), or ``None``."""

    @property
    @abc.abstractmethod
    def closed(self) -> bool:
        """True once ``close()`` was called (buffered events stay receivable)."""

    @property
    @abc.abstractmethod
    def policy(self) -> BackpressurePolicy:
        """What a send into a full stream does: ``BLOCK`` (wait) or ``DROP`` (raise)."""

    @policy.setter
    @abc.abstractmethod
    def policy(self, value: BackpressurePolicy) -> None: ...

    @abc.abstractmethod
    def set_backpressure_policy(self, policy: BackpressurePolicy) -> None:
        """Set :attr:`policy` (the Go package's spelling)."""

    @property
    @abc.abstractmethod
    def last_seq(self) -> int:
        """The sequence number of the last accepted event (0 before any)."""

    @property
    @abc.abstractmethod
    def history(self) -> int:
        """How many of the most recently received events are kept for :meth:`replay`."""

    @property
    @abc.abstractmethod
    def dropped(self) -> int:
        """How many events were refused because the stream was full, without waiting."""

    @property
    @abc.abstractmethod
    def instance_id(self) -> str:
        """An opaque token naming this stream instance.

        A stream created later under the same name has another token, so a resume id
        (``sse``) from a replaced stream is recognised as such.
        """

    @abc.abstractmethod
    def __len__(self) -> int:
        """How many events are buffered now."""

    # -- sending --------------------------------------------------------------------

    @abc.abstractmethod
    def send(
        self, event: Event, *, timeout: float | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """Send ``event``; under ``BLOCK`` wait for room, under ``DROP`` raise ``StreamFull``."""

    @abc.abstractmethod
    def try_send(self, event: Event) -> bool:
        """Send without waiting: ``False`` when the buffer is full (any policy)."""

    @abc.abstractmethod
    def send_many(self, events: Iterable[Event], *, timeout: float | None = None) -> int:
        """Validate every event, then enqueue them in order; return how many went in."""

    # -- receiving ------------------------------------------------------------------

    @abc.abstractmethod
    def receive(
        self, *, timeout: float | None = None, cancel: threading.Event | None = None,
    ) -> Event:
        """The next event, waiting for one; ``StreamClosed`` once closed and drained."""

    @abc.abstractmethod
    def try_receive(self) -> Event | None:
        """The next event if one is buffered, else ``None``."""

    @abc.abstractmethod
    def receive_many(self, max_items: int, *, timeout: float | None = None) -> list[Event]:
        """Wait for one event, then return up to ``max_items`` (``[]`` once drained)."""

    @abc.abstractmethod
    def receive_entry(
        self, *, timeout: float | None = None, cancel: threading.Event | None = None,
    ) -> tuple[int, Event]:
        """Like :meth:`receive`, with the event's sequence number: ``(seq, event)``."""

    @abc.abstractmethod
    def try_receive_entry(self) -> tuple[int, Event] | None:
        """Like :meth:`try_receive`, with the event's sequence number."""

    @abc.abstractmethod
    def replay(self, after: int) -> list[tuple[int, Event]]:
        """Kept, already-received events numbered above ``after``, oldest first.

        Raises ``HistoryLost`` when one of them is no longer kept.
        """

    @abc.abstractmethod
    def entries(self, after: int | None = None) -> Iterator[tuple[int, Event]]:
        """``replay(after)`` (when given), then ``receive_entry()`` until drained."""

    @abc.abstractmethod
    def __iter__(self) -> Iterator[Event]:
        """``for event in stream``: blocks for each event, ends when closed and drained."""

    @abc.abstractmethod
    def __next__(self) -> Event:
        """The next event (blocking); ``StopIteration`` once closed and drained."""

    # -- closing --------------------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Close: senders get ``StreamClosed``, receivers drain then end."""

    @abc.abstractmethod
    def __enter__(self) -> Stream:
        """``with stream:`` closes the stream on exit (if still open)."""

    @abc.abstractmethod
    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the stream if it is still open."""

    # -- copying ----------------------------------------------------------------------

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        """Streams refuse ``pickle``: they are live state (locks, waiting tasks)."""
        raise refuse_copy(self)

    def __copy__(self) -> NoReturn:
        """Streams refuse ``copy.copy``: share the object itself."""
        raise refuse_copy(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> NoReturn:
        """Streams refuse ``copy.deepcopy``: share the object itself."""
        raise refuse_copy(self)

    # -- async ----------------------------------------------------------------------

    @abc.abstractmethod
    async def asend(self, event: Event, *, timeout: float | None = None) -> None:
        """:meth:`send` from a task (asyncio or trio)."""

    @abc.abstractmethod
    async def areceive(self, *, timeout: float | None = None) -> Event:
        """:meth:`receive` from a task (asyncio or trio)."""

    @abc.abstractmethod
    async def areceive_entry(self, *, timeout: float | None = None) -> tuple[int, Event]:
        """:meth:`receive_entry` from a task (asyncio or trio)."""

    @abc.abstractmethod
    async def asend_many(
        self, events: Iterable[Event], *, timeout: float | None = None,
    ) -> int:
        """:meth:`send_many` from a task (asyncio or trio)."""

    @abc.abstractmethod
    async def areceive_many(
        self, max_items: int, *, timeout: float | None = None,
    ) -> list[Event]:
        """:meth:`receive_many` from a task (asyncio or trio)."""

    @abc.abstractmethod
    def aentries(self, after: int | None = None) -> AsyncIterator[tuple[int, Event]]:
        """:meth:`entries` for ``async for``."""

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[Event]:
        """``async for event in stream``: ends when closed and drained."""

    @abc.abstractmethod
    async def __anext__(self) -> Event:
        """The next event from a task; ``StopAsyncIteration`` once closed and drained."""
