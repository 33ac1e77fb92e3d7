"""The README's "Streaming to a browser" FastAPI example runs as written under uvicorn."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from _harness import Worker, listening_socket
from _proxy import CuttableProxy

from fastevents.sse_client import iter_events

README = Path(__file__).resolve().parents[2] / "README.md"


def _example() -> str:
    if not README.exists():
        pytest.skip("needs the source tree (README.md)")
    text = README.read_text(encoding="utf-8")
    m = re.search(r"<!-- sse:example -->\s*```python\n(.*?)```", text, re.S)
    assert m, "README lost its 'sse:example' block"
    return m.group(1)


def test_readme_fastapi_example(tmp_path: Path) -> None:
    (tmp_path / "chat_app.py").write_text(_example(), encoding="utf-8")
    sock = listening_socket()
    w = Worker(sock, app="chat_app:app", env={"PYTHONPATH": str(tmp_path)})
    try:
        w.start()
        r = httpx.post(f"{w.url}/chats/42", params={"prompt": "one two three four"},
                       timeout=20)
        r.raise_for_status()
        url = w.url + r.json()["events"]
        host, port = sock.getsockname()[:2]
        proxy = CuttableProxy((host, port))
        try:
            got = []
            for entry in iter_events(proxy.url + r.json()["events"]):
                got.append(entry)
                if len(got) == 3:
                    proxy.cut()  # the resume works through the example's route too
        finally:
            proxy.close()
        text = "".join(e.data.get("text", "") for _, e in got)
        assert text == "You said: one two three four "
        assert [str(e.type) for _, e in got][0::len(got) - 1] == ["MessageStart", "MessageStop"]
        assert httpx.get(url, headers={"Last-Event-ID": got[-1][0]}, timeout=20).status_code == 204
        assert httpx.get(f"{w.url}/chats/nope/events", timeout=20).status_code == 404
    finally:
        w.stop()
        sock.close()
