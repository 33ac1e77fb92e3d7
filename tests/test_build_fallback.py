"""Issue 9, item 12: a fallback build contains no compiled module.

An earlier, successful build leaves ``build/lib/fastevents/_stream_c*.so``; a later build
that falls back to the pure package (its compile failed, or ``FASTEVENTS_NO_EXTENSIONS``)
must not ship that stale module. Each test copies the project to a temporary directory,
plants a stale module in its build directory (its content does not matter to packaging),
runs ``setup.py build`` and checks what the build directory — the wheel's content — holds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUFFIX = sysconfig.get_config_var("EXT_SUFFIX") or ".so"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    if not (ROOT / "setup.py").exists():
        pytest.skip("needs the source tree (setup.py)")
    dst = tmp_path / "proj"
    dst.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
        shutil.copy2(ROOT / name, dst / name)
    shutil.copytree(
        ROOT / "src", dst / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd", "*.c", "*.egg-info"),
    )
    stale = dst / "build" / "lib" / "fastevents"
    stale.mkdir(parents=True)
    (stale / f"_stream_c{SUFFIX}").write_bytes(b"stale compiled module from an earlier build")
    (stale / "_stream_c.cpython-39-x86_64-linux-gnu.so").write_bytes(b"another ABI")
    return dst


def build(project: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("FASTEVENTS_")}
    full.update(env)
    out = subprocess.run(
        [sys.executable, "setup.py", "build", "--build-lib", "build/lib"],
        cwd=project, env=full, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def compiled_in(project: Path) -> list[str]:
    pkg = project / "build" / "lib" / "fastevents"
    return sorted(p.name for p in pkg.iterdir() if p.suffix in (".so", ".pyd"))


def test_pure_build_drops_a_stale_compiled_module(project: Path) -> None:
    out = build(project, FASTEVENTS_NO_EXTENSIONS="1")
    assert "pure-Python package only" in out.stderr
    assert compiled_in(project) == []
    assert (project / "build" / "lib" / "fastevents" / "_stream_py.py").exists()


def test_failed_compile_drops_a_stale_compiled_module(project: Path) -> None:
    # A compiler that always fails: the build falls back (or, without Cython, builds
    # the pure package from the start). Either way nothing compiled may remain.
    out = build(project, CC="false", CXX="false", LDSHARED="false")
    assert "pure-Python" in out.stderr
    assert compiled_in(project) == []
