"""What the sdist and the wheel carry, and that the sdist alone installs the compiled core.

These tests build (``python -m build``: the sdist, then the wheel from the sdist) and
install into a fresh virtual environment, which takes a minute or two, so they run only
when asked: ``FASTEVENTS_PACKAGING_TESTS=1 python -m pytest tests/test_packaging.py``
(``nox -s build`` does that). With ``FASTEVENTS_DIST_DIR`` set they inspect the sdist and
wheel already built there instead of building their own.

They need ``build`` (``python -m pip install build``) but not fastevents itself, so they
also run with ``--noconftest`` where fastevents is not installed.
"""

from __future__ import annotations

import email.parser
import os
import re
import subprocess
import sys
import tarfile
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not os.environ.get("FASTEVENTS_PACKAGING_TESTS"),
    reason="builds and installs; set FASTEVENTS_PACKAGING_TESTS=1 to run",
)

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "src" / "fastevents"
VERSION = re.search(
    r'^__version__\s*=\s*"([^"]+)"', (PKG / "_version.py").read_text(encoding="utf-8"), re.M
)
assert VERSION is not None
VERSION_STR = VERSION.group(1)
SDIST_ROOT = f"fastevents_stream-{VERSION_STR}"

# Sources only the build needs: in the sdist, never in a wheel.
BUILD_SOURCES = ("_stream_c.pyx", "_core.pxd", "_sync.pxd", "_sync.h")
# .html only under src/: Cython's annotation output; examples/chat's page is a source file.
JUNK = re.compile(r"(__pycache__/|\.py[cod]$|\.so$|\.pyd$|\.c$|src/.*\.html$|\.o$)")


def _build_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEVENTS_")}
    env.update(extra)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: int = 900) -> str:
    out = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, (
        f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    )
    return out.stdout


@pytest.fixture(scope="module")
def dist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("FASTEVENTS_DIST_DIR")
    if given:
        return Path(given)
    try:
        import build  # noqa: F401
    except ImportError:
        pytest.fail("the packaging tests need `build`: python -m pip install build")
    out = tmp_path_factory.mktemp("dist")
    # The compiled wheel: a failed compile must fail here, not yield a pure wheel.
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
         cwd=out, env=_build_env(FASTEVENTS_REQUIRE_EXTENSIONS="1"))
    return out


@pytest.fixture(scope="module")
def sdist(dist_dir: Path) -> Path:
    found = sorted(dist_dir.glob(f"{SDIST_ROOT}.tar.gz"))
    assert len(found) == 1, sorted(p.name for p in dist_dir.iterdir())
    return found[0]


@pytest.fixture(scope="module")
def wheel(dist_dir: Path) -> Path:
    found = sorted(dist_dir.glob(f"fastevents_stream-{VERSION_STR}-*.whl"))
    assert len(found) == 1, sorted(p.name for p in dist_dir.iterdir())
    return found[0]


@pytest.fixture(scope="module")
def sdist_names(sdist: Path) -> set[str]:
    with tarfile.open(sdist) as tf:
        names = {m.name for m in tf.getmembers() if m.isfile()}
    assert all(n.startswith(SDIST_ROOT + "/") for n in names), names
    return {n[len(SDIST_ROOT) + 1:] for n in names}


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def _tree(base: Path, pattern: str) -> Iterator[str]:
    for path in sorted(base.glob(pattern)):
        rel = path.relative_to(ROOT).as_posix()
        if path.is_file() and not JUNK.search(rel):
            yield rel


# -- the sdist -----------------------------------------------------------------------------


def test_sdist_has_the_build_inputs(sdist_names: set[str]) -> None:
    for name in ("PKG-INFO", "pyproject.toml", "setup.py", "README.md", "LICENSE"):
        assert name in sdist_names
    for name in (*BUILD_SOURCES, "_stream_c.pyi", "py.typed", "__init__.py", "_version.py"):
        assert f"src/fastevents/{name}" in sdist_names


def test_sdist_has_every_source_test_and_bench_file(sdist_names: set[str]) -> None:
    wanted = set(_tree(PKG, "**/*.py")) | set(_tree(PKG, "**/*.pyi"))
    wanted |= set(_tree(ROOT / "tests", "**/*"))  # tests/data/ and tests/typing/ included
    wanted |= set(_tree(ROOT / "bench", "**/*"))
    wanted |= set(_tree(ROOT / "examples", "**/*"))  # the chat example and its test run
    missing = sorted(wanted - sdist_names)
    assert not missing, f"missing from the sdist: {missing}"


def test_sdist_has_no_generated_or_built_files(sdist_names: set[str]) -> None:
    junk = sorted(n for n in sdist_names if JUNK.search(n))
    assert not junk, f"generated files in the sdist: {junk}"
    assert not any(n.startswith(("build/", "dist/", ".nox/", ".git/")) for n in sdist_names)


def test_sdist_metadata(sdist: Path) -> None:
    with tarfile.open(sdist) as tf:
        member = tf.extractfile(f"{SDIST_ROOT}/PKG-INFO")
        assert member is not None
        meta = email.parser.BytesParser().parsebytes(member.read())
    assert meta["Name"] == "fastevents-stream"
    assert meta["Version"] == VERSION_STR


# -- the wheel -----------------------------------------------------------------------------


def test_wheel_is_compiled_for_this_python(wheel: Path) -> None:
    tag = sys.implementation.cache_tag.replace("cpython-", "cp")  # cp312
    assert f"-{tag}-" in wheel.name, wheel.name
    assert not wheel.name.endswith("-none-any.whl")


def test_wheel_carries_the_core_and_typing_not_the_sources(wheel_names: set[str]) -> None:
    ext = [n for n in wheel_names if re.fullmatch(r"fastevents/_stream_c\..*(\.so|\.pyd)", n)]
    assert len(ext) == 1, sorted(wheel_names)
    assert "fastevents/py.typed" in wheel_names
    assert "fastevents/_stream_c.pyi" in wheel_names
    expected_py = {p[len("src/"):] for p in _tree(PKG, "**/*.py")}
    assert expected_py <= wheel_names, sorted(expected_py - wheel_names)
    sources = sorted(n for n in wheel_names if n.endswith((".pyx", ".pxd", ".h", ".c")))
    assert not sources, f"build sources in the wheel: {sources}"
    allowed = ("fastevents/", f"fastevents_stream-{VERSION_STR}.dist-info/")
    stray = sorted(n for n in wheel_names if not n.startswith(allowed))
    assert not stray, f"files outside the package in the wheel: {stray}"
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in wheel_names)


def test_wheel_metadata(wheel: Path, wheel_names: set[str]) -> None:
    info = f"fastevents_stream-{VERSION_STR}.dist-info"
    with zipfile.ZipFile(wheel) as zf:
        meta = email.parser.BytesParser().parsebytes(zf.read(f"{info}/METADATA"))
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
    assert meta["Name"] == "fastevents-stream"
    assert meta["Version"] == VERSION_STR
    assert meta["Requires-Python"] == ">=3.10"
    assert meta["License-Expression"] == "MIT"
    assert set(meta.get_all("Provides-Extra") or []) >= {"test", "bench", "plot"}
    assert "Typing :: Typed" in (meta.get_all("Classifier") or [])
    assert f"{info}/licenses/LICENSE" in wheel_names
    assert "fastevents-bench = fastevents.bench:main" in entry_points


# -- installing --------------------------------------------------------------------------


def _fresh_venv(where: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(where)
    scripts = "Scripts" if os.name == "nt" else "bin"
    return where / scripts / ("python.exe" if os.name == "nt" else "python")


def test_sdist_alone_installs_the_compiled_core(sdist: Path, tmp_path: Path) -> None:
    """pip install <sdist> in an empty venv builds the core (build deps from the index)."""
    python = _fresh_venv(tmp_path / "venv")
    env = _build_env(FASTEVENTS_REQUIRE_EXTENSIONS="1")
    _run([str(python), "-m", "pip", "install", str(sdist)], cwd=tmp_path, env=env)
    probe = (
        "import fastevents as fe, pathlib;"
        "assert fe.IMPLEMENTATION == 'cython', fe.EXTENSION_IMPORT_ERROR;"
        "pkg = pathlib.Path(fe.__file__).parent;"
        "assert (pkg / 'py.typed').is_file() and (pkg / '_stream_c.pyi').is_file();"
        "assert not list(pkg.glob('*.pyx')) and not list(pkg.glob('*.c'));"
        "print(fe.__version__, fe.IMPLEMENTATION)"
    )
    out = _run([str(python), "-c", probe], cwd=tmp_path, env=_build_env())
    assert out.split() == [VERSION_STR, "cython"]
    # The sdist's own typed example program runs against what was installed.
    with tarfile.open(sdist) as tf:
        member = tf.extractfile(f"{SDIST_ROOT}/tests/typing/user_program.py")
        assert member is not None
        program = tmp_path / "user_program.py"
        program.write_bytes(member.read())
    out = _run([str(python), str(program)], cwd=tmp_path, env=_build_env())
    assert "(cython core)" in out


def test_pure_build_of_the_sdist_is_a_universal_wheel(sdist: Path, tmp_path: Path) -> None:
    """FASTEVENTS_NO_EXTENSIONS=1 (what PyPy gets, too): py3-none-any, no compiled file."""
    env = _build_env(FASTEVENTS_NO_EXTENSIONS="1")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(sdist)],
         cwd=tmp_path, env=env)
    wheels = sorted(tmp_path.glob("*.whl"))
    assert [w.name for w in wheels] == [f"fastevents_stream-{VERSION_STR}-py3-none-any.whl"]
    with zipfile.ZipFile(wheels[0]) as zf:
        names = zf.namelist()
    assert "fastevents/_stream_py.py" in names and "fastevents/py.typed" in names
    assert not [n for n in names if n.endswith((".so", ".pyd", ".pyx", ".pxd", ".h", ".c"))]
