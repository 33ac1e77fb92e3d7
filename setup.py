"""Build fastevents: the Cython core when it can be built, else a pure-Python package.

``FASTEVENTS_NO_EXTENSIONS=1`` at build time asks for the pure package. Without Cython or
without a working C compiler the build also falls back to it, and says so loudly instead
of failing: the pure twin has the same API and behaviour, only slower.

A pure (fallback) build contains no compiled module: a ``_stream_c`` left in the build
directory by an earlier, successful build is deleted, or it would ship in the wheel while
the banner promised the pure package (issue 9, item 12).
"""

from __future__ import annotations

import glob
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

# The compiled modules, by name inside the package.
COMPILED = ("_stream_c",)

PURE_REASON = None
if os.environ.get("FASTEVENTS_NO_EXTENSIONS"):
    PURE_REASON = "FASTEVENTS_NO_EXTENSIONS is set"
elif sys.implementation.name != "cpython":
    PURE_REASON = f"{sys.implementation.name} is not CPython"


def _banner(message: str) -> None:
    line = "*" * 78
    sys.stderr.write(f"\n{line}\n{message}\n{line}\n\n")


def _remove_compiled(package_dir: str) -> None:
    """Delete every compiled fastevents module (any ABI tag) from ``package_dir``."""
    for name in COMPILED:
        for suffix in (".so", ".pyd"):
            for path in glob.glob(os.path.join(package_dir, f"{name}*{suffix}")):
                os.remove(path)
                sys.stderr.write(f"fastevents: removed stale compiled module {path}\n")


class PureAwareBuildPy(build_py):
    """Copy the Python sources; in a pure build, also clear stale compiled modules."""

    def run(self) -> None:
        super().run()
        if not ext_modules:  # no extension will be built: none may be packaged
            _remove_compiled(os.path.join(self.build_lib, "fastevents"))


class OptionalBuildExt(build_ext):
    """Build the extension, but fall back to the pure package if compiling fails."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # distutils raises several unrelated error types
            self._fallback(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._fallback(exc)

    def _fallback(self, exc: Exception) -> None:
        if os.environ.get("FASTEVENTS_REQUIRE_EXTENSIONS"):
            raise exc
        # An earlier build's module must not ship (or stay importable, when in place).
        _remove_compiled(os.path.join(self.build_lib, "fastevents"))
        if self.inplace:
            build_py_cmd = self.get_finalized_command("build_py")
            _remove_compiled(build_py_cmd.get_package_dir("fastevents"))
        _banner(
            "fastevents: could not compile the Cython core "
            f"({type(exc).__name__}: {exc}).\n"
            "Installing the pure-Python fallback instead: same API, slower.\n"
            "fastevents.IMPLEMENTATION will be 'python'."
        )


def _extensions() -> list[Extension]:
    global PURE_REASON
    if PURE_REASON:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        PURE_REASON = "Cython is not installed"
        return []
    extra_compile_args = []
    if os.environ.get("FASTEVENTS_STRICT_BUILD") and os.name == "posix":
        extra_compile_args = ["-Wall", "-Wextra", "-Werror"]
    ext = Extension(
        "fastevents._stream_c",
        ["src/fastevents/_stream_c.pyx"],
        include_dirs=["src/fastevents"],
        extra_compile_args=extra_compile_args,
    )
    try:
        return cythonize(
            [ext],
            include_path=["src"],
            build_dir="build/cython",  # keep generated C out of src/ (and out of the sdist)
            compiler_directives={
                "language_level": 3,
                "embedsignature": True,
                "freethreading_compatible": True,
            },
        )
    except Exception as exc:  # e.g. a Cython older than 3.1 rejects freethreading_compatible
        if os.environ.get("FASTEVENTS_REQUIRE_EXTENSIONS"):
            raise
        PURE_REASON = f"cythonize failed ({type(exc).__name__}: {exc})"
        return []


ext_modules = _extensions()
if PURE_REASON:
    _banner(f"fastevents: building the pure-Python package only ({PURE_REASON}).")

setup(
    ext_modules=ext_modules,
    cmdclass={"build_ext": OptionalBuildExt, "build_py": PureAwareBuildPy},
)
