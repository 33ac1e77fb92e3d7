"""Event: construction, validation, timestamps, equality, factories, dict form."""

from __future__ import annotations

import copy
import os
import pickle
import time
import types
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

import fastevents as fe

UTC = timezone.utc
T = fe.EventType
NOON = datetime(2024, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)


def now_bounds() -> tuple[datetime, datetime]:
    return datetime.fromtimestamp(time.time() - 1, UTC), datetime.fromtimestamp(
        time.time() + 1, UTC
    )


# -- construction ----------------------------------------------------------------------


def test_slots_are_plain_member_descriptors() -> None:
    # The compiled stream core reads `type`, `data` and `_ts` at their slot offsets.
    assert fe.Event.__slots__ == ("type", "data", "_ts")
    for name in fe.Event.__slots__:
        assert type(fe.Event.__dict__[name]) is types.MemberDescriptorType
    ev = fe.Event(T.USAGE, {})
    assert not hasattr(ev, "__dict__")
    with pytest.raises(AttributeError):
        ev.other = 1  # type: ignore[attr-defined]


def test_omitted_timestamp_is_now_and_aware() -> None:
    lo = datetime.now(UTC)
    ev = fe.Event(T.TEXT_DELTA, {"text": "hi"})
    hi = datetime.now(UTC)
    ts = ev.timestamp
    assert ts is not None and ts.utcoffset() == timedelta(0)
    assert lo - timedelta(milliseconds=1) <= ts <= hi + timedelta(milliseconds=1)
    ev.validate()


def test_explicit_timestamp_is_kept() -> None:
    tz = timezone(timedelta(hours=-5, minutes=-30))
    dt = datetime(2024, 1, 1, 6, 30, tzinfo=tz)
    ev = fe.Event(T.ERROR, {"error": "x"}, dt)
    assert ev.timestamp == dt and ev.timestamp is not None
    assert ev.timestamp.utcoffset() == tz.utcoffset(None)
    assert fe.Event(T.ERROR, {}, timestamp=dt).timestamp == dt


def test_naive_timestamp_is_taken_as_utc() -> None:
    ev = fe.Event(T.ERROR, {}, datetime(2024, 1, 1, 12))
    assert ev.timestamp == datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert ev.timestamp is not None and ev.timestamp.tzinfo is not None


GO_ZERO = datetime(1, 1, 1, tzinfo=UTC)


def test_explicit_none_timestamp_builds_an_invalid_event() -> None:
    ev = fe.Event(T.ERROR, {"error": "x"}, None)
    # Typed `datetime` for readers: an event without one reads as Go's zero time.
    assert ev.timestamp == GO_ZERO and ev.timestamp.tzinfo is not None
    assert ev._ts is None
    with pytest.raises(fe.InvalidEvent, match=r"^invalid event: timestamp cannot be zero$"):
        ev.validate()


@pytest.mark.parametrize("bad", [1.5, "2024-01-01T00:00:00Z", 0, date(2024, 1, 1), time.time_ns()])
def test_timestamp_of_wrong_type_is_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="timestamp must be a datetime or None"):
        fe.Event(T.ERROR, {}, bad)  # type: ignore[arg-type]
    ev = fe.Event(T.ERROR, {})
    with pytest.raises(TypeError):
        ev.timestamp = bad  # type: ignore[assignment]
    ev.validate()  # unchanged


def test_timestamp_setter() -> None:
    ev = fe.Event(T.ERROR, {})
    ev.timestamp = NOON
    assert ev.timestamp == NOON
    ev.timestamp = datetime(2000, 1, 1)
    assert ev.timestamp == datetime(2000, 1, 1, tzinfo=UTC)
    ev.timestamp = None
    assert ev.timestamp == GO_ZERO
    with pytest.raises(fe.InvalidEvent, match="timestamp cannot be zero"):
        ev.validate()


# -- Go's zero time (issue 9, item 11) ----------------------------------------------------

ZERO_SPELLINGS = [
    GO_ZERO,
    datetime(1, 1, 1),  # naive: taken as UTC
    datetime(1, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1))),
    datetime(1, 1, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
]


@pytest.mark.parametrize("zero", ZERO_SPELLINGS, ids=["utc", "naive", "+01:00", "+05:30"])
def test_go_zero_time_is_a_zero_timestamp(zero: datetime) -> None:
    for ev in (fe.Event(T.USAGE, {}, zero), fe.Event(T.USAGE, {})):
        ev.timestamp = zero
        with pytest.raises(fe.InvalidEvent, match=r"^invalid event: timestamp cannot be zero$"):
            ev.validate()
        with pytest.raises(fe.InvalidEvent, match="timestamp cannot be zero"):
            ev.to_json()
        assert ev == fe.Event(T.USAGE, {}, None)
    with pytest.raises(fe.InvalidEvent, match="timestamp cannot be zero"):
        fe.Event.from_dict({"type": "Usage", "data": {}, "timestamp": zero})


@pytest.mark.parametrize(
    "near",
    [
        datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=-1))),  # 01:00 UTC
        datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),  # before Go's zero
        datetime(1, 1, 2, tzinfo=UTC),
    ],
)
def test_times_near_go_zero_are_valid(near: datetime) -> None:
    ev = fe.Event(T.USAGE, {}, near)
    ev.validate()
    assert ev.timestamp == near


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00.000Z",
        "0001-01-01T00:00:00.000000999Z",  # nanoseconds are truncated: zero here
        "0001-01-01T01:00:00+01:00",
        "0001-01-01T00:00:00+00:00",
        "0001-01-01T00:00:00-00:00",
    ],
)
def test_reading_go_zero_time_raises_like_a_missing_timestamp(text: str) -> None:
    # from_json / from_dict only ever return events that validate(), so a zero
    # timestamp is refused on read, as a missing one is.
    line = '{"type":"Usage","data":{},"timestamp":"' + text + '"}'
    for _ in range(2):  # the second read may take the cached fast path
        with pytest.raises(fe.InvalidEvent, match=r"^invalid event: timestamp cannot be zero$"):
            fe.Event.from_json(line)
        with pytest.raises(fe.InvalidEvent, match="timestamp cannot be zero"):
            fe.Event.from_dict({"type": "Usage", "data": {}, "timestamp": text})


def test_streams_refuse_go_zero_time(stream_cls: Any) -> None:
    with stream_cls(4) as stream:
        for zero in ZERO_SPELLINGS:
            with pytest.raises(fe.InvalidEvent, match="timestamp cannot be zero"):
                stream.send(fe.Event(T.USAGE, {}, zero))
            with pytest.raises(fe.InvalidEvent, match="timestamp cannot be zero"):
                stream.try_send(fe.Event(T.USAGE, {}, zero))
        assert len(stream) == 0


def test_now_timestamp_is_exact_to_the_microsecond() -> None:
    ev = fe.text_delta_event("x")
    ts = ev.timestamp
    assert ts is not None
    micros = ev._ts  # what "now" events store: int microseconds since the epoch
    assert isinstance(micros, int)
    assert (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) == micros
    assert ev.timestamp == ts  # stable across reads


@pytest.mark.parametrize("value", range(9))
def test_int_type_becomes_the_member(value: int) -> None:
    ev = fe.Event(value, {})
    assert ev.type is fe.EventType(value)
    ev.validate()


@pytest.mark.parametrize("bad", [999, -1, 9, "x", "TextDelta", None, 1.0, True, False])
def test_bad_type_is_kept_and_validate_reports_it(bad: Any) -> None:
    ev = fe.Event(bad, {})
    assert ev.type is bad
    with pytest.raises(fe.InvalidEvent, match="unknown event type"):
        ev.validate()


def test_bad_data_is_kept() -> None:
    for data in (None, [], "text", 3, {1, 2}):
        ev = fe.Event(T.USAGE, data)  # type: ignore[arg-type]
        assert ev.data is data


# -- validate --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("etype", "data", "ts", "message"),
    [
        (T.USAGE, {}, None, "timestamp cannot be zero"),
        (999, None, None, "timestamp cannot be zero"),  # Go's order: timestamp first
        (999, {}, NOON, "unknown event type: 999"),
        (999, None, NOON, "unknown event type: 999"),  # then type
        (-1, {}, NOON, "unknown event type: -1"),
        ("x", {}, NOON, "unknown event type: 'x'"),
        (None, {}, NOON, "unknown event type: None"),
        (True, {}, NOON, "unknown event type: True"),
        (T.USAGE, None, NOON, "data cannot be None"),
        (T.USAGE, [], NOON, "data must be a dict, not list"),
        (T.USAGE, "s", NOON, "data must be a dict, not str"),
    ],
)
def test_validate_messages(etype: Any, data: Any, ts: Any, message: str) -> None:
    with pytest.raises(fe.InvalidEvent) as info:
        fe.Event(etype, data, ts).validate()
    assert str(info.value) == f"invalid event: {message}"
    assert info.value.detail == message
    assert info.value.stream_id is None and info.value.op is None


def test_validate_accepts_a_plain_int_type_set_later_and_dict_subclasses() -> None:
    ev = fe.Event(T.USAGE, {})
    ev.type = 3  # type: ignore[assignment]
    ev.validate()

    class D(dict):  # type: ignore[type-arg]
        pass

    fe.Event(T.USAGE, D(a=1)).validate()


# -- equality, hashing, repr, pickling --------------------------------------------------


def test_equality_compares_instants() -> None:
    plus2 = timezone(timedelta(hours=2))
    a = fe.Event(T.USAGE, {"n": 1}, NOON)
    b = fe.Event(T.USAGE, {"n": 1}, NOON.astimezone(plus2))
    assert a == b and not (a != b)
    assert a != fe.Event(T.USAGE, {"n": 2}, NOON)
    assert a != fe.Event(T.ERROR, {"n": 1}, NOON)
    assert a != fe.Event(T.USAGE, {"n": 1}, NOON + timedelta(microseconds=1))
    assert a != fe.Event(T.USAGE, {"n": 1}, None)
    assert fe.Event(T.USAGE, {}, None) == fe.Event(T.USAGE, {}, None)
    assert a != object() and a != "x"


def test_equality_between_int_and_datetime_timestamps() -> None:
    ev = fe.text_delta_event("hi")
    ts = ev.timestamp
    assert ts is not None
    same = fe.Event(T.TEXT_DELTA, {"text": "hi"}, ts.astimezone(timezone(timedelta(hours=-7))))
    assert ev == same and same == ev
    assert ev != fe.Event(T.TEXT_DELTA, {"text": "hi"}, ts + timedelta(microseconds=1))


# -- equality compares instants (issue 9, item 10) ---------------------------------------


def _zone(name: str) -> Any:
    zoneinfo = pytest.importorskip("zoneinfo")
    try:
        return zoneinfo.ZoneInfo(name)
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip(f"no tz database entry for {name}")


@pytest.mark.parametrize(
    ("zone", "wall", "fold"),
    [
        ("America/New_York", datetime(2024, 11, 3, 1, 30), 0),  # fold, first pass
        ("America/New_York", datetime(2024, 11, 3, 1, 30), 1),  # fold, second pass
        ("America/New_York", datetime(2024, 3, 10, 2, 30), 0),  # gap
        ("America/New_York", datetime(2024, 3, 10, 2, 30), 1),  # gap
        ("Europe/Berlin", datetime(2024, 10, 27, 2, 15, 0, 123456), 1),
        ("Australia/Lord_Howe", datetime(2024, 4, 7, 1, 45), 0),  # a 30-minute fold
    ],
)
def test_events_in_a_dst_fold_or_gap_equal_their_round_trip(
    zone: str, wall: datetime, fold: int
) -> None:
    ts = wall.replace(tzinfo=_zone(zone), fold=fold)
    ev = fe.Event(T.USAGE, {"n": 1}, ts)
    for again in (
        fe.Event.from_json(ev.to_json()),
        fe.Event.from_dict(ev.to_dict()),
        fe.Event(T.USAGE, {"n": 1}, ts.astimezone(UTC)),
    ):
        assert again == ev and ev == again and not (ev != again)
    later = fe.Event(T.USAGE, {"n": 1}, ts.astimezone(UTC) + timedelta(microseconds=1))
    assert ev != later


def test_events_are_unhashable() -> None:
    with pytest.raises(TypeError):
        hash(fe.text_delta_event("x"))


def test_repr() -> None:
    ev = fe.Event(T.USAGE, {"n": 1}, NOON)
    assert repr(ev) == "Event(EventType.USAGE, {'n': 1}, timestamp=2024-01-01T12:00:00.123456Z)"
    assert repr(fe.Event(999, None, None)) == "Event(999, None, timestamp=None)"
    odd = timezone(timedelta(seconds=30))
    assert "Event(" in repr(fe.Event(T.USAGE, {}, datetime(1, 1, 1, tzinfo=odd)))  # never raises


@pytest.mark.parametrize(
    "ev",
    [
        fe.text_delta_event("hi"),
        fe.Event(
            T.USAGE,
            {"n": [1, {"a": None}]},
            datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=2))),
        ),
        fe.Event(999, None, None),
    ],
    ids=["now", "aware", "invalid"],
)
def test_pickle_and_copy(ev: fe.Event) -> None:
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        again = pickle.loads(pickle.dumps(ev, protocol))
        assert type(again) is fe.Event
        assert again == ev and again.type == ev.type
    shallow = copy.copy(ev)
    assert shallow == ev and shallow.data is ev.data
    deep = copy.deepcopy(ev)
    assert deep == ev
    if isinstance(ev.data, dict) and ev.data:
        assert deep.data is not ev.data


class MyEvent(fe.Event):
    __slots__ = ()


def test_subclass_round_trips_keep_the_class() -> None:
    ev = MyEvent(T.ERROR, {"error": "x"}, NOON)
    assert type(pickle.loads(pickle.dumps(ev))) is MyEvent
    assert type(MyEvent.from_json(ev.to_json())) is MyEvent
    assert type(MyEvent.from_dict(ev.to_dict())) is MyEvent


# -- subclasses keep their own attributes (issue 9, item 13) ------------------------------


class SlottedEvent(fe.Event):
    __slots__ = ("session", "__secret", "unset")


class DictEvent(fe.Event):
    pass  # no __slots__: instances have a __dict__


class BothEvent(SlottedEvent):
    __slots__ = ("__dict__", "extra")


class StatefulEvent(fe.Event):
    """A subclass that chooses its own state."""

    __slots__ = ("tag",)

    def __getstate__(self) -> object:
        return (None, {"tag": self.tag.upper()})


def _copies(ev: fe.Event) -> list[fe.Event]:
    out = [pickle.loads(pickle.dumps(ev, p)) for p in range(pickle.HIGHEST_PROTOCOL + 1)]
    return [*out, copy.copy(ev), copy.deepcopy(ev)]


def test_subclass_slots_survive_pickle_and_copy() -> None:
    ev = SlottedEvent(T.TEXT_DELTA, {"text": "hi"}, NOON)
    ev.session = ["s-1"]
    ev._SlottedEvent__secret = 42  # type: ignore[attr-defined]
    for again in _copies(ev):
        assert type(again) is SlottedEvent and again == ev
        assert again.session == ["s-1"]
        assert again._SlottedEvent__secret == 42  # type: ignore[attr-defined]
        assert not hasattr(again, "unset")
    assert copy.copy(ev).session is ev.session
    assert copy.deepcopy(ev).session is not ev.session


def test_subclass_dict_survives_pickle_and_copy() -> None:
    ev = DictEvent(T.USAGE, {"n": 1}, NOON)
    ev.request = {"id": 7}  # type: ignore[attr-defined]
    for again in _copies(ev):
        assert type(again) is DictEvent and again == ev
        assert again.request == {"id": 7}  # type: ignore[attr-defined]
    plain = DictEvent(T.USAGE, {"n": 1}, NOON)
    assert all(vars(again) == {} for again in _copies(plain))


def test_subclass_with_slots_and_dict_survives_pickle_and_copy() -> None:
    ev = BothEvent(T.USAGE, {"n": 1})
    ev.session, ev.extra, ev.note = "s", 1.5, "n"  # type: ignore[attr-defined]
    for again in _copies(ev):
        assert type(again) is BothEvent and again == ev
        assert (again.session, again.extra, again.note) == ("s", 1.5, "n")  # type: ignore[attr-defined]


def test_subclass_getstate_is_used() -> None:
    ev = StatefulEvent(T.USAGE, {}, NOON)
    ev.tag = "x"
    for again in _copies(ev):
        assert isinstance(again, StatefulEvent) and again.tag == "X"


# -- new_event and the factories --------------------------------------------------------


def test_new_event() -> None:
    lo, hi = now_bounds()
    ev = fe.new_event(T.THINKING, {"thinking": "hm"})
    assert ev.type is T.THINKING and ev.data == {"thinking": "hm"}
    assert ev.timestamp is not None and lo <= ev.timestamp <= hi
    assert fe.new_event(2, {}).type is T.CONTENT_END


@pytest.mark.parametrize(
    ("etype", "data", "message"),
    [
        (999, {}, "unknown event type: 999"),
        (T.USAGE, None, "data cannot be None"),
        (T.USAGE, [1], "data must be a dict, not list"),
    ],
)
def test_new_event_rejects_invalid(etype: Any, data: Any, message: str) -> None:
    with pytest.raises(fe.InvalidEvent) as info:
        fe.new_event(etype, data)
    assert str(info.value) == f"invalid event: {message}"


FACTORIES: list[tuple[Callable[..., fe.Event], tuple[Any, ...], fe.EventType, dict[str, Any]]] = [
    (fe.text_delta_event, ("hi",), T.TEXT_DELTA, {"text": "hi"}),
    (fe.content_start_event, (0,), T.CONTENT_START, {"index": 0}),
    (fe.content_end_event, (3,), T.CONTENT_END, {"index": 3}),
    (fe.message_start_event, ("msg_1",), T.MESSAGE_START, {"message_id": "msg_1"}),
    (
        fe.message_stop_event,
        ("msg_1", "end_turn"),
        T.MESSAGE_STOP,
        {"message_id": "msg_1", "stop_reason": "end_turn"},
    ),
    (fe.error_event, ("boom",), T.ERROR, {"error": "boom"}),
    (
        fe.usage_event,
        (100, 50, 150),
        T.USAGE,
        {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
    ),
    (fe.thinking_event, ("hm",), T.THINKING, {"thinking": "hm"}),
    (
        fe.tool_input_delta_event,
        (2, '{"city": "Par'),
        T.TOOL_INPUT_DELTA,
        {"index": 2, "partial_json": '{"city": "Par'},
    ),
]

# The optional keywords (API.md, "Event model, extended"): (factory, args, kwargs, data).
FACTORY_KEYWORDS: list[tuple[Callable[..., fe.Event], tuple[Any, ...], dict[str, Any],
                             dict[str, Any]]] = [
    (fe.message_start_event, ("m",), {"model": "claude"}, {"message_id": "m", "model": "claude"}),
    (fe.content_start_event, (1,), {"block_type": "text"}, {"index": 1, "block_type": "text"}),
    (
        fe.content_start_event,
        (1,),
        {"block_type": "tool_use", "tool_use_id": "toolu_1", "name": "get_weather"},
        {"index": 1, "block_type": "tool_use", "tool_use_id": "toolu_1", "name": "get_weather"},
    ),
    (fe.content_start_event, (4,), {"name": "n"}, {"index": 4, "name": "n"}),
    (fe.text_delta_event, ("hi",), {"index": 0}, {"text": "hi", "index": 0}),
    (fe.thinking_event, ("hm",), {"index": 2}, {"thinking": "hm", "index": 2}),
    (
        fe.thinking_event,
        ("",),
        {"index": 2, "signature": "EqQB"},
        {"thinking": "", "index": 2, "signature": "EqQB"},
    ),
    (fe.thinking_event, ("",), {"signature": "s"}, {"thinking": "", "signature": "s"}),
    (
        fe.message_stop_event,
        ("m", "stop_sequence"),
        {"stop_sequence": "\n\nHuman:"},
        {"message_id": "m", "stop_reason": "stop_sequence", "stop_sequence": "\n\nHuman:"},
    ),
    (
        fe.usage_event,
        (10, 5, 15),
        {"cache_creation_input_tokens": 3, "cache_read_input_tokens": 0, "reasoning_tokens": 2},
        {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
         "cache_creation_input_tokens": 3, "cache_read_input_tokens": 0, "reasoning_tokens": 2},
    ),
    (
        fe.usage_event,
        (10, 5, 15),
        {"cache_read_input_tokens": 7},
        {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
         "cache_read_input_tokens": 7},
    ),
    (
        fe.error_event,
        ("Overloaded",),
        {"error_type": "overloaded_error"},
        {"error": "Overloaded", "error_type": "overloaded_error"},
    ),
]


@pytest.mark.parametrize(("factory", "args", "kwargs", "data"), FACTORY_KEYWORDS)
def test_factory_keywords_become_data_keys(
    factory: Callable[..., fe.Event],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    data: dict[str, Any],
) -> None:
    ev = factory(*args, **kwargs)
    assert type(ev) is fe.Event
    assert ev.data == data and list(ev.data) == list(data)
    ev.validate()
    assert fe.Event.from_json(ev.to_json()) == ev
    # None is "not given": no key at all, never a null.
    same = factory(*args, **{k: None for k in kwargs})
    assert same.data == factory(*args).data


def _mypy_error_lines(tmp_path: Any, program: str) -> tuple[list[str], str]:
    """The line numbers mypy --strict reports errors on in `program`, and its output."""
    mypy_api = pytest.importorskip("mypy.api")
    path = tmp_path / "program.py"
    path.write_text(program, encoding="utf-8")
    out, _, _ = mypy_api.run(["--config-file", os.devnull, "--strict",
                              "--follow-imports=silent",
                              "--cache-dir", str(tmp_path / "cache"), str(path)])
    return [line.split(":")[1] for line in out.splitlines() if ": error:" in line], out


def test_factory_keywords_are_keyword_only_for_type_checkers(tmp_path: Any) -> None:
    # At run time they are also accepted positionally (a per-token cost, see _event.py);
    # the documented signatures are keyword-only, and mypy enforces that.
    lines, out = _mypy_error_lines(
        tmp_path,
        "import fastevents as fe\n"
        "fe.text_delta_event('hi', 0)\n"
        "fe.message_start_event('m', 'model')\n"
        "fe.usage_event(1, 2, 3, 4)\n"
        "fe.thinking_event('', 0)\n"
        "fe.content_start_event(0, 'text')\n"
        "fe.message_stop_event('m', 'end_turn', 'stop')\n"
        "fe.error_event('x', 'overloaded_error')\n"
        "fe.text_delta_event('hi', idx=0)\n"
        # the documented keywords, all accepted:
        "fe.text_delta_event('hi', index=0)\n"
        "fe.thinking_event('', index=0, signature='s')\n"
        "fe.content_start_event(0, block_type='tool_use', tool_use_id='t', name='n')\n"
        "fe.message_start_event('m', model='claude')\n"
        "fe.message_stop_event('m', 'stop_sequence', stop_sequence='END')\n"
        "fe.error_event('x', error_type='overloaded_error')\n"
        "fe.usage_event(1, 2, 3, cache_creation_input_tokens=1, cache_read_input_tokens=2,\n"
        "               reasoning_tokens=3)\n"
        "fe.tool_input_delta_event(0, '{}')\n",
    )
    assert lines == [str(n) for n in range(2, 10)], out


# API.md's table ("Event model, extended"): each factory's positional parameters, then
# its optional keywords, by name.  Both the signatures type checkers see and the ones
# that run (written twice in _event.py, for speed) must say exactly this.
FACTORY_SIGNATURES: dict[str, tuple[list[str], list[str]]] = {
    "message_start_event": (["message_id"], ["model"]),
    "content_start_event": (["index"], ["block_type", "tool_use_id", "name"]),
    "text_delta_event": (["text"], ["index"]),
    "thinking_event": (["thinking"], ["index", "signature"]),
    "message_stop_event": (["message_id", "stop_reason"], ["stop_sequence"]),
    "usage_event": (["prompt_tokens", "completion_tokens", "total_tokens"],
                    ["cache_creation_input_tokens", "cache_read_input_tokens",
                     "reasoning_tokens"]),
    "error_event": (["message"], ["error_type"]),
}


def test_factory_signatures_match_the_contract_at_run_time_and_for_type_checkers() -> None:
    import ast
    import inspect

    from fastevents import _event

    typed: dict[str, tuple[list[str], list[str]]] = {}
    tree = ast.parse(inspect.getsource(_event))
    for node in ast.walk(tree):
        if (isinstance(node, ast.If) and isinstance(node.test, ast.Name)
                and node.test.id == "TYPE_CHECKING"):
            for fn in node.body:
                if isinstance(fn, ast.FunctionDef) and fn.name in FACTORY_SIGNATURES:
                    typed[fn.name] = ([a.arg for a in fn.args.args],
                                      [a.arg for a in fn.args.kwonlyargs])
                    assert all(isinstance(d, ast.Constant) and d.value is None
                               for d in fn.args.kw_defaults), fn.name
    assert typed == FACTORY_SIGNATURES
    for name, (positional, keywords) in FACTORY_SIGNATURES.items():
        params = inspect.signature(getattr(fe, name)).parameters
        assert list(params) == positional + keywords, name
        assert all(params[k].default is None for k in keywords), name
        assert all(params[p].default is inspect.Parameter.empty for p in positional), name


def test_event_types_for_type_checkers(tmp_path: Any) -> None:
    # A subclass's from_json/from_dict return the subclass; timestamp reads as a
    # datetime (an invalid event's is Go's zero time, never None) and takes None.
    lines, out = _mypy_error_lines(
        tmp_path,
        "from datetime import datetime\n"
        "import fastevents as fe\n"
        "class Mine(fe.Event):\n"
        "    __slots__ = ()\n"
        "a: Mine = Mine.from_json('{}')\n"
        "b: Mine = Mine.from_dict({})\n"
        "c: fe.Event = fe.Event.from_json(b'{}')\n"
        "ev = fe.text_delta_event('x')\n"
        "t: datetime = ev.timestamp\n"
        "ev.timestamp = None\n"
        "ev.timestamp = datetime(2024, 1, 1)\n"
        "d: Mine = fe.Event.from_json('{}')\n",
    )
    assert lines == ["12"], out


def test_tool_input_delta_wire_form() -> None:
    ev = fe.Event(T.TOOL_INPUT_DELTA, {"index": 0, "partial_json": "{"}, NOON)
    text = ev.to_json()
    assert text == (
        '{"type":"ToolInputDelta","data":{"index":0,"partial_json":"{"},'
        '"timestamp":"2024-01-01T12:00:00.123456Z"}'
    )
    assert fe.Event.from_json(text) == ev
    assert fe.EventType.parse("ToolInputDelta") is T.TOOL_INPUT_DELTA


@pytest.mark.parametrize(
    ("factory", "args", "etype", "data"), FACTORIES, ids=lambda x: getattr(x, "__name__", "")
)
def test_factories(
    factory: Callable[..., fe.Event],
    args: tuple[Any, ...],
    etype: fe.EventType,
    data: dict[str, Any],
) -> None:
    lo, hi = now_bounds()
    ev = factory(*args)
    assert type(ev) is fe.Event
    assert ev.type is etype
    assert ev.data == data and list(ev.data) == list(data)
    assert ev.timestamp is not None and lo <= ev.timestamp <= hi
    ev.validate()
    assert fe.Event.from_json(ev.to_json()) == ev
    assert factory(*args).data is not ev.data  # a fresh dict each time


def test_usage_event_keyword_arguments() -> None:
    ev = fe.usage_event(prompt_tokens=1, completion_tokens=2, total_tokens=3)
    assert ev.data == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}


# -- dict form ---------------------------------------------------------------------------


def test_to_dict_is_the_wire_shape() -> None:
    ev = fe.Event(T.USAGE, {"n": (1, 2), "s": "é"}, NOON)
    d = ev.to_dict()
    assert d == {
        "type": "Usage",
        "data": {"n": [1, 2], "s": "é"},
        "timestamp": "2024-01-01T12:00:00.123456Z",
    }
    assert d["data"] is not ev.data
    import json

    assert d == json.loads(ev.to_json())


def test_from_dict_round_trip() -> None:
    for ev in [
        fe.usage_event(1, 2, 3),
        fe.Event(
            T.ERROR, {"error": "x"}, datetime(2024, 5, 1, tzinfo=timezone(timedelta(hours=9)))
        ),
    ]:
        again = fe.Event.from_dict(ev.to_dict())
        assert again == ev
        assert again.timestamp is not None and ev.timestamp is not None
        assert again.timestamp.utcoffset() == ev.timestamp.utcoffset()


def test_from_dict_accepts_members_ints_and_datetimes() -> None:
    base = {"data": {"a": 1}, "timestamp": NOON}
    assert fe.Event.from_dict({"type": T.ERROR, **base}).type is T.ERROR
    assert fe.Event.from_dict({"type": 5, **base}).type is T.ERROR
    ev = fe.Event.from_dict({"type": "Error", "data": {"a": 1}, "timestamp": datetime(2024, 1, 1)})
    assert ev.timestamp == datetime(2024, 1, 1, tzinfo=UTC)
    assert (
        fe.Event.from_dict(
            {"type": "Error", "data": {}, "timestamp": "2024-01-01T00:00:00Z", "extra": 1}
        ).data
        == {}
    )


def test_from_dict_owns_a_json_copy_of_data() -> None:
    data: dict[str, Any] = {"list": [1, 2], "tuple": (1, 2)}
    ev = fe.Event.from_dict({"type": "Usage", "data": data, "timestamp": NOON})
    data["list"].append(3)
    assert ev.data == {"list": [1, 2], "tuple": [1, 2]}


@pytest.mark.parametrize(
    ("d", "message"),
    [
        (None, "event must be a dict, not NoneType"),
        ([("type", "Error")], "event must be a dict, not list"),
        ({"data": {}, "timestamp": "2024-01-01T00:00:00Z"}, "missing type"),
        (
            {"type": "Nope", "data": {}, "timestamp": "2024-01-01T00:00:00Z"},
            "unknown event type: 'Nope'",
        ),
        ({"type": 999, "data": {}, "timestamp": "2024-01-01T00:00:00Z"}, "unknown event type: 999"),
        (
            {"type": True, "data": {}, "timestamp": "2024-01-01T00:00:00Z"},
            "type must be a string, not boolean",
        ),
        (
            {"type": 1.0, "data": {}, "timestamp": "2024-01-01T00:00:00Z"},
            "type must be a string, not number",
        ),
        ({"type": "Error", "timestamp": "2024-01-01T00:00:00Z"}, "missing data"),
        ({"type": "Error", "data": None, "timestamp": "2024-01-01T00:00:00Z"}, "missing data"),
        (
            {"type": "Error", "data": [1], "timestamp": "2024-01-01T00:00:00Z"},
            "data must be a dict, not list",
        ),
        ({"type": "Error", "data": {}}, "missing timestamp"),
        ({"type": "Error", "data": {}, "timestamp": 0}, "timestamp must be a string, not number"),
        ({"type": "Error", "data": {}, "timestamp": "yesterday"}, "invalid timestamp 'yesterday'"),
    ],
)
def test_from_dict_rejects_bad_input(d: Any, message: str) -> None:
    with pytest.raises(fe.InvalidEvent) as info:
        fe.Event.from_dict(d)
    assert str(info.value).startswith(f"invalid event: {message}")


@pytest.mark.parametrize(
    "data", [{"x": float("nan")}, {"x": {1, 2}}, {"x": object()}, {(1, 2): "tuple key"}]
)
def test_from_dict_rejects_data_json_cannot_carry(data: dict[Any, Any]) -> None:
    with pytest.raises(fe.InvalidEvent, match="cannot be encoded as JSON"):
        fe.Event.from_dict({"type": "Usage", "data": data, "timestamp": NOON})
