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

from _harness import Worker, serving

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
    with serving({"FE_SSE_TWIN": request.param, "FE_SSE_BACKEND": "memory"}) as w:
        yield w


@pytest.fixture
def fresh_worker() -> Iterator[Worker]:
    """A worker of its own, for tests that stop or kill it."""
    with serving({"FE_SSE_BACKEND": "memory", "FE_SSE_TWIN": "python"}) as w:
        yield w


@pytest.fixture
def chromium() -> tuple[str, str]:
    """Paths of Debian's headless Chromium and its driver."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    need(browser is not None and driver is not None,
         "Chromium and chromedriver not found (Debian: apt-get install chromium chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        need(False, "selenium (the 'test' extra) is not installed")
    assert browser is not None and driver is not None
    return browser, driver


@pytest.fixture
def browser(chromium: tuple[str, str]) -> Iterator[object]:
    """Headless Chromium driven by Selenium through Debian's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = chromium
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    # The driver's path is given, so Selenium Manager never tries to download one.
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
