"""Bad input (issue #5): fuzzed wire text, wrong argument types, huge buffer sizes.

* ``Event.from_json`` fed arbitrary text, arbitrary bytes (invalid UTF-8 included),
  arbitrary JSON values, near-valid envelopes, valid events with mutated bytes, deep
  nesting, huge numbers and lone surrogates: the only exception ever raised is
  ``InvalidEvent``; whatever it accepts is a valid event that ``to_json`` writes back and
  ``from_json`` reads again as an equal event.
* Wrong types for ``buffer_size``, ``policy`` and ``timeout`` (and ``max_items``) on both
  twins raise ``TypeError``/``ValueError`` and leave the stream as it was.
* ``buffer_size`` up to 2**31 (and far beyond) works, and memory follows use.

``FASTEVENTS_FUZZ_EXAMPLES`` sets the examples per hypothesis test (default 150, 1000
with ``FASTEVENTS_SLOW=1``);
``FASTEVENTS_FUZZ_REPORT=1`` prints how many inputs were tried.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import string
import sys
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fastevents as fe

BLOCK = fe.BackpressurePolicy.BLOCK
DROP = fe.BackpressurePolicy.DROP

SLOW = os.environ.get("FASTEVENTS_SLOW") == "1"
EXAMPLES = int(os.environ.get("FASTEVENTS_FUZZ_EXAMPLES", "1000" if SLOW else "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
# For the strategies that are slow to draw (nested JSON inside envelopes).
FUZZ_HALF = settings(FUZZ, max_examples=max(1, EXAMPLES * 2 // 3))
TRIED: Counter[str] = Counter()

WIRE_NAMES = [str(t) for t in fe.EventType]
VALID = (
    '{"type":"TextDelta","data":{"text":"hi","n":[1,2.5,null,true]},'
    '"timestamp":"2024-01-01T12:00:00.123456789Z"}'
)
TS = '"timestamp":"2024-01-01T00:00:00Z"}'  # the end of an envelope


def check_from_json(raw: Any, label: str) -> fe.Event | None:
    """from_json may only return a good event or raise InvalidEvent."""
    TRIED[label] += 1
    try:
        ev = fe.Event.from_json(raw)
    except fe.InvalidEvent as exc:
        str(exc)  # the message itself must be printable
        return None
    # Anything else propagates and fails the test.
    assert isinstance(ev, fe.Event)
    ev.validate()
    assert ev.timestamp is not None and ev.timestamp.tzinfo is not None
    return ev


def check_round_trip(ev: fe.Event) -> None:
    """What was read can be written back, and reads again as an equal event."""
    text = ev.to_json()
    again = fe.Event.from_json(text)
    assert again == ev
    assert fe.Event.from_json(text.encode()) == ev


def has_overflowing_float(obj: Any) -> bool:
    if isinstance(obj, float):
        return math.isinf(obj)
    if isinstance(obj, dict):
        return any(has_overflowing_float(v) for v in obj.values())
    if isinstance(obj, list):
        return any(has_overflowing_float(v) for v in obj)
    return False


def accept(raw: Any, label: str) -> None:
    ev = check_from_json(raw, label)
    if ev is not None and not has_overflowing_float(ev.data):
        # (Overflowing floats: see test_overflowing_number_is_invalid.)
        check_round_trip(ev)


@pytest.fixture(scope="module", autouse=True)
def _report() -> Any:
    yield
    if os.environ.get("FASTEVENTS_FUZZ_REPORT"):
        print(f"\nfrom_json fuzz inputs: {sum(TRIED.values())} {dict(TRIED)}")


# -- strategies ------------------------------------------------------------------------------

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    json_scalars,
    lambda kids: (st.lists(kids, max_size=4)
                  | st.dictionaries(st.text(max_size=8), kids, max_size=4)),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=5)


def timestamps() -> st.SearchStrategy[str]:
    digits = st.text(alphabet="0123456789", min_size=1, max_size=12)
    good = st.datetimes().map(lambda d: d.isoformat() + "Z")
    weird = st.builds(
        lambda y, mo, d, h, mi, s, frac, zone: f"{y}-{mo}-{d}T{h}:{mi}:{s}{frac}{zone}",
        st.sampled_from(["2024", "0000", "9999", "10000", "24", "+2024",
                         "\uff12\uff10\uff12\uff14"]),  # full-width digits
        st.sampled_from(["01", "02", "12", "13", "00", "1"]),
        st.sampled_from(["01", "29", "30", "31", "32", "00"]),
        st.sampled_from(["00", "23", "24", "99"]),
        st.sampled_from(["00", "59", "60"]),
        st.sampled_from(["00", "59", "60", "61"]),
        (st.sampled_from(["", ".", ".1", ".123456789", ".1234567890", ".\u0663", ".-1"])
         | digits.map(lambda d: "." + d)),
        st.sampled_from(["Z", "z", "", "+00:00", "-00:00", "+23:59", "+24:00", "+05:60",
                         "+0530", "+05:30:00", " Z", "UTC", "-99:99"]),
    )
    return good | weird | st.text(max_size=40)


near_valid = st.builds(
    lambda t, d, ts, extra: {"type": t, "data": d, "timestamp": ts, **extra},
    st.sampled_from(WIRE_NAMES) | st.text(max_size=12) | json_values,
    json_objects | json_values,
    timestamps() | json_values,
    st.dictionaries(st.text(max_size=5), json_values, max_size=2),
)


# -- fuzz ------------------------------------------------------------------------------------


@FUZZ
@given(st.text())
def test_from_json_arbitrary_text(text: str) -> None:
    accept(text, "text")


@FUZZ
@given(st.binary())
def test_from_json_arbitrary_bytes(raw: bytes) -> None:
    accept(raw, "bytes")
    accept(bytearray(raw), "bytes")


@FUZZ
@given(json_values)
def test_from_json_arbitrary_json_values(value: Any) -> None:
    text = json.dumps(value)
    accept(text, "json-value")
    accept(text.encode(), "json-value")


@FUZZ_HALF
@given(near_valid, st.booleans())
def test_from_json_near_valid_envelopes(obj: dict[str, Any], compact: bool) -> None:
    try:
        text = json.dumps(obj, separators=(",", ":") if compact else None)
    except ValueError:
        assume(False)
    accept(text, "near-valid")


@FUZZ_HALF
@given(
    st.sampled_from(list(fe.EventType)), json_objects,
    st.lists(st.tuples(st.sampled_from(["flip", "insert", "delete", "dup"]),
                       st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
             min_size=1, max_size=4),
)
def test_from_json_mutated_valid_events(
    etype: fe.EventType, data: dict[str, Any], mutations: list[tuple[str, float, int]]
) -> None:
    good = fe.Event(etype, data).to_json().encode()
    assert fe.Event.from_json(good).data == data
    raw = bytearray(good)
    for how, where, byte in mutations:
        i = int(where * len(raw))
        if how == "flip" and raw:
            raw[i] ^= byte or 1
        elif how == "insert":
            raw.insert(i, byte)
        elif how == "delete" and raw:
            del raw[i]
        elif how == "dup":
            raw[i:i] = raw[i:i + 8]
    accept(bytes(raw), "mutated")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return
    accept(text, "mutated")


@FUZZ
@given(st.sampled_from(string.printable), st.integers(0, len(VALID)), st.integers(1, 3))
def test_from_json_truncated_and_patched_valid_event(ch: str, cut: int, n: int) -> None:
    accept(VALID[:cut], "truncated")
    accept(VALID[:cut] + ch * n + VALID[cut:], "patched")
    accept(VALID[:cut] + VALID[cut + n:], "patched")


DEEP = 100_000
PATHOLOGICAL = {
    "open-arrays": "[" * DEEP,
    "closed-arrays": "[" * DEEP + "]" * DEEP,
    "open-objects": '{"a":' * DEEP,
    "deep-data": '{"type":"TextDelta","data":' + '{"a":' * DEEP + "1" + "}" * DEEP
                 + ',"timestamp":"2024-01-01T00:00:00Z"}',
    "deep-data-spaced": '{ "type": "TextDelta", "data": ' + '{"a": [' * (DEEP // 2) + "1"
                        + "]}" * (DEEP // 2) + ', "timestamp": "2024-01-01T00:00:00Z"}',
    "deep-type": '{"type":' + "[" * DEEP + "]" * DEEP + ',"data":{},"timestamp":"x"}',
    "huge-int-5001-digits": '{"type":"Usage","data":{"n":' + "1" + "0" * 5000
                            + '},"timestamp":"2024-01-01T00:00:00Z"}',
    "huge-int-alone": "1" + "0" * 5000,
    "huge-negative-int": '{"type":"Usage","data":{"n":-' + "9" * 100_000
                         + '},"timestamp":"2024-01-01T00:00:00Z"}',
    "huge-exponent-alone": "1e999999",
    "tiny-exponent": '{"type":"Usage","data":{"n":1e-999999},"timestamp":"2024-01-01T00:00:00Z"}',
    "nan": '{"type":"Usage","data":{"n":NaN},"timestamp":"2024-01-01T00:00:00Z"}',
    "infinity": '{"type":"Usage","data":{"n":-Infinity},"timestamp":"2024-01-01T00:00:00Z"}',
    "huge-string": '{"type":"TextDelta","data":{"text":"' + "x" * 1_000_000
                   + '"},"timestamp":"2024-01-01T00:00:00Z"}',
    "many-keys": '{"type":"TextDelta","data":{' + ",".join(f'"k{i}":{i}' for i in range(50_000))
                 + '},"timestamp":"2024-01-01T00:00:00Z"}',
    "lone-surrogate-escape": '{"type":"TextDelta","data":{"t":"\\ud800\\udfff\\udc00"},'
                             '"timestamp":"2024-01-01T00:00:00Z"}',
    "lone-surrogate-raw": '{"type":"TextDelta","data":{"t":"\ud800"},'
                          '"timestamp":"2024-01-01T00:00:00Z"}',
    "surrogate-in-type": '{"type":"Text\ud800Delta","data":{},' + TS,
    "surrogate-in-timestamp": '{"type":"TextDelta","data":{},'
                              '"timestamp":"2024-01-01T00:00:00\ud800"}',
    "nul": '{"type":"TextDelta\x00","data":{},"timestamp":"2024-01-01T00:00:00Z"}',
    "bom": '\ufeff{"type":"TextDelta","data":{},"timestamp":"2024-01-01T00:00:00Z"}',
    "duplicate-keys": '{"type":"TextDelta","type":"Nope","data":{},' + TS,
    "empty": "",
    "whitespace": " \n\t ",
}
PATHOLOGICAL_BYTES = {
    "invalid-utf8": b'{"type":"TextDelta","data":{"t":"\xff\xfe"},' + TS.encode(),
    "cesu-surrogate": b'{"type":"TextDelta","data":{"t":"\xed\xa0\x80"},' + TS.encode(),
    "overlong": b'{"type":"TextDelta","data":{"t":"\xc0\xaf"},' + TS.encode(),
    "truncated-utf8": VALID.encode()[:-3] + b"\xe2\x82",
    "utf16": VALID.encode("utf-16"),
    "utf8-bom": b"\xef\xbb\xbf" + VALID.encode(),
    "deep-bytes": b"[" * DEEP,
}


@pytest.mark.parametrize("name", list(PATHOLOGICAL))
def test_from_json_pathological_text(name: str) -> None:
    text = PATHOLOGICAL[name]
    accept(text, "pathological")
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates cannot be UTF-8
        raw = text.encode("utf-8", "surrogatepass")  # CESU-ish: invalid UTF-8 bytes
    accept(raw, "pathological")


@pytest.mark.parametrize("name", list(PATHOLOGICAL_BYTES))
def test_from_json_pathological_bytes(name: str) -> None:
    accept(PATHOLOGICAL_BYTES[name], "pathological")


@pytest.mark.parametrize("value", [None, 1, 1.5, [], {}, object(), ["{}"], memoryview(b"{}")])
def test_from_json_wrong_argument_type(value: Any) -> None:
    check_from_json(value, "wrong-type")


def test_overflowing_number_is_invalid() -> None:
    """``1e999999`` overflows a double: Python reads it as ``inf``.

    The event it gives cannot be written back (``to_json`` refuses infinities), and the
    Go package cannot read it (``json: cannot unmarshal number 1e999999``). API.md makes
    ``NaN``/``Infinity`` invalid on read; an overflowing number is the same value and
    must be ``InvalidEvent`` too, so that every event read can be written back.
    """
    # (1.23456789e308 would be finite: below the float maximum, and Go reads it too.)
    for number in ("1e999999", "-1e999999", "1e400", "-2e308"):
        text = '{"type":"Usage","data":{"n":' + number + '},"timestamp":"2024-01-01T00:00:00Z"}'
        with pytest.raises(fe.InvalidEvent):
            fe.Event.from_json(text)
        with pytest.raises(fe.InvalidEvent):
            fe.Event.from_json(text.replace('{"type"', '{ "type"'))  # the general path


# -- wrong argument types on both twins ------------------------------------------------------

bad_sizes = st.one_of(
    st.text(), st.floats(), st.none(), st.booleans(), st.lists(st.integers(), max_size=2),
    st.complex_numbers(), st.just(object()), st.decimals(allow_nan=False),
    st.integers(min_value=sys.maxsize // 16 + 1),
)
bad_policies = st.one_of(
    st.text(), st.floats(), st.none(), st.booleans(),
    st.integers().filter(lambda i: i not in (0, 1)),
    st.just("BLOCK"), st.just([0]), st.just(b"\x00"),
)
bad_timeouts = st.one_of(
    st.text(), st.booleans(), st.lists(st.integers(), max_size=2), st.complex_numbers(),
    st.just(float("nan")), st.just(object()), st.decimals(allow_nan=False),
    st.floats(max_value=-1e-300, allow_nan=False), st.integers(max_value=-1),
)


def snapshot(s: Any) -> tuple[Any, ...]:
    return (len(s), s.closed, s.policy, s.buffer_size)


@pytest.fixture
def filled(stream_cls: type) -> Any:
    def make(policy: fe.BackpressurePolicy = BLOCK) -> Any:
        s = stream_cls(4, policy)
        s.send_many([fe.text_delta_event(str(i)) for i in range(2)])
        return s
    return make


def test_bad_buffer_size(stream_cls: type) -> None:
    @FUZZ
    @given(bad_sizes)
    def check(size: Any) -> None:
        TRIED["bad-buffer-size"] += 1
        with pytest.raises((TypeError, ValueError)):
            stream_cls(size)
        with pytest.raises((TypeError, ValueError)):
            stream_cls(buffer_size=size, policy=DROP)
        with pytest.raises((TypeError, ValueError)):
            fe.StreamManager(buffer_size=size, stream_class=stream_cls)

    check()


def test_index_types_are_buffer_sizes(stream_cls: type) -> None:
    class Idx:
        def __index__(self) -> int:
            return 7

    assert stream_cls(Idx()).buffer_size == 7
    assert stream_cls(2**31).buffer_size == 2**31
    assert stream_cls(-(2**80)).buffer_size == 100  # <= 0 means the default


def test_bad_policy_changes_nothing(stream_cls: type, filled: Any) -> None:
    @FUZZ
    @given(bad_policies, st.sampled_from([BLOCK, DROP]))
    def check(policy: Any, start: fe.BackpressurePolicy) -> None:
        TRIED["bad-policy"] += 1
        with pytest.raises((TypeError, ValueError)):
            stream_cls(4, policy)
        s = filled(start)
        before = snapshot(s)
        with pytest.raises((TypeError, ValueError)):
            s.policy = policy
        with pytest.raises((TypeError, ValueError)):
            s.set_backpressure_policy(policy)
        assert snapshot(s) == before

    check()


def test_bad_timeout_changes_nothing(stream_cls: type, filled: Any) -> None:
    s = filled()

    @FUZZ
    @given(bad_timeouts)
    def check(timeout: Any) -> None:
        TRIED["bad-timeout"] += 1
        before = snapshot(s)
        calls = [
            lambda: s.send(fe.text_delta_event("x"), timeout=timeout),
            lambda: s.send_many([fe.text_delta_event("x")], timeout=timeout),
            lambda: s.receive(timeout=timeout),
            lambda: s.receive_many(5, timeout=timeout),
            lambda: asyncio.run(s.asend(fe.text_delta_event("x"), timeout=timeout)),
            lambda: asyncio.run(s.areceive(timeout=timeout)),
            lambda: asyncio.run(s.asend_many([fe.text_delta_event("x")], timeout=timeout)),
            lambda: asyncio.run(s.areceive_many(5, timeout=timeout)),
        ]
        for call in calls:
            with pytest.raises((TypeError, ValueError)):
                call()
            assert snapshot(s) == before

    check()


@pytest.mark.parametrize("bad", ["1", 1.5, None, True, 0, -1, [1]])
def test_bad_max_items_changes_nothing(stream_cls: type, filled: Any, bad: Any) -> None:
    s = filled()
    before = snapshot(s)
    with pytest.raises((TypeError, ValueError)):
        s.receive_many(bad, timeout=0)
    with pytest.raises((TypeError, ValueError)):
        asyncio.run(s.areceive_many(bad, timeout=0))
    assert snapshot(s) == before


def test_bad_stream_id(stream_cls: type) -> None:
    for bad in (1, b"x", ["x"]):
        with pytest.raises(TypeError):
            stream_cls(4, stream_id=bad)


# -- huge buffer sizes: memory follows use -----------------------------------------------------


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="Linux /proc needed")
@pytest.mark.parametrize("size", [2**31 - 1, 2**31, 2**40, sys.maxsize // 16])
def test_huge_buffer_size_costs_what_is_used(stream_cls: type, size: int) -> None:
    base = rss_bytes()
    streams = [stream_cls(size) for _ in range(100)]
    assert all(s.buffer_size == size for s in streams)
    s = streams[0]
    evs = [fe.text_delta_event(str(i)) for i in range(5000)]
    s.send(evs[0])
    assert s.try_send(evs[1])
    s.send_many(evs[2:])
    assert len(s) == 5000
    assert s.receive() is evs[0]
    assert s.receive_many(10_000) == evs[1:]
    for t in streams[1:]:
        t.send(evs[0])
    grown = rss_bytes() - base
    # 100 streams and 5000 buffered pointers: a few MiB at most, nowhere near 2**31 * 8.
    assert grown < 64 * 1024 * 1024, f"RSS grew by {grown / 2**20:.0f} MiB"
    s.close()
    assert s.receive_many(5, timeout=0) == []


def test_buffer_size_above_the_bound_is_a_value_error(stream_cls: type) -> None:
    with pytest.raises(ValueError):
        stream_cls(sys.maxsize // 16 + 1)
    with pytest.raises(ValueError):
        stream_cls(2**200)
