"""Developer sessions for fastevents: tests on every Python found, lint, bench, valgrind, build.

Run them with nox (``python -m pip install nox``):

    nox                     # lint, then tests
    nox -s tests            # every Python in PYTHONS that is installed: compiled + pure builds
    nox -s tests-3.12       # one Python only
    nox -s "tests-3.12(core='pure')"   # one Python, one build flavour
    nox -s tests -- -k manager -x   # arguments after -- go to pytest
    nox -s lint             # ruff + mypy --strict (src and the typed user program)
    nox -s bench            # python -m fastevents.bench --quick
    nox -s valgrind         # tools/valgrind.sh against a compiled install
    nox -s build            # python -m build, then check what the sdist and wheel carry
    nox -l                  # list the sessions

Finding the interpreters: nox looks for ``python3.X`` on PATH. Under pyenv only the global
version's shims resolve, so this file also puts ``$(pyenv root)/versions/3.X*/bin`` on PATH
(``PYENV_ROOT``, else ``pyenv root``, else ``~/.pyenv``). Set ``FASTEVENTS_NOX_PYTHONS=3.11,3.12``
to narrow the list. A Python that is not installed is skipped, not failed
(``nox.options.error_on_missing_interpreters`` is off; CI=true turns it on, as nox does).

Every session installs the package from this tree the way a user would (``pip install .``),
so the compiled core is built per Python. ``FASTEVENTS_REQUIRE_EXTENSIONS=1`` makes a failed
compile fatal in the compiled sessions instead of silently testing the pure fallback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nox
from nox.command import CommandFailed

ROOT = Path(__file__).resolve().parent
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
if os.environ.get("FASTEVENTS_NOX_PYTHONS"):
    PYTHONS = [v.strip() for v in os.environ["FASTEVENTS_NOX_PYTHONS"].split(",") if v.strip()]
LINT_PYTHON = "3.12"

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = bool(os.environ.get("CI"))

# Tests must import the installed package, never src/: pytest runs from the repo root
# (src layout keeps `fastevents` off sys.path) with the cache plugin off, so that concurrent
# sessions and engineers sharing this tree do not fight over .pytest_cache.
PYTEST = ("python", "-m", "pytest", "-p", "no:cacheprovider")


def _pyenv_root() -> Path | None:
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    exe = shutil.which("pyenv")
    if exe:
        try:
            out = subprocess.run([exe, "root"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            out = None
        if out is not None and out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip())
    home = Path.home() / ".pyenv"
    return home if home.is_dir() else None


def _expose_pyenv_pythons() -> None:
    """Put each wanted pyenv version's bin/ on PATH, so `python3.X` resolves for nox."""
    root = _pyenv_root()
    if root is None:
        return
    bins = []
    for version in [*PYTHONS, LINT_PYTHON]:
        # Newest patch release first: "3.12.10" sorts after "3.12.9" by its numeric parts.
        candidates = sorted(
            (root / "versions").glob(f"{version}.*"),
            key=lambda p: [int(x) if x.isdigit() else -1 for x in p.name.split(".")],
            reverse=True,
        )
        for cand in candidates:
            if (cand / "bin" / f"python{version}").exists():
                bins.append(str(cand / "bin"))
                break
    path = os.environ.get("PATH", "").split(os.pathsep)
    os.environ["PATH"] = os.pathsep.join(dict.fromkeys(bins + path))


_expose_pyenv_pythons()


def _install(session: nox.Session, extras: str, *, pure: bool) -> None:
    env = {"PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if pure:
        env["FASTEVENTS_NO_EXTENSIONS"] = "1"
    else:
        env["FASTEVENTS_REQUIRE_EXTENSIONS"] = "1"
    # --force-reinstall: a reused venv must get a fresh build of this tree, never keep an
    # older one of the same version (the dependencies come back from pip's cache).
    session.install("--force-reinstall", f".[{extras}]", env=env)


def _implementation(session: nox.Session, **env: str) -> str:
    out = session.run(
        "python", "-c", "import fastevents as fe; print(fe.IMPLEMENTATION)",
        silent=True, env=env,
    )
    return str(out).strip().splitlines()[-1]


@nox.session(python=PYTHONS)
@nox.parametrize("core", ["cython", "pure"])
def tests(session: nox.Session, core: str) -> None:
    """The suite on a compiled build (both twins), or on a pure one (FASTEVENTS_NO_EXTENSIONS=1)."""
    pure = core == "pure"
    _install(session, "test", pure=pure)
    session.install("mypy>=1.10")  # tests/test_typing.py: mypy --strict and stubtest
    run_env = {"FASTEVENTS_NO_EXTENSIONS": "1"} if pure else {}
    impl = _implementation(session, **run_env)
    expected = "python" if pure else "cython"
    if impl != expected:
        session.error(f"expected fastevents.IMPLEMENTATION == {expected!r}, got {impl!r}")
    session.run(*PYTEST, *session.posargs, env=run_env)


@nox.session(python=LINT_PYTHON)
def lint(session: nox.Session) -> None:
    """ruff over the tree; mypy --strict over src/ and over the typed user program."""
    # matplotlib: fastevents.bench's optional plotting is type-checked against its types.
    session.install("ruff~=0.17.0", "mypy>=1.10", "matplotlib")
    # Both run even when the first fails, so one session reports every problem.
    # mypy: [tool.mypy] in pyproject.toml, strict, over src/fastevents and tests/typing.
    failed = []
    for cmd in (("ruff", "check", "."), ("mypy",)):
        try:
            session.run(*cmd)
        except CommandFailed:
            failed.append(cmd[0])
    if failed:
        raise CommandFailed(f"{' and '.join(failed)} failed")  # reported as a failed session


@nox.session(python=LINT_PYTHON)
def bench(session: nox.Session) -> None:
    """The benchmark smoke run, on a compiled install."""
    _install(session, "bench", pure=False)
    session.run("python", "-m", "fastevents.bench", "--quick", *session.posargs)


@nox.session(python=LINT_PYTHON)
def valgrind(session: nox.Session) -> None:
    """tools/valgrind.sh (leak / invalid-access checks of the compiled core)."""
    if shutil.which("valgrind") is None:
        session.skip("valgrind is not installed")
    script = ROOT / "tools" / "valgrind.sh"
    if not script.exists():
        session.skip("tools/valgrind.sh does not exist yet")
    _install(session, "test", pure=False)
    # PYTHONPATH = this venv's site-packages: the script would otherwise prefer an in-place
    # build in src/ (possibly for another Python) over the compiled install made here.
    out = session.run("python", "-c", "import sysconfig; print(sysconfig.get_paths()['platlib'])",
                      silent=True)
    site_packages = str(out).strip().splitlines()[-1]
    session.run("bash", str(script), *session.posargs, external=True,
                env={"PYTHON": str(Path(session.bin) / "python"), "PYTHONPATH": site_packages})


@nox.session(python=LINT_PYTHON)
def build(session: nox.Session) -> None:
    """Build the sdist and the wheel into dist/, then check their contents and metadata.

    The wheel is built from the sdist (python -m build's default), so a file missing from
    the sdist breaks the wheel build. tests/test_packaging.py then inspects these very
    files (FASTEVENTS_DIST_DIR) and installs the sdist in a fresh venv.
    """
    session.install("build", "twine", "pytest")
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run("python", "-m", "build", "--outdir", str(dist),
                env={"FASTEVENTS_REQUIRE_EXTENSIONS": "1"})
    session.run("twine", "check", "--strict", *map(str, sorted(dist.iterdir())))
    # --noconftest: the packaging tests do not import fastevents, which is not installed here.
    session.run(*PYTEST, "--noconftest", "tests/test_packaging.py", "-v",
                env={"FASTEVENTS_PACKAGING_TESTS": "1", "FASTEVENTS_DIST_DIR": str(dist)})
