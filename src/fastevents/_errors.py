"""The exception hierarchy, and Go-style ``errors.Is`` helpers.

Every error a stream or the manager raises is a `StreamError`; the subclass says what
went wrong and the attributes say where (``stream_id``, ``op``), so ``str(err)`` reads
like the Go package's wrapped errors: ``stream s1: send: stream closed``.
"""

from __future__ import annotations

import builtins
from typing import Any, ClassVar

__all__ = [
    "Cancelled",
    "HistoryLost",
    "InvalidEvent",
    "StreamClosed",
    "StreamError",
    "StreamExists",
    "StreamFull",
    "StreamNotFound",
    "is_invalid_event",
    "is_stream_closed",
    "is_stream_full",
    "is_stream_not_found",
]


class StreamError(Exception):
    """Base class of every error raised by fastevents."""

    #: The fixed reason this class stands for; `detail` adds to it.
    kind: ClassVar[str] = "stream error"

    detail: str | None
    stream_id: str | None
    op: str | None
    #: How many events ``send_many`` had enqueued when it stopped early, else ``None``.
    sent: int | None

    def __init__(
        self,
        detail: str | None = None,
        *,
        stream_id: str | None = None,
        op: str | None = None,
    ) -> None:
        # args mirrors what was given positionally, like any exception; everything
        # else lives in attributes (and in __dict__, which is what pickling carries).
        super().__init__(*(() if detail is None else (detail,)))
        self.detail = detail
        self.stream_id = stream_id
        self.op = op
        self.sent = None

    def _reason(self) -> str:
        return self.kind + (": " + self.detail if self.detail else "")

    def __str__(self) -> str:
        reason = self._reason()
        if self.op is not None:
            reason = f"{self.op}: {reason}"
        if self.stream_id is not None:
            reason = f"stream {self.stream_id}: {reason}"
        return reason

    def __repr__(self) -> str:
        fields = [f"{k}={v!r}" for k, v in self._fields().items() if v is not None]
        return f"{type(self).__name__}({', '.join(fields)})"

    def _fields(self) -> dict[str, Any]:
        return {
            "detail": self.detail,
            "stream_id": self.stream_id,
            "op": self.op,
            "sent": self.sent,
        }

    def __reduce__(self) -> tuple[Any, ...]:
        # The keyword-only arguments cannot travel in the positional args tuple, so
        # rebuild from `detail` and restore every attribute (sent, buffer_size, notes,
        # anything a caller attached) from __dict__ via BaseException.__setstate__.
        return (type(self), (self.detail,), dict(self.__dict__))


class StreamClosed(StreamError):
    """The stream is closed (sending into it, closing it twice, or receiving from it drained)."""

    kind = "stream closed"


class StreamNotFound(StreamError):
    """The manager has no stream with that id."""

    kind = "stream not found"


class StreamFull(StreamError):
    """The buffer is full and the policy said not to wait."""

    kind = "stream full"

    buffer_size: int | None

    def __init__(
        self,
        detail: str | None = None,
        *,
        stream_id: str | None = None,
        op: str | None = None,
        buffer_size: int | None = None,
    ) -> None:
        super().__init__(detail, stream_id=stream_id, op=op)
        self.buffer_size = buffer_size

    def _reason(self) -> str:
        reason = self.kind
        if self.buffer_size is not None:
            reason += f" (buffer size {self.buffer_size})"
        return reason + (": " + self.detail if self.detail else "")

    def _fields(self) -> dict[str, Any]:
        fields = super()._fields()
        fields["buffer_size"] = self.buffer_size
        return fields


class StreamExists(StreamError):
    """The manager already has a stream with that id."""

    kind = "stream already exists"


class InvalidEvent(StreamError):
    """An event failed validation, or bytes on the wire are not a valid event."""

    kind = "invalid event"


class Cancelled(StreamError):
    """A ``cancel=`` token fired while the operation was waiting."""

    kind = "operation cancelled"


class HistoryLost(StreamError):
    """``replay(after)`` (or a resume) needs events that fell out of the stream's history.

    ``oldest`` is the lowest sequence number still replayable (``None`` when history
    keeps nothing), so a caller can tell how much was lost.
    """

    kind = "history lost"

    oldest: int | None

    def __init__(
        self,
        detail: str | None = None,
        *,
        stream_id: str | None = None,
        op: str | None = None,
        oldest: int | None = None,
    ) -> None:
        super().__init__(detail, stream_id=stream_id, op=op)
        self.oldest = oldest

    def _fields(self) -> dict[str, Any]:
        fields = super()._fields()
        fields["oldest"] = self.oldest
        return fields


# BaseExceptionGroup is 3.11+; a group is the analogue of a Go error joining several
# (errors.Join), which errors.Is searches too.
_GROUP: type[BaseException] | None = getattr(builtins, "BaseExceptionGroup", None)


def _is(err: object, cls: type[StreamError]) -> bool:
    """Go's ``errors.Is``: search `err`, its ``__cause__``/``__context__`` and group members.

    Iterative with a seen-set, because a chain can be made cyclic by hand
    (``a.__context__ = b; b.__context__ = a``) and recursion would not end.
    """
    if not isinstance(err, BaseException):
        return False
    stack = [err]
    seen: set[int] = set()
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, cls):
            return True
        for nxt in (e.__cause__, e.__context__):
            if nxt is not None:
                stack.append(nxt)
        if _GROUP is not None and isinstance(e, _GROUP):
            stack.extend(e.exceptions)  # type: ignore[attr-defined]
    return False


def is_stream_closed(err: object) -> bool:
    """True when `err` is, or was caused by, a `StreamClosed`."""
    return _is(err, StreamClosed)


def is_stream_not_found(err: object) -> bool:
    """True when `err` is, or was caused by, a `StreamNotFound`."""
    return _is(err, StreamNotFound)


def is_stream_full(err: object) -> bool:
    """True when `err` is, or was caused by, a `StreamFull`."""
    return _is(err, StreamFull)


def is_invalid_event(err: object) -> bool:
    """True when `err` is, or was caused by, an `InvalidEvent`."""
    return _is(err, InvalidEvent)
