"""The README's "Resuming a consumer" example runs as written, on both twins."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def example() -> str:
    if not README.exists():
        pytest.skip("needs the source tree (README.md)")
    text = README.read_text(encoding="utf-8")
    section = text.split("## Resuming a consumer", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no python block in the section"
    return match.group(1)


@pytest.mark.parametrize("pure", [True, False], ids=["python", "selected"])
def test_resume_example_runs(pure: bool) -> None:
    env = dict(os.environ)
    if pure:
        env["FASTEVENTS_NO_EXTENSIONS"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", example()], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0] == "5 token 5"
