"""Build fastevents: the Cython core when it can be built, else a pure-Python package.

``FASTEVENTS_NO_EXTENSIONS=1`` at build time asks for the pure package. Without Cython or
without a working C compiler the build also falls back to it, and says so loudly instead
of failing: the pure twin has the same API and behaviour, only slower.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

PURE_REASON = None
if os.environ.get("FASTEVENTS_NO_EXTENSIONS"):
    PURE_REASON = "FASTEVENTS_NO_EXTENSIONS is set"
elif sys.implementation.name != "cpython":
    PURE_REASON = f"{sys.implementation.name} is not CPython"


def _banner(message: str) -> None:
    line = "*" * 78
    sys.stderr.write(f"\n{line}\n{message}\n{line}\n\n")


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

    @staticmethod
    def _fallback(exc: Exception) -> None:
        if os.environ.get("FASTEVENTS_REQUIRE_EXTENSIONS"):
            raise exc
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

setup(ext_modules=ext_modules, cmdclass={"build_ext": OptionalBuildExt})
