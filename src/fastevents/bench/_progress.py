"""A tiny progress bar on stderr (no tqdm): redrawn in place on a terminal, otherwise
replaced by one line per finished scenario. It is only drawn between timed samples."""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, *, bar: bool, stream: TextIO | None = None,
                 quiet: bool = False) -> None:
        self.total = max(1, total)
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.bar = bar and not quiet
        self.quiet = quiet
        self.label = ""
        self.start = time.monotonic()
        self._last_draw = 0.0

    @staticmethod
    def wanted(stream: TextIO | None = None, disabled: bool = False) -> bool:
        """A bar only when stderr is a terminal and it was not turned off."""
        stream = stream if stream is not None else sys.stderr
        try:
            return not disabled and stream.isatty()
        except (AttributeError, ValueError):
            return False

    def update(self, label: str) -> None:
        """Say what runs now (before the work)."""
        self.label = label
        self._draw(force=True)

    def advance(self, n: int = 1) -> None:
        """Count finished work."""
        self.done = min(self.total, self.done + n)
        self._draw()

    def scenario_done(self, sid: str, title: str, seconds: float, note: str = "") -> None:
        if self.quiet:
            return
        line = f"{sid:<4} {title} ... done in {seconds:.1f} s{note}"
        if self.bar:
            self._clear()
        self.stream.write(line + "\n")
        self.stream.flush()
        if self.bar:
            self._draw(force=True)

    def close(self) -> None:
        if self.bar:
            self._clear()
            self.stream.flush()

    # -- drawing --------------------------------------------------------------------------

    def _clear(self) -> None:
        self.stream.write("\r" + " " * (self._width() - 1) + "\r")

    def _width(self) -> int:
        return max(40, shutil.get_terminal_size((80, 24)).columns)

    def _draw(self, force: bool = False) -> None:
        if not self.bar:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        width = self._width()
        frac = self.done / self.total
        cells = 24
        filled = int(frac * cells)
        head = f"{frac * 100:3.0f}% |{'#' * filled}{'-' * (cells - filled)}| "
        tail = f" {now - self.start:5.1f} s"
        room = width - 1 - len(head) - len(tail)
        label = self.label[:room] if room > 0 else ""
        self.stream.write("\r" + head + label.ljust(max(0, room)) + tail)
        self.stream.flush()
