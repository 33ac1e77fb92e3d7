"""The package is typed for its users: py.typed, a stub for the compiled core, and a typed
program (tests/typing/user_program.py) that passes ``mypy --strict`` and runs.

mypy checks the very ``fastevents`` these tests import: the installed package (so the
shipped ``py.typed`` and ``_stream_c.pyi`` are what is checked), or a source tree put on
``sys.path`` by hand, which is then handed to mypy through MYPYPATH. Tests that need mypy
skip without it (it is not in the ``test`` extra; ``nox -s tests`` and ``nox -s lint``
install it).
"""

from __future__ import annotations

import importlib.util
import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import fastevents as fe

HERE = Path(__file__).resolve().parent
USER_PROGRAM = HERE / "typing" / "user_program.py"
PACKAGE_DIR = Path(fe.__file__).resolve().parent
HAVE_MYPY = importlib.util.find_spec("mypy") is not None
needs_mypy = pytest.mark.skipif(not HAVE_MYPY, reason="mypy is not installed")

# Names Cython adds to modules and classes (which of them varies with the Cython version),
# and which no stub needs to list.
STUBTEST_ALLOWLIST = """\
fastevents._stream_c.__test__
fastevents._stream_c.__reduce_cython__
fastevents._stream_c.__setstate_cython__
fastevents._stream_c.__pyx_.*
fastevents._stream_c._CWaiter.__reduce_cython__
fastevents._stream_c._CWaiter.__setstate_cython__
fastevents._stream_c.CEventStream.__reduce_cython__
fastevents._stream_c.CEventStream.__setstate_cython__
"""


def _site_dirs() -> set[Path]:
    dirs = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    dirs.update(site.getsitepackages())
    user = site.getusersitepackages()
    if isinstance(user, str):
        dirs.add(user)
    return {Path(d).resolve() for d in dirs}


def _mypy_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MYPYPATH", None)
    parent = PACKAGE_DIR.parent
    if parent not in _site_dirs():
        # Not an installed package (a source tree on sys.path): mypy does not read
        # PYTHONPATH, and refuses site-packages in MYPYPATH, so pass it only in this case.
        env["MYPYPATH"] = str(parent)
    env["MYPY_CACHE_DIR"] = str(tmp_path / "mypy-cache")
    return env


def _mypy(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable, "-m", "mypy",
        "--config-file", os.devnull,  # no repo config: the flags below are the contract
        "--strict",
        "--python-version", "3.10",  # the oldest Python we support
        *args,
    ]
    return subprocess.run(
        cmd, env=_mypy_env(tmp_path), capture_output=True, text=True, timeout=600
    )


def test_package_ships_typing_markers() -> None:
    assert (PACKAGE_DIR / "py.typed").is_file()
    assert (PACKAGE_DIR / "_stream_c.pyi").is_file()


@needs_mypy
def test_user_program_passes_mypy_strict(tmp_path: Path) -> None:
    # follow-imports=silent: errors inside fastevents are the lint session's business;
    # here only what a user's code sees of the public API counts.
    out = _mypy(tmp_path, "--follow-imports=silent", str(USER_PROGRAM))
    assert out.returncode == 0, f"mypy --strict failed:\n{out.stdout}\n{out.stderr}"
    assert "Success: no issues found" in out.stdout


@needs_mypy
def test_mypy_sees_public_types(tmp_path: Path) -> None:
    """A deliberate misuse is caught, so the program above is not passing vacuously."""
    bad = tmp_path / "bad_program.py"
    bad.write_text(
        "import fastevents as fe\n"
        "stream: fe.EventStream = fe.EventStream(4)\n"
        "n: str = stream.send_many([fe.text_delta_event('x')])\n"  # returns int
        "fe.text_delta_event(42)\n"  # wants str
        "ev: fe.Event = stream.try_receive()\n"  # Event | None
        "reveal_type(fe.StreamManager().get_or_create('a'))\n",
        encoding="utf-8",
    )
    out = _mypy(tmp_path, "--follow-imports=silent", str(bad))
    assert out.returncode == 1, out.stdout + out.stderr
    text = out.stdout
    assert 'bad_program.py:3: error: Incompatible types in assignment' in text, text
    assert "bad_program.py:4: error: Argument 1" in text, text
    assert "bad_program.py:5: error: Incompatible types in assignment" in text, text
    assert "tuple[" in text and "bool]" in text, text


@needs_mypy
@pytest.mark.c_extension
def test_stub_matches_compiled_module(tmp_path: Path) -> None:
    """mypy's stubtest: _stream_c.pyi agrees with the compiled module actually built."""
    if fe.CEventStream is None:
        why = ("FASTEVENTS_NO_EXTENSIONS is set" if os.environ.get("FASTEVENTS_NO_EXTENSIONS")
               else f"unavailable: {fe.EXTENSION_IMPORT_ERROR!r}")
        pytest.skip(f"compiled core not in use ({why})")
    allowlist = tmp_path / "allowlist.txt"
    allowlist.write_text(STUBTEST_ALLOWLIST, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "fastevents._stream_c",
         "--allowlist", str(allowlist), "--ignore-unused-allowlist"],
        env=_mypy_env(tmp_path), capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, f"stubtest failed:\n{out.stdout}\n{out.stderr}"


def test_user_program_runs() -> None:
    """The typed program is also a working one, on whichever core is live."""
    env = dict(os.environ)
    if PACKAGE_DIR.parent not in _site_dirs():
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(PACKAGE_DIR.parent), env.get("PYTHONPATH")])
        )
    out = subprocess.run(
        [sys.executable, str(USER_PROGRAM)], env=env, capture_output=True, text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"({fe.IMPLEMENTATION} core)" in out.stdout


@needs_mypy
def test_every_stream_is_a_fe_stream_for_mypy(tmp_path: Path) -> None:
    """Issue 10: ``fe.Stream`` accepts both twins (the compiled stub declares the base)
    and a manager's streams, and has the round-two API."""
    prog = tmp_path / "streams.py"
    prog.write_text(
        "import fastevents as fe\n"
        "def use(s: fe.Stream) -> int:\n"
        "    entries: list[tuple[int, fe.Event]] = s.replay(0)\n"
        "    return s.last_seq + s.history + s.dropped + len(s.instance_id) + len(entries)\n"
        "use(fe.PyEventStream(4))\n"
        "use(fe.EventStream(4, history=2))\n"
        "if fe.CEventStream is not None:\n"
        "    use(fe.CEventStream(4))\n"
        "use(fe.StreamManager(history=1).create_stream('a'))\n",
        encoding="utf-8",
    )
    out = _mypy(tmp_path, "--follow-imports=silent", str(prog))
    assert out.returncode == 0, f"mypy --strict failed:\n{out.stdout}\n{out.stderr}"
