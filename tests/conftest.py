"""Shared fixtures: every stream test runs against both twins (propcache's conftest shape)."""

from __future__ import annotations

import os
from typing import Any

import pytest

import fastevents as fe

FORCED_PURE = bool(os.environ.get("FASTEVENTS_NO_EXTENSIONS"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-c-extensions",
        action="store_true",
        default=False,
        help="skip the tests of the compiled (Cython) twin",
    )


def _twins(config: pytest.Config) -> list[Any]:
    params: list[Any] = [pytest.param(fe.PyEventStream, id="python")]
    skip_reason = None
    if config.getoption("--no-c-extensions"):
        skip_reason = "--no-c-extensions given"
    elif FORCED_PURE:
        skip_reason = "FASTEVENTS_NO_EXTENSIONS is set"
    elif fe.CEventStream is None:
        skip_reason = f"compiled core unavailable: {fe.EXTENSION_IMPORT_ERROR!r}"
    params.append(
        pytest.param(
            fe.CEventStream,
            id="cython",
            marks=[pytest.mark.c_extension]
            + ([pytest.mark.skip(reason=skip_reason)] if skip_reason else []),
        )
    )
    return params


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # `stream_cls` is parametrized here rather than with a fixture so that the compiled
    # twin shows up as a *skipped* test (with the reason) when it is unavailable.
    if "stream_cls" in metafunc.fixturenames:
        metafunc.parametrize("stream_cls", _twins(metafunc.config))


@pytest.fixture
def manager_factory(stream_cls: type) -> Any:
    """Build a StreamManager whose streams are of the twin under test."""

    def make(*args: Any, **kwargs: Any) -> fe.StreamManager:
        return fe.StreamManager(*args, stream_class=stream_cls, **kwargs)

    return make
