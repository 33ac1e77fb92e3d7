"""Real uvicorn workers for the SSE tests: started on a loopback socket, bounded, stopped by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
SERVE = HERE / "_serve.py"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def wait_until(cond: Callable[[], object], timeout: float = 10.0, every: float = 0.02) -> bool:
    """Poll ``cond`` until it is true (``True``) or ``timeout`` seconds pass (``False``).

    The bounds the tests give are generous (CI: the suite three times on 2 busy cores);
    a hang still fails, a slow machine does not.
    """
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)


def listening_socket() -> socket.socket:
    """A TCP socket listening on 127.0.0.1, on a port the kernel picked."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


class Worker:
    """One uvicorn process serving ``app`` (``module:attr`` in tests/sse) on ``sock``."""

    def __init__(self, sock: socket.socket, app: str = "apps:app",
                 env: dict[str, str] | None = None) -> None:
        self.sock = sock
        self.app = app
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        # A file, not a pipe: a worker logging a lot must never block on a full pipe.
        self.log = tempfile.TemporaryFile()
        self._logged = ""
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"

    def start(self) -> Worker:
        assert self.proc is None or self.proc.poll() is not None
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVE), str(self.sock.fileno()), self.app],
            pass_fds=(self.sock.fileno(),), env=self.env, cwd=str(HERE),
            stdout=subprocess.DEVNULL, stderr=self.log,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"uvicorn exited at start ({self.proc.returncode}): {self.stderr()}")
            try:
                httpx.get(self.url + "/health", timeout=2.0)
                return self  # it answers HTTP (an app without /health says 404)
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("uvicorn did not answer HTTP in time")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def interrupt(self) -> None:
        """Ctrl-C: uvicorn's graceful shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)

    def wait(self, timeout: float) -> int | None:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL: the worker vanishes with its connections (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT)

    def stop(self) -> None:
        """Graceful stop, then SIGKILL if it does not go in time; closes the log."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            if self.wait(STOP_TIMEOUT) is None:
                self.kill()
        if not self.log.closed:
            self._logged = self.stderr()
            self.log.close()

    def stderr(self) -> str:
        """What the worker logged so far."""
        if self.log.closed:
            return self._logged
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


@contextmanager
def serving(env: dict[str, str], app: str = "apps:app") -> Iterator[Worker]:
    """A started worker on a socket of its own; stopped (by PID) and closed on exit."""
    sock = listening_socket()
    w = Worker(sock, app=app, env=env)
    try:
        yield w.start()
    finally:
        w.stop()
        sock.close()
