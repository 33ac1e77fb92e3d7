"""Which core is live, and the switch that forces the pure-Python twin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import fastevents as fe

FORCED_PURE = bool(os.environ.get("FASTEVENTS_NO_EXTENSIONS"))

PUBLIC_NAMES = """
__version__ IMPLEMENTATION PyEventStream CEventStream EventStream EventType Event
parse_event_type new_event text_delta_event content_start_event content_end_event
message_start_event message_stop_event error_event usage_event thinking_event
StreamError StreamClosed StreamNotFound StreamFull StreamExists InvalidEvent Cancelled
is_stream_closed is_stream_not_found is_stream_full is_invalid_event
BackpressurePolicy StreamManager StreamInfo
""".split()


def _package_parent() -> str:
    return str(Path(fe.__file__).resolve().parent.parent)


def test_normal_install_loads_the_compiled_core() -> None:
    """Fails when a normal install silently fell back to the pure-Python twin."""
    if FORCED_PURE:
        assert fe.IMPLEMENTATION == "python"
        assert fe.CEventStream is None
        return
    assert fe.IMPLEMENTATION == "cython", (
        f"the compiled core did not load: {fe.EXTENSION_IMPORT_ERROR!r}"
    )
    assert fe.CEventStream is not None
    assert fe.EXTENSION_IMPORT_ERROR is None


def test_event_stream_is_the_selected_twin() -> None:
    expected = fe.CEventStream if fe.IMPLEMENTATION == "cython" else fe.PyEventStream
    assert fe.EventStream is expected
    assert type(fe.StreamManager().create_stream("a")) is expected


def test_public_api_names() -> None:
    missing = [name for name in PUBLIC_NAMES if not hasattr(fe, name)]
    assert missing == []
    assert set(fe.__all__) >= set(PUBLIC_NAMES)
    assert isinstance(fe.__version__, str) and fe.__version__


@pytest.mark.parametrize("value", ["1", "yes"])
def test_env_var_forces_the_pure_twin(value: str) -> None:
    code = (
        "import fastevents as fe;"
        "assert fe.IMPLEMENTATION == 'python', fe.IMPLEMENTATION;"
        "assert fe.CEventStream is None;"
        "assert fe.EventStream is fe.PyEventStream;"
        "m = fe.StreamManager(); s = m.create_stream('x');"
        "assert type(s) is fe.PyEventStream;"
        "s.send(fe.text_delta_event('hi')); assert s.receive().data == {'text': 'hi'};"
        "print('ok')"
    )
    env = dict(os.environ, FASTEVENTS_NO_EXTENSIONS=value)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_package_parent(), env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_empty_env_var_does_not_force_the_pure_twin() -> None:
    if FORCED_PURE or fe.CEventStream is None:
        pytest.skip("the compiled core is not available in this run")
    env = dict(os.environ, FASTEVENTS_NO_EXTENSIONS="")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_package_parent(), env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", "import fastevents as fe; print(fe.IMPLEMENTATION)"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "cython"
