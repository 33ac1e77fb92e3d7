"""The wire format: RFC 3339 timestamps, JSON encode/decode, and Go interop."""

from __future__ import annotations

import json
import re
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import fastevents as fe
from fastevents import _rfc3339, _wire

UTC = timezone.utc
T = fe.EventType
HERE = Path(__file__).resolve().parent
SHARED_GO_EVENTS = Path(__file__).resolve().parents[2] / "shared" / "interop" / "go_events.jsonl"
LOCAL_GO_EVENTS = HERE / "data" / "go_events.jsonl"
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def tz(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


# -- an independent reference for RFC 3339 (what the spec says, written plainly) ----------

_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d\d):(\d\d))",
    re.ASCII,
)


def reference_parse(s: str) -> datetime | None:
    m = _RFC3339.fullmatch(s)
    if m is None:
        return None
    y, mo, d, h, mi, sec, frac, z, sign, oh, om = m.groups()
    if int(h) > 23 or int(mi) > 59 or int(sec) > 59:
        return None
    micros = int((frac or "0")[:6].ljust(6, "0"))  # truncated, never rounded
    if z:
        zone = UTC
    else:
        if int(oh) > 23 or int(om) > 59:
            return None
        minutes = (int(oh) * 60 + int(om)) * (-1 if sign == "-" else 1)
        zone = UTC if minutes == 0 else tz(minutes)
    try:
        return datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec), micros, zone)
    except ValueError:
        return None


def same_moment_and_offset(a: datetime, b: datetime) -> bool:
    return (
        a == b
        and a.utcoffset() == b.utcoffset()
        and a.replace(tzinfo=None) == b.replace(tzinfo=None)
    )


# -- Go interop -----------------------------------------------------------------------------


def go_lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def expected_rewrite(line: str) -> str:
    """What we write back for a Go line: the fraction truncated to microseconds, trimmed."""

    def fix(m: re.Match[str]) -> str:
        frac = m.group(1)[:6].rstrip("0")
        return ("." + frac if frac else "") + m.group(2)

    return re.sub(r"\.(\d+)(Z|[+-]\d\d:\d\d)\"", lambda m: fix(m) + '"', line)


def check_go_file(path: Path) -> None:
    lines = go_lines(path)
    assert len(lines) >= 8
    seen_types = set()
    for line in lines:
        raw = json.loads(line)
        for given_ in (line, line.encode("utf-8"), bytearray(line.encode("utf-8"))):
            ev = fe.Event.from_json(given_)
            ev.validate()
            assert str(ev.type) == raw["type"]
            assert ev.data == raw["data"]
            want = reference_parse(raw["timestamp"])
            assert want is not None and ev.timestamp is not None
            assert same_moment_and_offset(ev.timestamp, want)
            # Written back: equal, readable, and identical to Go's text up to nanoseconds.
            text = ev.to_json()
            assert fe.Event.from_json(text) == ev
            assert text == expected_rewrite(line)
            assert fe.Event.from_dict(ev.to_dict()) == ev
        seen_types.add(ev.type)
    # Every type the Go package knows (ToolInputDelta is an extension it cannot read).
    assert seen_types == set(T) - {T.TOOL_INPUT_DELTA}


def test_go_events_bundled_copy() -> None:
    # The copy in tests/data runs from any clone; it must match the shared original
    # when that is present (so the copy cannot silently go stale).
    check_go_file(LOCAL_GO_EVENTS)
    if SHARED_GO_EVENTS.exists():
        assert LOCAL_GO_EVENTS.read_bytes() == SHARED_GO_EVENTS.read_bytes()


@pytest.mark.skipif(
    not SHARED_GO_EVENTS.exists(),
    reason=f"shared interop file not found at {SHARED_GO_EVENTS} (outside the monorepo)",
)
def test_go_events_shared_file() -> None:
    check_go_file(SHARED_GO_EVENTS)


def test_go_events_known_values() -> None:
    events = [fe.Event.from_json(line) for line in go_lines(LOCAL_GO_EVENTS)]
    first, second, _, fourth = events[:4]
    assert first.timestamp == datetime(2024, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    # -05:30 is kept as the event's own offset, and written back as such.
    assert second.timestamp is not None
    assert second.timestamp.utcoffset() == timedelta(hours=-5, minutes=-30)
    assert second.timestamp == datetime(2024, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert '"timestamp":"2024-01-01T06:30:00.123456-05:30"' in second.to_json()
    # .999999999 truncates to .999999: rounding would move it into the year 2000.
    assert fourth.timestamp == datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


# -- writing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "text"),
    [
        (datetime(2024, 1, 1, 12, 0, 0, 123456, UTC), "2024-01-01T12:00:00.123456Z"),
        (datetime(2024, 1, 1, 12, 0, 0, 100000, UTC), "2024-01-01T12:00:00.1Z"),
        (datetime(2024, 1, 1, 12, 0, 0, 120, UTC), "2024-01-01T12:00:00.00012Z"),
        (datetime(2024, 1, 1, 12, 0, 0, 0, UTC), "2024-01-01T12:00:00Z"),
        (datetime(2024, 1, 1, 12, 0, 0, 1, UTC), "2024-01-01T12:00:00.000001Z"),
        (datetime(2024, 1, 1, 6, 30, 0, 123456, tz(-330)), "2024-01-01T06:30:00.123456-05:30"),
        (datetime(2024, 1, 1, 14, 0, tzinfo=tz(120)), "2024-01-01T14:00:00+02:00"),
        (datetime(2024, 1, 1, 14, 0, tzinfo=tz(23 * 60 + 59)), "2024-01-01T14:00:00+23:59"),
        (datetime(2024, 1, 1, 14, 0, tzinfo=tz(-(23 * 60 + 59))), "2024-01-01T14:00:00-23:59"),
        (datetime(2024, 1, 1, 12, 0), "2024-01-01T12:00:00Z"),  # naive: UTC
        (datetime(1, 1, 1, tzinfo=tz(300)), "0001-01-01T00:00:00+05:00"),
        (datetime(9999, 12, 31, 23, 59, 59, 999999, tz(-300)), "9999-12-31T23:59:59.999999-05:00"),
        (datetime(1969, 12, 31, 23, 59, 59, 500000, UTC), "1969-12-31T23:59:59.5Z"),
        (datetime(999, 3, 4, 5, 6, 7, tzinfo=UTC), "0999-03-04T05:06:07Z"),
        # An offset with seconds has no RFC 3339 spelling: the instant is written in UTC.
        (
            datetime(2024, 1, 1, 6, 30, 5, 120000, timezone(timedelta(hours=5, seconds=5))),
            "2024-01-01T01:30:00.12Z",
        ),
    ],
)
def test_format_rfc3339(ts: datetime, text: str) -> None:
    assert _rfc3339.format_rfc3339(ts) == text
    event = fe.Event(T.ERROR, {"error": "x"}, ts)
    assert event.to_json() == '{"type":"Error","data":{"error":"x"},"timestamp":"' + text + '"}'
    again = fe.Event.from_json(event.to_json())
    assert again == event


def test_format_int_microseconds() -> None:
    assert _rfc3339.format_rfc3339(0) == "1970-01-01T00:00:00Z"
    assert _rfc3339.format_rfc3339(1_704_110_400_123_456) == "2024-01-01T12:00:00.123456Z"
    assert _rfc3339.format_rfc3339(-1) == "1969-12-31T23:59:59.999999Z"


def test_to_json_layout() -> None:
    ev = fe.Event(
        T.MESSAGE_STOP,
        {"message_id": "m", "stop_reason": "end_turn", "n": [1, 2.5, None, True]},
        datetime(2024, 1, 1, tzinfo=UTC),
    )
    assert ev.to_json() == (
        '{"type":"MessageStop","data":{"message_id":"m","stop_reason":"end_turn","n":[1,2.5,null,true]},'
        '"timestamp":"2024-01-01T00:00:00Z"}'
    )
    # Non-ASCII is escaped (the output is plain ASCII), and reads back equal.
    ev = fe.Event(
        T.TEXT_DELTA, {"text": 'héllo ☃ \U0001f600 "q" \\ \n'}, datetime(2024, 1, 1, tzinfo=UTC)
    )
    assert ev.to_json().isascii()
    assert fe.Event.from_json(ev.to_json()) == ev


def test_to_json_of_now_events_matches_their_timestamp() -> None:
    for _ in range(50):
        ev = fe.text_delta_event("x")
        stamp = json.loads(ev.to_json())["timestamp"]
        assert reference_parse(stamp) == ev.timestamp


def test_to_json_accepts_int_type_and_dict_subclass() -> None:
    ev = fe.Event(T.USAGE, {}, datetime(2024, 1, 1, tzinfo=UTC))
    ev.type = 6  # type: ignore[assignment]

    class D(dict):  # type: ignore[type-arg]
        pass

    ev.data = D(a=1)
    assert ev.to_json() == '{"type":"Usage","data":{"a":1},"timestamp":"2024-01-01T00:00:00Z"}'


def _circular() -> dict[str, Any]:
    d: dict[str, Any] = {}
    d["self"] = d
    return d


def _deep(n: int) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for _ in range(n):
        d = {"d": d}
    return d


@pytest.mark.parametrize(
    "data",
    [
        {"x": float("nan")},
        {"x": float("inf")},
        {"x": [float("-inf")]},
        {"x": {1, 2}},
        {"x": object()},
        {"x": b"bytes"},
        {(1, 2): "tuple key"},
        {"x": 10**5000},  # beyond the int -> str digit limit
        _circular(),
        _deep(100_000),
    ],
    ids=[
        "nan",
        "inf",
        "-inf",
        "set",
        "object",
        "bytes",
        "tuple-key",
        "huge-int",
        "circular",
        "deep",
    ],
)
def test_to_json_rejects_data_json_cannot_carry(data: dict[Any, Any]) -> None:
    ev = fe.Event(T.USAGE, data)
    with pytest.raises(
        fe.InvalidEvent, match=r"^invalid event: data cannot be encoded as JSON"
    ) as info:
        ev.to_json()
    assert isinstance(info.value.__cause__, (TypeError, ValueError, RecursionError))
    with pytest.raises(fe.InvalidEvent):
        ev.to_dict()


@pytest.mark.parametrize(
    ("ev", "message"),
    [
        (fe.Event(T.USAGE, {}, None), "timestamp cannot be zero"),
        (fe.Event(999, {}), "unknown event type: 999"),
        (fe.Event(T.USAGE, None), "data cannot be None"),
        (fe.Event(T.USAGE, [1]), "data must be a dict, not list"),  # type: ignore[arg-type]
    ],
)
def test_to_json_rejects_invalid_events(ev: fe.Event, message: str) -> None:
    with pytest.raises(fe.InvalidEvent) as info:
        ev.to_json()
    assert str(info.value) == "invalid event: " + message


# -- reading timestamps ---------------------------------------------------------------------


VALID_TIMESTAMPS = [
    ("2024-01-01T12:00:00Z", datetime(2024, 1, 1, 12, tzinfo=UTC)),
    ("2024-01-01t12:00:00z", datetime(2024, 1, 1, 12, tzinfo=UTC)),
    ("2024-01-01T12:00:00+00:00", datetime(2024, 1, 1, 12, tzinfo=UTC)),
    ("2024-01-01T12:00:00-00:00", datetime(2024, 1, 1, 12, tzinfo=UTC)),
    ("2024-01-01T12:00:00.1Z", datetime(2024, 1, 1, 12, 0, 0, 100000, UTC)),
    ("2024-01-01T12:00:00.123456Z", datetime(2024, 1, 1, 12, 0, 0, 123456, UTC)),
    ("2024-01-01T12:00:00.1234567Z", datetime(2024, 1, 1, 12, 0, 0, 123456, UTC)),
    ("2024-01-01T12:00:00.123456789Z", datetime(2024, 1, 1, 12, 0, 0, 123456, UTC)),
    ("2024-01-01T12:00:00.999999999Z", datetime(2024, 1, 1, 12, 0, 0, 999999, UTC)),  # truncated
    ("2024-01-01T12:00:00.000000001Z", datetime(2024, 1, 1, 12, tzinfo=UTC)),
    ("2024-01-01T12:00:00.000Z", datetime(2024, 1, 1, 12, tzinfo=UTC)),
    ("2024-01-01T06:30:00.5-05:30", datetime(2024, 1, 1, 6, 30, 0, 500000, tz(-330))),
    ("2024-01-01T12:00:00.123456789+23:59", datetime(2024, 1, 1, 12, 0, 0, 123456, tz(1439))),
    ("2024-01-01T12:00:00-23:59", datetime(2024, 1, 1, 12, tzinfo=tz(-1439))),
    ("2024-02-29T23:59:59Z", datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)),
    ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
    ("9999-12-31T23:59:59.999999999Z", datetime(9999, 12, 31, 23, 59, 59, 999999, UTC)),
]

INVALID_TIMESTAMPS = [
    "",
    "2024-01-01",
    "2024-01-01T12:00:00",  # no offset
    "2024-01-01T12:00:00.5",
    "2024-01-01 12:00:00Z",
    "2024-01-01X12:00:00Z",
    "2024-13-01T12:00:00Z",
    "2024-00-01T12:00:00Z",
    "2023-02-29T12:00:00Z",
    "2024-04-31T12:00:00Z",
    "2024-01-00T12:00:00Z",
    "0000-01-01T00:00:00Z",
    "2024-01-01T24:00:00Z",
    "2024-01-01T12:60:00Z",
    "2024-01-01T12:00:60Z",
    "2024-01-01T12:00:00+24:00",
    "2024-01-01T12:00:00+02:60",
    "2024-01-01T12:00:00+0200",
    "2024-01-01T12:00:00+02",
    "2024-01-01T12:00:00+02:00:00",
    "2024-01-01T12:00:00,5Z",
    "2024-01-01T12:00:00.Z",
    "2024-01-01T12:00:00.1234567891Z",  # 10 digits
    "2024-01-01T12:00:00.123456abcZ",
    "2024-01-01T12:00:00.123456 Z",
    "2024-01-01T12:00:00.1234567 Z",
    "2024-01-01T12:00:00 Z",
    "2024-01-01T12:00:00Z ",
    " 2024-01-01T12:00:00Z",
    "2024-01-01T12:00:00ZZ",
    "2024-01-01T12:00:00Z+02:00",
    "2024-01-01T12:00:00.1+02:00Z",
    "2024-1-01T12:00:00Z",
    "+024-01-01T12:00:00Z",
    # Arabic-Indic and fullwidth digits: digits to str.isdigit and int(), not to RFC 3339.
    "2024-01-01T12:00:00.\u0661\u0662Z",
    "\uff12\uff10\uff12\uff14-01-01T12:00:00Z",
    "2024-01-01T12:00:00.1234567\u0663Z",
    "2024-W01-1T12:00:00Z",
    "20240101T120000Z",
]


def warm(s: str) -> None:
    """Run the strict parser once, so the caches behind the fast paths hold `s`'s parts."""
    try:
        _rfc3339.parse_strict(s)
    except ValueError:
        pass
    if len(s) >= 19:
        try:
            _rfc3339.parse_strict(s[:19] + "Z")
        except ValueError:
            pass


@pytest.mark.parametrize(("text", "want"), VALID_TIMESTAMPS)
@pytest.mark.parametrize("warmed", [False, True])
def test_parse_valid(text: str, want: datetime, warmed: bool) -> None:
    if warmed:
        warm(text)
    got = _rfc3339.parse_rfc3339(text)
    assert same_moment_and_offset(got, want)
    assert same_moment_and_offset(_rfc3339.parse_strict(text), want)
    assert reference_parse(text) == want
    envelope = '{"type":"Error","data":{},"timestamp":"' + text + '"}'
    if want == datetime(1, 1, 1, tzinfo=UTC):  # Go's zero time: a valid date-time, no event
        with pytest.raises(fe.InvalidEvent, match="timestamp cannot be zero"):
            fe.Event.from_json(envelope)
        return
    ts = fe.Event.from_json(envelope).timestamp
    assert ts is not None and same_moment_and_offset(ts, want)


@pytest.mark.parametrize("text", INVALID_TIMESTAMPS)
@pytest.mark.parametrize("warmed", [False, True])
def test_parse_invalid(text: str, warmed: bool) -> None:
    if warmed:
        warm(text)
    assert reference_parse(text) is None
    with pytest.raises(ValueError):
        _rfc3339.parse_rfc3339(text)
    envelope = '{"type":"Error","data":{},"timestamp":' + json.dumps(text) + "}"
    with pytest.raises(fe.InvalidEvent, match="invalid timestamp") as info:
        fe.Event.from_json(envelope)
    assert isinstance(info.value.__cause__, ValueError)


def test_parse_rfc3339_type_error() -> None:
    with pytest.raises(TypeError):
        _rfc3339.parse_rfc3339(20240101)  # type: ignore[arg-type]


def test_offsets_share_tzinfo_objects() -> None:
    a = _rfc3339.parse_strict("2024-01-01T12:00:00+05:30")
    b = _rfc3339.parse_strict("2030-06-01T00:00:00+05:30")
    assert a.tzinfo is b.tzinfo
    assert _rfc3339.parse_strict("2024-01-01T12:00:00+00:00").tzinfo is UTC


# Near-valid timestamps: every field drawn from a range that straddles its limits.
_near_valid = st.builds(
    lambda y, mo, d, sep, h, mi, s, frac, zone: (
        f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{frac}{zone}"
    ),
    st.sampled_from([1, 999, 1970, 2024, 9999, 0]),
    st.integers(0, 13),
    st.integers(0, 32),
    st.sampled_from(["T", "t", " ", "x"]),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
    st.one_of(
        st.just(""),
        st.from_regex(r"[.,][0-9]{0,11}", fullmatch=True),
        st.text(alphabet='0123456789.,+-:Z "a\u0663', max_size=12).map(lambda t: "." + t),
    ),
    st.one_of(
        st.sampled_from(
            [
                "Z",
                "z",
                "",
                "ZZ",
                " Z",
                "Z ",
                "+00:00",
                "-00:00",
                "+0200",
                "+02",
                "+02:00:00",
                "+24:00",
                "+02:60",
            ]
        ),
        st.builds(
            lambda sign, h, m: f"{sign}{h:02d}:{m:02d}",
            st.sampled_from("+-"),
            st.integers(0, 25),
            st.integers(0, 61),
        ),
    ),
)
_timestamp_soup = st.text(alphabet='0123456789-:.TtZz+ ,"\\', min_size=15, max_size=40)


@PROPERTY
@given(st.one_of(_near_valid, _timestamp_soup))
@example("2024-01-01T12:00:00.123456abcZ")
@example('2024-01-01T12:00:00.123456","Z')
@example("2024-01-01T12:00:00.1+02:00Z")
@example("2024-01-01T12:00:00.-02:00")
@example("2024-01-01T12:00:00.123456789-05:3")
def test_fast_and_strict_paths_agree_with_the_reference(text: str) -> None:
    warm(text)  # so that the fast paths are live for this date-time
    want = reference_parse(text)
    for parse in (_rfc3339.parse_rfc3339, _rfc3339.parse_strict):
        if want is None:
            with pytest.raises(ValueError):
                parse(text)
        else:
            assert same_moment_and_offset(parse(text), want)
    # The same text inside an event, as JSON would write it and raw (raw may be bad JSON).
    for quoted in (json.dumps(text), '"' + text + '"'):
        envelope = '{"type":"Thinking","data":{"thinking":"x"},"timestamp":' + quoted + "}"
        try:
            general: fe.Event | None = _wire._event_from_text(fe.Event, envelope)
        except fe.InvalidEvent:
            general = None
        try:
            fast: fe.Event | None = fe.Event.from_json(envelope)
        except fe.InvalidEvent:
            fast = None
        if general is None:
            assert fast is None
        else:
            assert fast is not None and fast == general
            assert fast.timestamp is not None and general.timestamp is not None
            assert same_moment_and_offset(fast.timestamp, general.timestamp)
            if quoted == json.dumps(text):
                assert want is not None and same_moment_and_offset(fast.timestamp, want)


def test_fast_path_is_taken_for_the_written_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [*go_lines(LOCAL_GO_EVENTS), fe.text_delta_event("x").to_json()]
    for line in lines:
        fe.Event.from_json(line)  # warms the caches

    def general_path(*args: object) -> None:
        raise AssertionError("took the general path")

    monkeypatch.setattr(_wire, "_event_from_text", general_path)
    if _rfc3339._fromisoformat is None:
        pytest.skip("the read fast path needs datetime.fromisoformat of Python 3.11+")
    for line in lines:
        fe.Event.from_json(line)


def test_caches_are_bounded_and_stay_correct() -> None:
    # More distinct seconds than either cache holds, read and written twice.
    base = datetime(2001, 1, 1, tzinfo=UTC)
    events = [
        fe.Event(T.USAGE, {"i": i}, base + timedelta(seconds=7 * i, microseconds=i))
        for i in range(5000)
    ]
    for _ in range(2):
        texts = [ev.to_json() for ev in events]
        assert [fe.Event.from_json(t) for t in texts] == events
    assert len(_rfc3339._prefixes) <= _rfc3339._PREFIX_CACHE_MAX
    assert len(_rfc3339._seconds_text) <= _rfc3339._SECONDS_CACHE_MAX


def test_concurrent_use_of_the_caches() -> None:
    base = datetime(2010, 1, 1, tzinfo=UTC)
    events = [
        fe.Event(
            T.USAGE,
            {"i": i},
            (base + timedelta(seconds=i % 97, microseconds=i)).astimezone(tz(60 * (i % 5))),
        )
        for i in range(2000)
    ]
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for k in range(len(events)):
                ev = events[(k + offset) % len(events)]
                again = fe.Event.from_json(ev.to_json())
                assert again == ev
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i * 131,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# -- reading events -------------------------------------------------------------------------

GOOD = '{"type":"Usage","data":{"a":1},"timestamp":"2024-01-01T12:00:00Z"}'


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        ' {"type":"Usage","data":{"a":1},"timestamp":"2024-01-01T12:00:00Z"} \n',
        '{\n  "type": "Usage",\n  "data": {"a": 1},\n  "timestamp": "2024-01-01T12:00:00Z"\n}',
        '{"timestamp":"2024-01-01T12:00:00Z","data":{"a":1},"type":"Usage"}',
        '{"type":"Usage","data":{"a":1},"timestamp":"2024-01-01T12:00:00Z","extra":[1,2],"id":"x"}',
        '{"type":"Usage","data":{"a":1},"timestamp":"2024-01-01T12:00:00\\u005a"}',
        '{"type":"\\u0055sage","data":{"a":1},"timestamp":"2024-01-01T12:00:00Z"}',
        # A repeated key: the last one wins, as in Go.
        '{"type":"Error","type":"Usage","data":{"a":1},"timestamp":"2024-01-01T12:00:00Z"}',
    ],
)
def test_from_json_accepts_any_valid_json_layout(text: str) -> None:
    ev = fe.Event.from_json(text)
    assert ev == fe.Event(T.USAGE, {"a": 1}, datetime(2024, 1, 1, 12, tzinfo=UTC))
    assert fe.Event.from_json(text.encode()) == ev


def test_from_json_accepts_bytes_like() -> None:
    want = fe.Event.from_json(GOOD)
    for raw in (GOOD.encode(), bytearray(GOOD.encode()), memoryview(GOOD.encode())):
        assert fe.Event.from_json(raw) == want


def test_from_json_reads_raw_utf8_and_lone_surrogates() -> None:
    text = '{"type":"TextDelta","data":{"text":"héllo ☃"},"timestamp":"2024-01-01T12:00:00Z"}'
    assert fe.Event.from_json(text.encode("utf-8")).data == {"text": "héllo ☃"}
    ev = fe.Event.from_json(
        '{"type":"TextDelta","data":{"text":"\\ud800"},"timestamp":"2024-01-01T12:00:00Z"}'
    )
    assert ev.data == {"text": "\ud800"}
    assert fe.Event.from_json(ev.to_json()) == ev


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "malformed JSON"),
        ("   ", "malformed JSON"),
        ("{", "malformed JSON"),
        ("nope", "malformed JSON"),
        (GOOD + "x", "malformed JSON"),
        (GOOD + GOOD, "malformed JSON"),
        (GOOD[:-1], "malformed JSON"),
        ("{'type':'Usage'}", "malformed JSON"),
        ('{"type":"Usage","data":{"a":NaN},"timestamp":"2024-01-01T12:00:00Z"}', "malformed JSON"),
        (
            '{"type":"Usage","data":{"a":Infinity},"timestamp":"2024-01-01T12:00:00Z"}',
            "malformed JSON",
        ),
        (
            '{"type":"Usage","data":{"a":-Infinity},"timestamp":"2024-01-01T12:00:00Z"}',
            "malformed JSON",
        ),
        (
            '{"type":"Usage","data":{"a":1e999},"timestamp":"2024-01-01T12:00:00Z"}',
            "malformed JSON",
        ),
        (
            '{"type":"Usage","data":{"a":' + "9" * 5000 + '},"timestamp":"2024-01-01T12:00:00Z"}',
            "malformed JSON",
        ),
        (
            '{"type":"Usage","data":'
            + "[" * 100_000
            + "]" * 100_000
            + ',"timestamp":"2024-01-01T12:00:00Z"}',
            "malformed JSON",
        ),
        (
            '{"type":"Usage","data":'
            + '{"a":' * 100_000
            + "1"
            + "}" * 100_000
            + ',"timestamp":"2024-01-01T12:00:00Z"}',
            "malformed JSON",
        ),
        ('{"type":"Usage","data":{"a":1},"timestamp":"2024-01-01T12:00:00Z"', "malformed JSON"),
        ('{"type":"Usage","data":{"a":1},"timestamp":"2024-01-01T12:00:00Z",}', "malformed JSON"),
        (
            '{"type":"Usage","data":{"a":"\x01"},"timestamp":"2024-01-01T12:00:00Z"}',
            "malformed JSON",
        ),
        ("[]", "event must be a JSON object, not array"),
        ("null", "event must be a JSON object, not null"),
        ('"x"', "event must be a JSON object, not string"),
        ("12", "event must be a JSON object, not number"),
        ('{"data":{},"timestamp":"2024-01-01T12:00:00Z"}', "missing type"),
        ('{"type":null,"data":{},"timestamp":"2024-01-01T12:00:00Z"}', "missing type"),
        (
            '{"type":6,"data":{},"timestamp":"2024-01-01T12:00:00Z"}',
            "type must be a string, not number",
        ),
        (
            '{"type":["Usage"],"data":{},"timestamp":"2024-01-01T12:00:00Z"}',
            "type must be a string, not array",
        ),
        (
            '{"type":"usage","data":{},"timestamp":"2024-01-01T12:00:00Z"}',
            "unknown event type: 'usage'",
        ),
        ('{"type":"","data":{},"timestamp":"2024-01-01T12:00:00Z"}', "unknown event type: ''"),
        ('{"type":"Usage","timestamp":"2024-01-01T12:00:00Z"}', "missing data"),
        ('{"type":"Usage","data":null,"timestamp":"2024-01-01T12:00:00Z"}', "missing data"),
        (
            '{"type":"Usage","data":[],"timestamp":"2024-01-01T12:00:00Z"}',
            "data must be a JSON object, not array",
        ),
        (
            '{"type":"Usage","data":"x","timestamp":"2024-01-01T12:00:00Z"}',
            "data must be a JSON object, not string",
        ),
        ('{"type":"Usage","data":{}}', "missing timestamp"),
        ('{"type":"Usage","data":{},"timestamp":null}', "missing timestamp"),
        (
            '{"type":"Usage","data":{},"timestamp":1704110400}',
            "timestamp must be a string, not number",
        ),
        (
            '{"type":"Usage","data":{},"timestamp":"2024-01-01T12:00:00"}',
            "invalid timestamp '2024-01-01T12:00:00'",
        ),
        ('{"type":"Usage","data":{},"timestamp":"0001-01-01T00:00:00"}', "invalid timestamp"),
        (b"\xff\xfe{}", "invalid UTF-8"),
        (
            b'{"type":"TextDelta","data":{"text":"\xc3\x28"},"timestamp":"2024-01-01T12:00:00Z"}',
            "invalid UTF-8",
        ),
        (None, "event JSON must be str or bytes, not NoneType"),
        (123, "event JSON must be str or bytes, not int"),
        ({"type": "Usage"}, "event JSON must be str or bytes, not dict"),
    ],
)
def test_from_json_rejects_bad_input_with_invalid_event_only(raw: Any, message: str) -> None:
    with pytest.raises(fe.InvalidEvent) as info:
        fe.Event.from_json(raw)
    assert str(info.value).startswith("invalid event: " + message), str(info.value)
    if message in ("malformed JSON", "invalid UTF-8"):
        assert isinstance(info.value.__cause__, (ValueError, RecursionError))


# -- round trips ----------------------------------------------------------------------------

_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
_json_value = st.recursive(
    _json_leaf,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_data = st.dictionaries(st.text(max_size=10), _json_value, max_size=5)
_offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(tz)
_timestamps = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.one_of(st.just(UTC), _offsets),
    ),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),  # naive
)


@PROPERTY
@given(st.sampled_from(list(T)), _data, _timestamps)
def test_round_trip(etype: fe.EventType, data: dict[str, Any], ts: datetime) -> None:
    ev = fe.Event(etype, data, ts)
    text = ev.to_json()
    assert text.isascii()
    again = fe.Event.from_json(text)
    assert again == ev
    assert again.type is etype
    assert again.timestamp is not None and ev.timestamp is not None
    assert again.timestamp.utcoffset() == ev.timestamp.utcoffset()
    assert again.to_json() == text  # a fixpoint: writing what was read changes nothing
    assert fe.Event.from_json(text.encode()) == ev
    assert fe.Event.from_dict(ev.to_dict()) == ev
    assert ev.to_dict() == json.loads(text)


@PROPERTY
@given(
    st.sampled_from(list(T)),
    _data,
    st.integers(
        min_value=-62_135_596_800_000_000 + 86_400_000_000,
        max_value=253_402_300_799_999_999 - 86_400_000_000,
    ),
)
def test_round_trip_of_int_microsecond_timestamps(
    etype: fe.EventType, data: dict[str, Any], micros: int
) -> None:
    ev = fe.Event(etype, data)
    ev._ts = micros  # what "now" events hold, at any instant
    again = fe.Event.from_json(ev.to_json())
    assert again == ev
    assert again.to_json() == ev.to_json()


def test_round_trip_of_every_factory() -> None:
    for ev in [
        fe.text_delta_event("hi"),
        fe.content_start_event(0),
        fe.content_end_event(1),
        fe.message_start_event("m"),
        fe.message_stop_event("m", "end_turn"),
        fe.error_event("e"),
        fe.usage_event(1, 2, 3),
        fe.thinking_event("t"),
    ]:
        assert fe.Event.from_json(ev.to_json()) == ev
        assert fe.Event.from_dict(ev.to_dict()) == ev


@pytest.mark.skipif(sys.version_info < (3, 11), reason="only 3.11+ has the read fast path")
def test_fast_path_result_is_utc_singleton_for_z() -> None:
    text = fe.text_delta_event("x").to_json()
    fe.Event.from_json(text)
    ts = fe.Event.from_json(text).timestamp
    assert ts is not None and ts.tzinfo is UTC
