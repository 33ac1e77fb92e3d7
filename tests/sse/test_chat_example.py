"""examples/chat end to end: `python -m examples.chat --workers 2 --redis URL`, driven in
headless Chromium, its connection cut mid-answer; the page must end with exactly the
recorded answer (nothing doubled, nothing missing), thinking, tool call and usage shown."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _harness import wait_until
from _proxy import CuttableProxy

from _redis_fixtures import redis_server  # noqa: F401  (fixture)
from _redis_server import RedisServer

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "chat"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0

if not (EXAMPLE / "app.py").exists():  # an sdist or wheel test run without examples/
    pytest.skip("examples/chat is not in this checkout", allow_module_level=True)

sys.path.insert(0, str(REPO))
from examples.chat.producers import recorded_events, recorded_text  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ChatServer:
    """The example as its README starts it, in a process group of its own (stopped by PID)."""

    def __init__(self, *args: str, env: dict[str, str], port: int | None = None) -> None:
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "examples.chat", "--port", str(self.port), *args],
            cwd=str(REPO), env={**os.environ, **env}, stdout=self.log, stderr=self.log,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the chat example exited at start: {self.output()}")
            try:
                if httpx.get(self.url + "/info", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the chat example did not answer: {self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        # The uvicorn supervisor and its workers share the group: Ctrl-C first (graceful),
        # then SIGKILL for whatever is left.
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(STOP_TIMEOUT)
        self.log.close()


@pytest.fixture
def chat_server(redis_server: RedisServer) -> Iterator[ChatServer]:  # noqa: F811
    # 40 ms a token: ~7 s of answer, room for a cut and EventSource's ~3 s reconnect delay.
    server = ChatServer("--workers", "2", "--redis", redis_server.url,
                        env={"FASTEVENTS_CHAT_PACE": "0.04", "ANTHROPIC_API_KEY": "",
                             "OPENAI_API_KEY": ""})
    try:
        yield server
    finally:
        server.stop()



def _ask(browser: Any, url: str) -> Callable[[], dict[str, Any]]:
    """Open the page at ``url``, ask the default question; a reader of ``window.chat``."""
    from selenium.webdriver.common.by import By

    browser.get(url + "/")
    browser.find_element(By.ID, "send").click()

    def state() -> dict[str, Any]:
        return browser.execute_script("return window.chat")  # type: ignore[no-any-return]

    return state


def test_the_page_shows_exactly_the_recorded_answer_across_a_reconnect(
        chat_server: ChatServer, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    info = httpx.get(chat_server.url + "/info", timeout=10).json()
    assert info == {"provider": "replay", "redis": True, "pid": info["pid"]}
    expected = recorded_text()
    proxy = CuttableProxy(("127.0.0.1", chat_server.port))
    try:
        state = _ask(browser, proxy.url)
        # Mid-answer: some text shown, the answer not finished. Then the network drops.
        assert wait_until(lambda: len(state()["text"]) >= 40, 60), chat_server.output()
        assert not state()["done"], "the answer ended before the cut"
        assert proxy.cut() >= 1
        assert wait_until(lambda: state()["done"], 90), (state(), chat_server.output())
        final = state()
        page_text = browser.execute_script(
            "return [...document.querySelectorAll('#answer .text')]"
            ".map(e => e.textContent).join('')")
        thinking = browser.execute_script(
            "return document.querySelector('#answer .thinking').textContent")
        tool_args = browser.execute_script(
            "return document.querySelector('#answer .tool .args').textContent")
        usage = browser.find_element(By.ID, "usage").text
        status = browser.find_element(By.ID, "status").text
    finally:
        proxy.close()
    assert final["error"] is None, final
    assert final["opens"] >= 2, "the page never reconnected"
    # Exactly the recorded answer: a resume that doubled or skipped an event shows here.
    assert final["text"] == expected
    assert page_text == expected
    events = recorded_events()
    assert thinking == "".join(e.data["thinking"] for e in events if e.type == 7)
    args = "".join(e.data["partial_json"] for e in events if e.type == 8)
    assert tool_args == args and json.loads(tool_args)["title"]
    assert usage.startswith("412 prompt + 187 completion = 599 tokens")
    assert status == "done (tool_use)"


def test_several_workers_without_redis_are_refused_with_a_reason() -> None:
    done = subprocess.run([sys.executable, "-m", "examples.chat", "--workers", "2"],
                          cwd=str(REPO), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--redis" in done.stderr


def test_one_process_in_memory_serves_the_whole_answer() -> None:
    from fastevents.sse_client import iter_events

    server = ChatServer(env={"FASTEVENTS_CHAT_PACE": "0", "ANTHROPIC_API_KEY": "",
                             "OPENAI_API_KEY": ""})
    try:
        assert httpx.get(server.url + "/info", timeout=10).json()["redis"] is False
        session = httpx.post(server.url + "/chat", json={"prompt": "hi"},
                             timeout=10).json()["session"]
        got = [event for _, event in iter_events(f"{server.url}/chat/{session}/events")]
        assert httpx.post(server.url + "/chat", json={"prompt": ""},
                          timeout=10).status_code == 422
        assert httpx.get(server.url + "/chat/nope/events", timeout=10).status_code == 404
    finally:
        server.stop()
    assert [(e.type, e.data) for e in got] == [(e.type, e.data) for e in recorded_events()]


def test_the_page_says_so_when_a_restarted_one_process_server_lost_the_answer(
        browser: Any) -> None:
    """In-memory streams die with their process: the page must not wait forever.

    The restarted server answers the reconnect 404, EventSource gives up, and the page
    shows an error instead of "reconnecting…" for good.
    """
    from selenium.webdriver.common.by import By

    env = {"FASTEVENTS_CHAT_PACE": "0.04", "ANTHROPIC_API_KEY": "", "OPENAI_API_KEY": ""}
    server = ChatServer(env=env)
    try:
        state = _ask(browser, server.url)
        assert wait_until(lambda: len(state()["text"]) >= 20, 60), server.output()
        server.stop()
        server = ChatServer(env=env, port=server.port)  # same port, no sessions
        assert wait_until(lambda: state()["done"], 60), state()
        status = browser.find_element(By.ID, "status").text
    finally:
        server.stop()
    assert state()["error"] == "closed"
    assert status == "error: the answer ended before it was complete"


def test_ctrl_c_ends_open_answers_cleanly_with_two_workers(redis_server: RedisServer) -> None:  # noqa: F811
    """Ctrl-C on `--workers 2 --redis`: open responses end cleanly, the server exits.

    uvicorn's graceful timeout (5 s here) would also end them, but by cutting the
    connection: a clean end is what makes browsers resume against the next server.
    """
    server = ChatServer("--workers", "2", "--redis", redis_server.url,
                        env={"FASTEVENTS_CHAT_PACE": "0.5", "ANTHROPIC_API_KEY": "",
                             "OPENAI_API_KEY": ""})
    try:
        session = httpx.post(server.url + "/chat", json={"prompt": "hi"},
                             timeout=10).json()["session"]
        with httpx.stream("GET", f"{server.url}/chat/{session}/events",
                          timeout=30) as response:
            lines = response.iter_lines()
            assert next(lines).startswith("id: ")
            started = time.monotonic()
            os.killpg(server.proc.pid, signal.SIGINT)
            list(lines)  # a cut connection would raise here
            ended = time.monotonic() - started
        assert server.proc.wait(STOP_TIMEOUT) == 0, server.output()
    finally:
        server.stop()
    # Real figure: ~0.25 s (the watcher looks four times a second); the bound is for CI.
    assert ended < 4.0, f"the answer's response took {ended:.2f} s to end"
