"""A real browser: headless Chromium's EventSource renders a stream whose connection is cut."""

from __future__ import annotations

import uuid

import httpx
from _harness import Worker, wait_until
from _proxy import CuttableProxy


def test_page_ends_with_exactly_the_full_text_after_a_cut(worker: Worker, browser: object) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    name = uuid.uuid4().hex[:12]
    httpx.post(f"{worker.url}/s/{name}/create", timeout=20).raise_for_status()
    host, port = worker.sock.getsockname()[:2]
    proxy = CuttableProxy((host, port))
    n = 200  # at 50 ms: 10 s, enough for two reconnects (EventSource waits ~3 s)
    expected = "".join(f"w{i} " for i in range(n))
    try:
        driver.get(f"{proxy.url}/page/{name}")  # type: ignore[attr-defined]
        out = driver.find_element(By.ID, "out")  # type: ignore[attr-defined]
        assert wait_until(lambda: driver.find_element(By.ID, "opens").text == "1", 20)  # type: ignore[attr-defined]
        httpx.post(f"{worker.url}/s/{name}/produce", params={"n": n, "interval": 0.05},
                   timeout=20).raise_for_status()
        # Cut the page's connection mid-stream, twice: each time once it has shown ten
        # more words on its current connection.
        for opened in (1, 2):
            assert wait_until(lambda o=opened: driver.find_element(  # type: ignore[attr-defined]
                By.ID, "opens").text == str(o), 30)
            words = len(out.text.split())
            assert wait_until(lambda w=words: len(out.text.split()) >= w + 10, 30), out.text
            assert "w199" not in out.text, "the stream ended before the cut"
            assert proxy.cut() >= 1
        assert wait_until(lambda: driver.title == "done", 60), out.text  # type: ignore[attr-defined]
        text = driver.execute_script(  # type: ignore[attr-defined]
            "return document.getElementById('out').textContent")
        opens = int(driver.find_element(By.ID, "opens").text)  # type: ignore[attr-defined]
    finally:
        proxy.close()
    assert text == expected  # nothing doubled, nothing missing, in order
    assert opens >= 3  # it really reconnected after each cut

