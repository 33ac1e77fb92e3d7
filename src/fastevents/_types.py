"""Event types and the backpressure policy.

`EventType` is an ``IntEnum`` so that it is as cheap to compare and store as the Go
``int`` it ports, but it prints as its wire name (``"TextDelta"``): that name, not the
number, is what the Go package writes on the wire.
"""

from __future__ import annotations

import enum

__all__ = ["BackpressurePolicy", "EventType", "parse_event_type"]


class EventType(enum.IntEnum):
    """The kind of an event; ``str(t)`` is its wire name."""

    TEXT_DELTA = 0
    CONTENT_START = 1
    CONTENT_END = 2
    MESSAGE_START = 3
    MESSAGE_STOP = 4
    ERROR = 5
    USAGE = 6
    THINKING = 7
    #: A piece of a tool call's JSON arguments.  An extension for provider streams:
    #: the Go package does not know this type and cannot read it.
    TOOL_INPUT_DELTA = 8

    def __str__(self) -> str:
        return WIRE_NAMES[self._value_]

    def __format__(self, format_spec: str) -> str:
        # IntEnum formats as the number on some Python versions and as the name on
        # others; pin it to the wire name so f-strings and str() always agree.  A
        # spec that only makes sense for numbers (``f"{t:d}"``) still formats the value.
        try:
            return format(WIRE_NAMES[self._value_], format_spec)
        except ValueError:
            return format(self._value_, format_spec)

    @property
    def wire_name(self) -> str:
        """The name written on the wire (same as ``str(self)``)."""
        return WIRE_NAMES[self._value_]

    @classmethod
    def parse(cls, name: str) -> EventType:
        """Return the member whose wire name is `name` (exact, case-sensitive)."""
        return parse_event_type(name)


#: Wire names indexed by value: the members are 0..8 with no gaps, so the hot paths
#: index this tuple rather than hash into a dict.
WIRE_NAMES: tuple[str, ...] = (
    "TextDelta",
    "ContentStart",
    "ContentEnd",
    "MessageStart",
    "MessageStop",
    "Error",
    "Usage",
    "Thinking",
    "ToolInputDelta",
)

#: ``EventType`` members indexed by value, for turning a validated int into a member.
MEMBERS: tuple[EventType, ...] = tuple(EventType)

#: Wire name -> member.  Reading JSON looks every event's type up here.
BY_NAME: dict[str, EventType] = {WIRE_NAMES[m]: m for m in MEMBERS}

assert len(MEMBERS) == len(WIRE_NAMES) and all(m == i for i, m in enumerate(MEMBERS))


def parse_event_type(name: str) -> EventType:
    """Return the `EventType` whose wire name is `name`.

    Raises ``ValueError`` (message contains ``unknown event type``) for an unknown
    name and ``TypeError`` when `name` is not a string.
    """
    if not isinstance(name, str):
        raise TypeError(f"event type name must be a str, not {type(name).__name__}")
    member = BY_NAME.get(name)
    if member is None:
        raise ValueError(f"unknown event type: {name!r}")
    return member


class BackpressurePolicy(enum.IntEnum):
    """What a send does when the stream's buffer is full."""

    BLOCK = 0  #: wait for room (the default)
    DROP = 1  #: fail at once with ``StreamFull``
