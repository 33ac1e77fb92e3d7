"""EventType and BackpressurePolicy: values, wire names, parsing."""

from __future__ import annotations

import enum
import importlib.util
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import fastevents as fe

WIRE = {
    fe.EventType.TEXT_DELTA: (0, "TextDelta"),
    fe.EventType.CONTENT_START: (1, "ContentStart"),
    fe.EventType.CONTENT_END: (2, "ContentEnd"),
    fe.EventType.MESSAGE_START: (3, "MessageStart"),
    fe.EventType.MESSAGE_STOP: (4, "MessageStop"),
    fe.EventType.ERROR: (5, "Error"),
    fe.EventType.USAGE: (6, "Usage"),
    fe.EventType.THINKING: (7, "Thinking"),
    fe.EventType.TOOL_INPUT_DELTA: (8, "ToolInputDelta"),  # the provider extension
}


def test_members_are_the_eight_go_types_and_the_extension() -> None:
    assert list(fe.EventType) == list(WIRE)
    assert issubclass(fe.EventType, enum.IntEnum)


@pytest.mark.parametrize("member", list(WIRE))
def test_value_and_wire_name(member: fe.EventType) -> None:
    value, name = WIRE[member]
    assert member == value and int(member) == value
    assert str(member) == name
    assert format(member, "") == name
    assert f"{member}" == name
    assert member.wire_name == name
    assert fe.EventType(value) is member


@pytest.mark.parametrize("member", list(WIRE))
def test_parse_round_trips(member: fe.EventType) -> None:
    name = WIRE[member][1]
    assert fe.EventType.parse(name) is member
    assert fe.parse_event_type(name) is member
    assert fe.parse_event_type(str(member)) is member


def test_format_specs() -> None:
    t = fe.EventType.USAGE
    assert f"{t:>8}" == "   Usage"
    assert f"{t:<7}|" == "Usage  |"
    # A numeric spec still formats the value: IntEnum users rely on that.
    assert f"{t:d}" == "6"
    assert f"{t:03d}" == "006"


def test_repr_names_the_member() -> None:
    assert repr(fe.EventType.ERROR) == "<EventType.ERROR: 5>"


@pytest.mark.parametrize(
    "name",
    ["", "textdelta", "TEXTDELTA", "Text Delta", " TextDelta", "TextDelta ", "TEXT_DELTA", "Nope"],
)
def test_parse_unknown_name_is_value_error(name: str) -> None:
    with pytest.raises(ValueError, match="unknown event type") as info:
        fe.EventType.parse(name)
    assert repr(name) in str(info.value)
    with pytest.raises(ValueError, match="unknown event type"):
        fe.parse_event_type(name)


@pytest.mark.parametrize(
    "bad", [None, 0, 1.0, b"TextDelta", ["TextDelta"], fe.EventType.TEXT_DELTA]
)
def test_parse_non_string_is_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="must be a str"):
        fe.parse_event_type(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fe.EventType.parse(bad)  # type: ignore[arg-type]


def test_parse_accepts_str_subclass() -> None:
    class Name(str):
        pass

    assert fe.parse_event_type(Name("Thinking")) is fe.EventType.THINKING


def test_members_pickle() -> None:
    for member in fe.EventType:
        assert pickle.loads(pickle.dumps(member)) is member


def test_backpressure_policy() -> None:
    assert issubclass(fe.BackpressurePolicy, enum.IntEnum)
    assert list(fe.BackpressurePolicy) == [fe.BackpressurePolicy.BLOCK, fe.BackpressurePolicy.DROP]
    assert fe.BackpressurePolicy.BLOCK == 0
    assert fe.BackpressurePolicy.DROP == 1
    assert fe.BackpressurePolicy(1) is fe.BackpressurePolicy.DROP
    with pytest.raises(ValueError):
        fe.BackpressurePolicy(2)


# -- typing for readers (issue 10) ----------------------------------------------------------

_TYPED_PROGRAM = '''\
from datetime import datetime
import fastevents as fe

class Mine(fe.Event):
    __slots__ = ()

ev = fe.text_delta_event("x")
when: datetime = ev.timestamp          # datetime, not Optional
ev.timestamp = None                    # still settable to None (an invalid event)
a: Mine = Mine.from_json(ev.to_json())
b: Mine = Mine.from_dict(ev.to_dict())
reveal_type(Mine.from_json(b""))
reveal_type(Mine.from_dict({}))
reveal_type(fe.Event.from_dict({}))
'''


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_timestamp_and_constructors_are_typed_for_readers(tmp_path: Path) -> None:
    program = tmp_path / "program.py"
    program.write_text(_TYPED_PROGRAM, encoding="utf-8")
    env = dict(os.environ, MYPYPATH=str(Path(fe.__file__).resolve().parent.parent),
               MYPY_CACHE_DIR=str(tmp_path / "cache"))
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", os.devnull, "--strict",
         "--follow-imports=silent", str(program)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    notes = [line for line in out.stdout.splitlines() if "note: Revealed type" in line]
    errors = [line for line in out.stdout.splitlines() if ": error:" in line]
    assert not errors, out.stdout + out.stderr
    assert len(notes) == 3, out.stdout
    assert '"program.Mine"' in notes[0] and '"program.Mine"' in notes[1], notes
    assert '"fastevents._event.Event"' in notes[2], notes
