"""The adapters are typed for their users: mypy --strict accepts pump/apump/convert with
fastevents' streams (either twin) and refuses what is not a stream."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import fastevents as fe

mypy_api = pytest.importorskip("mypy.api", reason="mypy is not installed")

PROGRAM = '''\
from collections.abc import AsyncIterator, Iterator
import fastevents as fe
from fastevents.providers import anthropic, openai

def sync(raw: Iterator[object]) -> int:
    events: list[fe.Event] = list(anthropic.convert(raw))
    stream: fe.EventStream = fe.EventStream(4)
    assert fe.CEventStream is not None
    return anthropic.pump(raw, stream) + openai.pump(raw, fe.CEventStream(4), close=False)

async def asynchronous(raw: AsyncIterator[object]) -> int:
    first: fe.Event = await anext(openai.aconvert(raw))
    return await openai.apump(raw, fe.PyEventStream(4))

def wrong(raw: Iterator[object]) -> int:
    return anthropic.pump(raw, "not a stream")
'''


def test_mypy_strict_accepts_the_adapters_with_streams_only(tmp_path: Path) -> None:
    program = tmp_path / "program.py"
    program.write_text(PROGRAM, encoding="utf-8")
    out, err, _ = mypy_api.run([
        "--config-file", os.devnull, "--strict", "--follow-imports=silent",
        "--python-version", "3.11", "--cache-dir", str(tmp_path / "cache"), str(program),
    ])
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 1, out + err
    assert "program.py:16: error: Argument 2" in errors[0], errors
    assert 'expected "Sink"' in errors[0], errors
    assert fe.Event  # the program imports the package under test
