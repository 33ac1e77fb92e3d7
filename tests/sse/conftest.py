"""Fixtures of the SSE tests: real uvicorn workers (one per twin), a Redis, a browser."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the 'sse' extra is not installed")
pytest.importorskip("uvicorn", reason="uvicorn (the 'test' extra) is not installed")
pytest.importorskip("httpx_sse", reason="httpx-sse (the 'sse' extra) is not installed")

from _harness import Worker, listening_socket

import fastevents as fe

REQUIRE_SERVICES = os.environ.get("FASTEVENTS_REQUIRE_SERVICES") == "1"


def need(found: bool, reason: str) -> None:
    """Skip with ``reason`` when a program is missing; fail if FASTEVENTS_REQUIRE_SERVICES=1."""
    if found:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (FASTEVENTS_REQUIRE_SERVICES=1 makes this mandatory)")
    pytest.skip(reason)


def _twin_params() -> list[Any]:
    params: list[Any] = [pytest.param("python", id="python")]
    reason = None
    if os.environ.get("FASTEVENTS_NO_EXTENSIONS"):
        reason = "FASTEVENTS_NO_EXTENSIONS is set"
    elif fe.CEventStream is None:
        reason = f"compiled core unavailable: {fe.EXTENSION_IMPORT_ERROR!r}"
    elif not hasattr(fe.CEventStream, "aentries"):
        # Only until the compiled twin has sequence numbers (issue 10, branch core-c).
        reason = "the compiled twin has no sequence numbers / aentries yet"
    params.append(pytest.param("cython", id="cython", marks=[pytest.mark.c_extension] + (
        [pytest.mark.skip(reason=reason)] if reason else [])))
    return params


@pytest.fixture(scope="module", params=_twin_params())
def worker(request: pytest.FixtureRequest) -> Iterator[Worker]:
    """A uvicorn worker (in-process streams of one twin, history 1000) for a test module."""
    sock = listening_socket()
    w = Worker(sock, env={"FE_SSE_TWIN": request.param, "FE_SSE_BACKEND": "memory"}).start()
    try:
        yield w
    finally:
        w.stop()
        sock.close()


@pytest.fixture
def fresh_worker() -> Iterator[Worker]:
    """A worker of its own, for tests that stop or kill it."""
    sock = listening_socket()
    w = Worker(sock, env={"FE_SSE_BACKEND": "memory", "FE_SSE_TWIN": "python"}).start()
    try:
        yield w
    finally:
        w.stop()
        sock.close()


@pytest.fixture
def chromium() -> tuple[str, str]:
    """Paths of Debian's headless Chromium and its driver."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    need(browser is not None and driver is not None,
         "Chromium and chromedriver not found (Debian: apt-get install chromium chromium-driver)")
    pytest.importorskip("selenium", reason="selenium (the 'test' extra) is not installed")
    assert browser is not None and driver is not None
    return browser, driver
