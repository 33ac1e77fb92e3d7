"""A background call for tests: run something that may block in a daemon thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

JOIN = 10.0  # seconds a background call may take before the test calls it hung


class Bg:
    """Run a call in a daemon thread; ``join()`` returns its result or raises its error."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.result: Any = None
        self.exc: BaseException | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(fn, args, kwargs), daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[..., Any], args: Any, kwargs: Any) -> None:
        try:
            self.result = fn(*args, **kwargs)
        except BaseException as exc:
            self.exc = exc
        finally:
            self.done.set()

    @property
    def waiting(self) -> bool:
        return not self.done.is_set()

    def join(self, timeout: float = JOIN) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "background call did not finish"
        if self.exc is not None:
            raise self.exc
        return self.result

    def error(self, timeout: float = JOIN) -> BaseException:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "background call did not finish"
        assert self.exc is not None, f"expected an error, got {self.result!r}"
        return self.exc
