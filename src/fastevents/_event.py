"""`Event`, `new_event` and the factories (the eight Go types, and ToolInputDelta).

An event is built for every streamed token, so the class is shaped for cost:

* ``__slots__``, and ``type``/``data`` stay plain slots: the compiled stream core reads
  them through their member descriptors to validate without calling into Python.
* The timestamp slot ``_ts`` holds integer microseconds since the epoch (UTC) for
  events stamped "now" (one ``time_ns()`` call, no ``datetime``), an aware ``datetime``
  when one was given or read from JSON, or ``None`` for an invalid event.  The
  ``timestamp`` property builds the ``datetime`` only when somebody asks for it.
* Go's zero time (``0001-01-01T00:00:00Z``, whatever offset spells it) is stored as
  ``None``: it *is* "no timestamp" in the Go package, and the compiled core's
  validation only has to test the slot for ``None``.
* The factories skip ``__init__``: their arguments cannot make the event invalid.
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import Mapping
from datetime import datetime, timedelta
from time import time_ns as _time_ns
from typing import TYPE_CHECKING, Any, TypeVar, cast

from . import _rfc3339, _wire
from ._errors import InvalidEvent
from ._rfc3339 import _ONE_MICROSECOND, EPOCH, UTC, ZERO_TIME, RawTimestamp, is_zero_time
from ._types import MEMBERS, WIRE_NAMES, EventType

__all__ = [
    "Event",
    "content_end_event",
    "content_start_event",
    "error_event",
    "message_start_event",
    "message_stop_event",
    "new_event",
    "text_delta_event",
    "thinking_event",
    "tool_input_delta_event",
    "usage_event",
]


class _Default(enum.Enum):
    """Sentinel type: "no timestamp given" (``None`` already means "invalid")."""

    NOW = "now"


_NOW = _Default.NOW
_E = TypeVar("_E", bound="Event")
# Module-level constants: a global lookup is cheaper than an attribute lookup on the
# enum class, and the factories run once per token.
_TEXT_DELTA = EventType.TEXT_DELTA
_CONTENT_START = EventType.CONTENT_START
_CONTENT_END = EventType.CONTENT_END
_MESSAGE_START = EventType.MESSAGE_START
_MESSAGE_STOP = EventType.MESSAGE_STOP
_ERROR = EventType.ERROR
_USAGE = EventType.USAGE
_THINKING = EventType.THINKING
_TOOL_INPUT_DELTA = EventType.TOOL_INPUT_DELTA
_new = object.__new__
_encode_event = _wire.encode_event
_event_from_json = _wire.event_from_json


def _coerce_type(value: Any) -> Any:
    # A plain int equal to a member becomes the member, so `ev.type` always prints
    # its wire name; anything else is kept as given for validate() to report.
    # bool is an int, but True is not an event type.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(MEMBERS):
        return MEMBERS[value]
    return value


def _is_event_type(value: object) -> bool:
    return value.__class__ is EventType or _coerce_type(value) is not value


def _shown_type(value: object) -> str:
    # A plain int shows as itself (999); anything else as its repr ('x', True, None).
    return str(value) if type(value) is int else repr(value)


def _coerce_timestamp(value: object) -> datetime | None:
    """The ``_ts`` for a timestamp given by a user: an aware datetime, or ``None``."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(f"timestamp must be a datetime or None, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)  # naive is taken as UTC (Go's time is never naive)
    if value.year == 1 and is_zero_time(value):
        return None  # Go's zero time: "no timestamp" (see the module docstring)
    return value


def _instant(ts: RawTimestamp) -> int:
    """Microseconds since the epoch of the instant `ts` names.

    Aware datetimes are compared through this rather than with ``==``: PEP 495 makes
    ``==`` between different zones False whenever one side is in a DST fold or gap,
    so an event would not equal its own JSON round trip.  Subtraction has no such
    exception: it always goes through ``utcoffset()``.
    """
    if type(ts) is int:
        return ts
    return (ts - EPOCH) // _ONE_MICROSECOND  # type: ignore[operator]


class Event:
    """One event of a stream: a `type`, a `data` dict and an aware `timestamp`.

    ``Event(type, data)`` is stamped now; an explicit ``timestamp=None`` builds an
    invalid event (``validate()`` fails), as Go's zero ``time.Time`` would.
    Construction never rejects a bad `type` or `data`: `validate` does.
    """

    # The order is the documented one; the compiled core finds each slot by name.
    __slots__ = ("type", "data", "_ts")

    type: EventType
    data: dict[str, Any]
    _ts: RawTimestamp | None

    def __init__(
        self,
        type: EventType | int,
        data: dict[str, Any] | None,
        timestamp: datetime | _Default | None = _NOW,
    ) -> None:
        self.type = type if type.__class__ is EventType else _coerce_type(type)
        self.data = data  # type: ignore[assignment]  # None is allowed: validate() reports it
        if timestamp is _NOW:
            self._ts = _time_ns() // 1000
        else:
            self._ts = _coerce_timestamp(timestamp)

    # -- timestamp -------------------------------------------------------------------

    @property
    def timestamp(self) -> datetime:
        """When the event happened, an aware ``datetime``.

        An event without a timestamp (built with ``timestamp=None`` or Go's zero time;
        `validate` refuses it) reads as Go's zero time, ``0001-01-01T00:00:00Z``,
        exactly as its ``Timestamp`` reads in the Go package.
        """
        ts = self._ts
        if type(ts) is int:
            # Integer arithmetic: exact to the microsecond, unlike fromtimestamp(float).
            # Not cached back into _ts: the int is what to_json formats fastest.
            return EPOCH + timedelta(microseconds=ts)
        if ts is None:
            return ZERO_TIME
        return ts  # type: ignore[return-value]

    @timestamp.setter
    def timestamp(self, value: datetime | None) -> None:
        # None (or Go's zero time) makes the event invalid, as in the constructor.
        self._ts = _coerce_timestamp(value)

    # -- validation ------------------------------------------------------------------

    def validate(self) -> None:
        """Raise `InvalidEvent` unless the event could be sent (checks in Go's order)."""
        if self._ts is None:
            raise InvalidEvent("timestamp cannot be zero")
        etype = self.type
        if not _is_event_type(etype):
            raise InvalidEvent(f"unknown event type: {_shown_type(etype)}")
        data = self.data
        if data is None:
            raise InvalidEvent("data cannot be None")
        if not isinstance(data, dict):
            raise InvalidEvent(f"data must be a dict, not {type(data).__name__}")

    # -- JSON ------------------------------------------------------------------------

    def to_json(self) -> str:
        """The wire form; `InvalidEvent` if invalid or if JSON cannot carry `data`."""
        etype = self.type
        ts = self._ts
        if etype.__class__ is not EventType or ts is None or self.data.__class__ is not dict:
            self.validate()  # raises, or the type is a plain int / data a dict subclass
            etype = MEMBERS[etype]
        return _encode_event(WIRE_NAMES[etype], self.data, ts)  # type: ignore[arg-type]

    if TYPE_CHECKING:

        @classmethod
        def from_json(cls: builtins.type[_E], s: str | bytes | bytearray) -> _E:
            """Read the wire form; any problem at all raises `InvalidEvent`."""

    else:
        # Bound straight to the reader, without a wrapper call: on every token's path.
        from_json = classmethod(_event_from_json)

    def to_dict(self) -> dict[str, Any]:
        """The wire shape as Python objects: ``json.loads(self.to_json())``."""
        return _wire.loads_checked(self.to_json())  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls: builtins.type[_E], d: Mapping[str, Any]) -> _E:
        """Build from the wire shape (`to_dict`'s output); `InvalidEvent` on bad input.

        Also accepts an `EventType`/int for ``"type"`` and a ``datetime`` for
        ``"timestamp"``.  ``data`` is copied through JSON, so the event owns it and
        is known to be writable: ``from_dict(d)`` equals ``from_json(json.dumps(d))``.
        """
        if not isinstance(d, Mapping):
            raise InvalidEvent(f"event must be a dict, not {type(d).__name__}")
        etype: Any = d.get("type")
        if isinstance(etype, int) and not isinstance(etype, bool):
            if not _is_event_type(etype):
                raise InvalidEvent(f"unknown event type: {_shown_type(etype)}")
            etype = MEMBERS[etype]
        else:
            etype = _wire.event_type_of(etype)
        data = d.get("data")
        if data is None:
            raise InvalidEvent("missing data")
        if not isinstance(data, dict):
            raise InvalidEvent(f"data must be a dict, not {type(data).__name__}")
        data = _wire.loads_checked(_wire.encode_data(data))
        ts: Any = d.get("timestamp")
        if isinstance(ts, datetime):
            ts = _coerce_timestamp(ts)
            if ts is None:  # Go's zero time: refused, as from_json refuses it
                raise InvalidEvent("timestamp cannot be zero")
        else:
            ts = _wire.timestamp_of(ts)
        ev = _new(cls)
        ev.type = etype
        ev.data = data
        ev._ts = ts
        return ev

    # -- the rest of the object protocol --------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        if self.type != other.type or self.data != other.data:
            return False
        a, b = self._ts, other._ts
        if a is None or b is None:
            return a is b
        if type(a) is int and type(b) is int:
            return a == b
        return _instant(a) == _instant(b)

    __hash__ = None  # type: ignore[assignment]  # mutable: data is a dict

    def __repr__(self) -> str:
        etype = self.type
        shown_type = f"EventType.{etype.name}" if etype.__class__ is EventType else repr(etype)
        ts = self._ts
        try:
            shown_ts = "None" if ts is None else _rfc3339.format_rfc3339(ts)
        except Exception:
            shown_ts = repr(ts)
        return f"{type(self).__name__}({shown_type}, {self.data!r}, timestamp={shown_ts})"

    def __reduce__(self) -> tuple[Any, ...]:
        cls = type(self)
        args = (cls, self.type, self.data, self._ts)
        if cls is Event:
            return (_rebuild, args)
        # A subclass may add slots or a __dict__: hand them to pickle/copy as the
        # default (dict, slots) state, which both restore without a __setstate__.
        return (_rebuild, args, _subclass_state(self))


def _subclass_state(ev: Event) -> Any:
    cls = type(ev)
    if "__getstate__" in _defined_below_event(cls):
        return cast(Any, ev).__getstate__()  # the subclass knows best
    slots: dict[str, Any] = {}
    for klass in cls.__mro__:
        if klass is Event or klass is object:
            continue
        names = klass.__dict__.get("__slots__", ())
        for name in (names,) if isinstance(names, str) else names:
            if name in ("__dict__", "__weakref__"):
                continue
            if name.startswith("__") and not name.endswith("__"):
                name = f"_{klass.__name__.lstrip('_')}{name}"  # private names are mangled
            try:
                slots[name] = getattr(ev, name)
            except AttributeError:
                pass  # an unset slot stays unset
    own = getattr(ev, "__dict__", None) or None
    if not slots:
        return own
    return (own, slots)


def _defined_below_event(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is Event:
            break
        names.update(klass.__dict__)
    return names


def _rebuild(cls: type, etype: Any, data: Any, ts: RawTimestamp | None) -> Event:
    ev: Event = _new(cls)
    ev.type = etype
    ev.data = data
    ev._ts = ts
    return ev


def new_event(type: EventType | int, data: dict[str, Any]) -> Event:
    """An event stamped now; `InvalidEvent` when `type` or `data` is not valid."""
    ev = Event(type, data)
    ev.validate()
    return ev


# The factories: one allocation, three slot stores, one clock read.  Written out
# rather than sharing a helper, because a call per token is measurable.
#
# The optional keywords (API.md, "Event model, extended") become data keys only when
# given.  At run time they are positional-or-keyword parameters with defaults: CPython
# 3.11+ specialises calls only to functions without keyword-only parameters, and the
# generic path would add 5-20 % to every event built without them.  Type checkers see,
# and enforce, the documented keyword-only signatures (the TYPE_CHECKING block).

if TYPE_CHECKING:

    def text_delta_event(text: str, *, index: int | None = None) -> Event:
        """A ``TEXT_DELTA`` event: ``{"text": text}`` (``"index"`` when given)."""

    def thinking_event(
        thinking: str, *, index: int | None = None, signature: str | None = None
    ) -> Event:
        """A ``THINKING`` event: ``{"thinking": thinking}``, plus ``"index"`` and
        ``"signature"`` when given (a signature comes with ``thinking=""``)."""

    def content_start_event(
        index: int,
        *,
        block_type: str | None = None,
        tool_use_id: str | None = None,
        name: str | None = None,
    ) -> Event:
        """A ``CONTENT_START`` event: ``{"index": index}``, plus each keyword given.

        `block_type` is ``"text"``, ``"thinking"``, ``"redacted_thinking"``,
        ``"tool_use"`` or a provider's own; `tool_use_id` and `name` name a tool call.
        """

    def message_start_event(message_id: str, *, model: str | None = None) -> Event:
        """A ``MESSAGE_START`` event: ``{"message_id": ...}`` (``"model"`` when given)."""

    def message_stop_event(
        message_id: str, stop_reason: str, *, stop_sequence: str | None = None
    ) -> Event:
        """A ``MESSAGE_STOP`` event: ``{"message_id", "stop_reason"}`` (and
        ``"stop_sequence"`` when given)."""

    def error_event(message: str, *, error_type: str | None = None) -> Event:
        """An ``ERROR`` event: ``{"error": message}`` (``"error_type"`` when given)."""

    def usage_event(
        prompt_tokens: int,
        completion_tokens: int,
        total_tokens: int,
        *,
        cache_creation_input_tokens: int | None = None,
        cache_read_input_tokens: int | None = None,
        reasoning_tokens: int | None = None,
    ) -> Event:
        """A ``USAGE`` event: ``{"prompt_tokens", "completion_tokens", "total_tokens"}``,
        plus each of the cache and reasoning counts given."""

else:

    def text_delta_event(text, index=None):
        """A ``TEXT_DELTA`` event: ``{"text": text}`` (``"index"`` when given)."""
        ev = _new(Event)
        ev.type = _TEXT_DELTA
        if index is None:
            ev.data = {"text": text}
        else:
            ev.data = {"text": text, "index": index}
        ev._ts = _time_ns() // 1000
        return ev

    def thinking_event(thinking, index=None, signature=None):
        """A ``THINKING`` event: ``{"thinking": thinking}``, plus ``"index"`` and
        ``"signature"`` when given (a signature comes with ``thinking=""``)."""
        ev = _new(Event)
        ev.type = _THINKING
        if index is None and signature is None:
            ev.data = {"thinking": thinking}
        else:
            data = {"thinking": thinking}
            if index is not None:
                data["index"] = index
            if signature is not None:
                data["signature"] = signature
            ev.data = data
        ev._ts = _time_ns() // 1000
        return ev

    def content_start_event(index, block_type=None, tool_use_id=None, name=None):
        """A ``CONTENT_START`` event: ``{"index": index}``, plus each keyword given.

        `block_type` is ``"text"``, ``"thinking"``, ``"redacted_thinking"``,
        ``"tool_use"`` or a provider's own; `tool_use_id` and `name` name a tool call.
        """
        ev = _new(Event)
        ev.type = _CONTENT_START
        if block_type is None and tool_use_id is None and name is None:
            ev.data = {"index": index}
        else:
            data = {"index": index}
            if block_type is not None:
                data["block_type"] = block_type
            if tool_use_id is not None:
                data["tool_use_id"] = tool_use_id
            if name is not None:
                data["name"] = name
            ev.data = data
        ev._ts = _time_ns() // 1000
        return ev

    def message_start_event(message_id, model=None):
        """A ``MESSAGE_START`` event: ``{"message_id": ...}`` (``"model"`` when given)."""
        ev = _new(Event)
        ev.type = _MESSAGE_START
        if model is None:
            ev.data = {"message_id": message_id}
        else:
            ev.data = {"message_id": message_id, "model": model}
        ev._ts = _time_ns() // 1000
        return ev

    def message_stop_event(message_id, stop_reason, stop_sequence=None):
        """A ``MESSAGE_STOP`` event: ``{"message_id", "stop_reason"}`` (and
        ``"stop_sequence"`` when given)."""
        ev = _new(Event)
        ev.type = _MESSAGE_STOP
        if stop_sequence is None:
            ev.data = {"message_id": message_id, "stop_reason": stop_reason}
        else:
            ev.data = {
                "message_id": message_id,
                "stop_reason": stop_reason,
                "stop_sequence": stop_sequence,
            }
        ev._ts = _time_ns() // 1000
        return ev

    def error_event(message, error_type=None):
        """An ``ERROR`` event: ``{"error": message}`` (``"error_type"`` when given)."""
        ev = _new(Event)
        ev.type = _ERROR
        if error_type is None:
            ev.data = {"error": message}
        else:
            ev.data = {"error": message, "error_type": error_type}
        ev._ts = _time_ns() // 1000
        return ev

    def usage_event(
        prompt_tokens,
        completion_tokens,
        total_tokens,
        cache_creation_input_tokens=None,
        cache_read_input_tokens=None,
        reasoning_tokens=None,
    ):
        """A ``USAGE`` event: ``{"prompt_tokens", "completion_tokens", "total_tokens"}``,
        plus each of the cache and reasoning counts given."""
        ev = _new(Event)
        ev.type = _USAGE
        data = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": total_tokens,
        }
        if cache_creation_input_tokens is not None:
            data["cache_creation_input_tokens"] = cache_creation_input_tokens
        if cache_read_input_tokens is not None:
            data["cache_read_input_tokens"] = cache_read_input_tokens
        if reasoning_tokens is not None:
            data["reasoning_tokens"] = reasoning_tokens
        ev.data = data
        ev._ts = _time_ns() // 1000
        return ev


def content_end_event(index: int) -> Event:
    """A ``CONTENT_END`` event: ``{"index": index}``."""
    ev = _new(Event)
    ev.type = _CONTENT_END
    ev.data = {"index": index}
    ev._ts = _time_ns() // 1000
    return ev


def tool_input_delta_event(index: int, partial_json: str) -> Event:
    """A ``TOOL_INPUT_DELTA`` event: ``{"index": index, "partial_json": partial_json}``.

    A piece of the JSON arguments of the tool call in content block `index`; the
    pieces of one block, concatenated, are the call's arguments.  (Not readable by the
    Go package, which knows only the first eight types.)
    """
    ev = _new(Event)
    ev.type = _TOOL_INPUT_DELTA
    ev.data = {"index": index, "partial_json": partial_json}
    ev._ts = _time_ns() // 1000
    return ev
