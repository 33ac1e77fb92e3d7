"""The JSON event envelope: encoding and decoding.

``{"type":"TextDelta","data":{...},"timestamp":"2024-01-01T12:00:00.123456789Z"}``

The timestamps inside it are formatted and parsed by `fastevents._rfc3339`.

This is on the path of every streamed token.  Python-level operations, not the C
work, dominate at this size, so the code keeps the count of them low:

* writing calls the C encoder object of the stdlib ``json`` module directly (which
  ``JSONEncoder.encode`` rebuilds on every call), concatenates the envelope by hand, and
  formats each second of a timestamp once;
* reading recognises the layout written here and by the Go package with a handful of
  string operations, runs the C scanner over the ``data`` object only, checks the
  timestamp's shape against caches of date-times and offsets already validated, and
  leaves the arithmetic to the C ``datetime.fromisoformat``.  Any other input goes
  through a general path that is strict, explains what is wrong, and is the reference
  the fast path is tested against.

Every failure surfaces as `InvalidEvent` (chaining the original exception).
"""

from __future__ import annotations

import json
import json.decoder
import json.encoder
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from ._errors import InvalidEvent
from ._rfc3339 import (
    _DIGITS,
    RawTimestamp,
    _fromisoformat,
    _second_text,
    _seconds_text,
    _tail_heads,
    _zone_texts,
    format_rfc3339,
    is_zero_time,
    parse_strict,
)
from ._types import BY_NAME, MEMBERS, WIRE_NAMES, EventType

if TYPE_CHECKING:
    from ._event import Event

__all__ = ["encode_data", "encode_event", "event_from_json"]

_E = TypeVar("_E", bound="Event")
_new = object.__new__


# --------------------------------------------------------------------------- writing


def _not_serializable(obj: object) -> NoReturn:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_ChunkEncoder = Callable[[Any, int], Sequence[str]]


def _make_chunk_encoder() -> _ChunkEncoder:
    """The stdlib's C encoder, built once (``JSONEncoder.encode`` builds one per call,
    which doubles the cost), called as ``"".join(encode(obj, 0))``."""
    encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False)

    def fallback(obj: Any, _indent: int) -> Sequence[str]:
        return (encoder.encode(obj),)

    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:  # pragma: no cover - no C accelerator (PyPy, stripped build)
        return fallback
    sample = {"a": [1, 2.5, None, True, "\u00e9", {"b": -1}]}
    try:
        # The arguments JSONEncoder.iterencode passes.  markers=None: the C encoder
        # leaves entries behind in the markers dict when it fails, so one dict shared
        # by every call would later report phantom cycles; without it a cycle fails as
        # a RecursionError, as with json.dumps(check_circular=False).
        c_encode: _ChunkEncoder = c_make_encoder(
            None, _not_serializable, json.encoder.encode_basestring_ascii, None,
            ":", ",", False, False, False,
        )  # fmt: skip
        if "".join(c_encode(sample, 0)) != encoder.encode(sample):
            return fallback  # pragma: no cover - an encoder we do not know
    except TypeError:  # pragma: no cover - a signature we do not know
        return fallback
    return c_encode


_encode_chunks = _make_chunk_encoder()
_join = "".join


# JSON can't carry: NaN/inf (ValueError), objects and non-str keys (TypeError),
# ints beyond the int->str digit limit (ValueError), cycles and depth (RecursionError).
_ENCODE_ERRORS = (TypeError, ValueError, RecursionError)


def encode_data(data: Any) -> str:
    """Compact JSON for `data`, or `InvalidEvent` when JSON cannot carry it."""
    try:
        return _join(_encode_chunks(data, 0))
    except _ENCODE_ERRORS as exc:
        raise InvalidEvent(f"data cannot be encoded as JSON: {exc}") from exc


def encode_event(name: str, data: Any, ts: RawTimestamp) -> str:
    """The envelope of an event already known to be valid; `name` is the wire name."""
    try:
        body = _join(_encode_chunks(data, 0))
    except _ENCODE_ERRORS as exc:
        raise InvalidEvent(f"data cannot be encoded as JSON: {exc}") from exc
    # format_rfc3339, inlined for the int ("now") timestamps: one call less per event.
    if type(ts) is int:
        seconds = ts // 1_000_000
        micros = ts % 1_000_000
        try:
            prefix = _seconds_text[seconds]
        except KeyError:
            prefix = _second_text(seconds)
        if micros:
            stamp = prefix + ("%06d" % micros).rstrip("0").join((".", "Z"))  # noqa: UP031
        else:
            stamp = prefix + "Z"
    else:
        stamp = format_rfc3339(ts)
    return '{"type":"' + name + '","data":' + body + ',"timestamp":"' + stamp + '"}'


# --------------------------------------------------------------------------- reading


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # "1e999" is valid JSON that float() turns into inf, which we could never write
    # back (and Go refuses it too).  Only numbers with a fraction or exponent get here.
    value = float(text)
    if value - value != 0.0:  # inf - inf is nan, and nan != 0
        raise ValueError(f"number out of range: {text}")
    return value


_decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
#: The start of an event as written, up to the end of the type name -> the type.
_HEAD_TYPES = {'{"type":"' + WIRE_NAMES[m]: m for m in MEMBERS}
# The C scanner behind JSONDecoder.raw_decode: (value, end) for the value at an index.
_scan_once: Callable[[str, int], tuple[Any, int]] = _decoder.scan_once  # type: ignore[attr-defined]
_JSON_SPACE = " \t\n\r"
# What decoding can raise for bad text: JSONDecodeError and too-long ints are
# ValueErrors; too much nesting is a RecursionError; the scanner's "no value here" is
# StopIteration.
_DECODE_ERRORS = (ValueError, RecursionError, StopIteration)


def _text(s: object) -> str:
    if isinstance(s, str):
        return str.__str__(s)
    if isinstance(s, (bytes, bytearray, memoryview)):
        try:
            return (bytes(s) if isinstance(s, memoryview) else s).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidEvent(f"invalid UTF-8: {exc}") from exc
    raise InvalidEvent(f"event JSON must be str or bytes, not {type(s).__name__}")


def loads_checked(s: str | bytes | bytearray) -> Any:
    """Decode any JSON text strictly (no NaN/Infinity); every failure is `InvalidEvent`."""
    text = s if type(s) is str else _text(s)
    try:
        # json.loads minus its per-call overhead; the full decoder only runs when the
        # text has leading/trailing junk, to accept whitespace or word the error.
        obj, end = _scan_once(text, 0)
        if end != len(text) and text[end:].strip(_JSON_SPACE):
            raise StopIteration
        return obj
    except StopIteration:
        pass
    except _DECODE_ERRORS as exc:
        raise InvalidEvent(f"malformed JSON: {exc}") from exc
    try:
        return _decoder.decode(text)
    except _DECODE_ERRORS as exc:
        raise InvalidEvent(f"malformed JSON: {exc}") from exc


def _event_from_text(cls: type[_E], text: str) -> _E:
    """The general path: strict, precise errors; the reference for the fast path."""
    etype, data, ts = decode_object(loads_checked(text))
    ev = _new(cls)
    ev.type = etype
    ev.data = data
    ev._ts = ts
    return ev


def _offset_tail_ok(rest: str, end: int, n: int, kind: str) -> bool:
    """The fast path's check of a tail ending in '+HH:MM"}' (see event_from_json)."""
    return (
        rest[-2:] == '"}'
        and rest[-8:-2] in _zone_texts  # "+HH:MM" as the strict parser accepted it
        and (
            (n == 41 and kind != "Z")  # the key ended with the offset's sign
            if kind != "."
            else (42 < n < 49 or (48 < n < 52 and rest[end + 40 : -8] in _DIGITS))
        )
    )


def event_from_json(cls: type[_E], s: str | bytes | bytearray) -> _E:
    """Build an event of `cls` from wire text; `InvalidEvent` on any problem.

    Lives here rather than in ``_event`` (it is bound as ``Event.from_json``) so that
    it fills the new event's slots itself instead of returning the parts.
    """
    if type(s) is not str:
        s = _text(s)
    # The fast path, for exactly the layout this module and the Go package write:
    #   {"type":"<name>","data":<object>,"timestamp":"<date-time>[.<1-9 digits>]<zone>"}
    # Each step is one cheap operation (Python-level steps, not C work, dominate at this
    # size).  When every check passes, the text is valid JSON with exactly these three
    # keys, and the timestamp is valid RFC 3339.  Anything else, or any exception, goes
    # to the general path, which re-reads the text and agrees or raises the precise error.
    try:
        head, _, rest = s.partition('","data":')
        etype = _HEAD_TYPES[head]  # '{"type":"TextDelta' -> TEXT_DELTA
        data, end = _scan_once(rest, 0)
        # The tail after the data: ',"timestamp":"2024-01-01T12:00:00.123456789Z"}'.
        # _tail_heads maps ',"timestamp":"' + a date-time the strict parser accepted +
        # one of ".Z+-" to that last character; a KeyError means "not seen yet".
        kind = _tail_heads[rest[end : end + 34]]
        n = len(rest) - end  # the tail's length
        # Then 'Z"}' after no fraction (n == 36) or after "." and 1..9 digits (38..46),
        # or an offset (see _offset_tail_ok).  fromisoformat checks the first six
        # fraction digits but skips whatever follows them up to the zone, so digits
        # 7..9 are checked here.
        if data.__class__ is dict and (
            (
                rest[-3:] == 'Z"}'
                and (
                    n == 36
                    or (
                        kind == "."
                        and (37 < n < 44 or (43 < n < 47 and rest[end + 40 : -3] in _DIGITS))
                    )
                )
            )
            or _offset_tail_ok(rest, end, n, kind)
        ):
            ev = _new(cls)
            ev.type = etype
            ev.data = data
            ev._ts = _fromisoformat(rest[end + 14 : -2])  # type: ignore[misc]
            return ev
    except Exception:  # any surprise: the general path decides, and explains
        pass
    return _event_from_text(cls, s)


if _fromisoformat is None:  # pragma: no cover - Python < 3.11

    def event_from_json(cls: type[_E], s: str | bytes | bytearray) -> _E:
        """Build an event of `cls` from wire text; `InvalidEvent` on any problem."""
        return _event_from_text(cls, s if type(s) is str else _text(s))


_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number",
               bool: "boolean", type(None): "null"}  # fmt: skip


def _json_type(obj: object) -> str:
    return _JSON_TYPES.get(type(obj), type(obj).__name__)


def decode_object(obj: Any) -> tuple[EventType, dict[str, Any], datetime]:
    """Check a decoded JSON value is an event object and return its fields."""
    if not isinstance(obj, dict):
        raise InvalidEvent(f"event must be a JSON object, not {_json_type(obj)}")
    etype = event_type_of(obj.get("type"))
    data = obj.get("data")
    if data is None:
        raise InvalidEvent("missing data")
    if not isinstance(data, dict):
        raise InvalidEvent(f"data must be a JSON object, not {_json_type(data)}")
    return etype, data, timestamp_of(obj.get("timestamp"))


def event_type_of(name: object) -> EventType:
    """The member for a wire type name, or `InvalidEvent`."""
    if name is None:
        raise InvalidEvent("missing type")
    if not isinstance(name, str):
        raise InvalidEvent(f"type must be a string, not {_json_type(name)}")
    etype = BY_NAME.get(name)
    if etype is None:
        raise InvalidEvent(f"unknown event type: {name!r}")
    return etype


def timestamp_of(text: object) -> datetime:
    """The datetime for a wire timestamp, or `InvalidEvent`."""
    if text is None:
        raise InvalidEvent("missing timestamp")
    if not isinstance(text, str):
        raise InvalidEvent(f"timestamp must be a string, not {_json_type(text)}")
    try:
        dt = parse_strict(text)
    except ValueError as exc:
        raise InvalidEvent(f"invalid timestamp {text!r}: {exc}") from exc
    if dt.year == 1 and is_zero_time(dt):
        # Refused rather than read into an invalid event, as a missing timestamp is:
        # from_json/from_dict only ever return events that validate().
        raise InvalidEvent("timestamp cannot be zero")
    return dt
