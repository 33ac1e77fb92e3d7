"""``fastevents-bench --sse``: ``EventStreamResponse`` against sse-starlette over a queue.

The same app written twice, served by the same uvicorn, same run:

- *fastevents*: a producer task ``asend``s into an ``fe.EventStream``; the route returns
  ``EventStreamResponse(stream)`` (ids ``<instance>:<seq>``, resume, disconnect handling);
- *sse-starlette*: a producer task ``put``s into an ``asyncio.Queue``; the route returns
  ``EventSourceResponse`` over a generator that ``get``s from it and yields
  ``ServerSentEvent(data=event.to_json(), event="TextDelta", id=str(i))`` -- the usual
  hand-made glue (no resume).

Two measurements, each against a fresh server process per implementation:

1. events/s that one response delivers to one client (a burst of ``TextDelta`` events,
   timed from the request to the end of the body; the client only counts messages);
2. per-client cost of 1 000 concurrent idle clients: the server's RSS growth per client,
   and its CPU at idle (pings every second) per client.

Needs uvicorn and sse-starlette (``pip install "fastevents-stream[sse]" uvicorn
sse-starlette``). The server runs as ``python -m fastevents.bench._sse serve FD``.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

KINDS = {"fe": "fastevents EventStreamResponse", "ss": "sse-starlette over asyncio.Queue"}


# -- the server (runs in its own process) ----------------------------------------------------


def _app() -> Any:
    from sse_starlette import EventSourceResponse, ServerSentEvent
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    import fastevents as fe
    from fastevents.sse import EventStreamResponse

    stream_cls = _stream_class()
    tasks: set[asyncio.Task[None]] = set()

    def spawn(coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def fe_burst(request: Request) -> Response:
        n = int(request.query_params["n"])
        stream = stream_cls(buffer_size=1000)

        async def produce() -> None:
            with stream:
                for i in range(n):
                    await stream.asend(fe.text_delta_event(f"token {i} "))

        spawn(produce())
        return EventStreamResponse(stream)

    async def ss_burst(request: Request) -> Response:
        n = int(request.query_params["n"])
        queue: asyncio.Queue[fe.Event | None] = asyncio.Queue(maxsize=1000)

        async def produce() -> None:
            for i in range(n):
                await queue.put(fe.text_delta_event(f"token {i} "))
            await queue.put(None)

        async def messages() -> Any:
            i = 0
            while (event := await queue.get()) is not None:
                i += 1
                yield ServerSentEvent(data=event.to_json(), event=str(event.type), id=str(i))

        spawn(produce())
        return EventSourceResponse(messages())

    async def fe_idle(request: Request) -> Response:
        return EventStreamResponse(stream_cls(), ping=float(request.query_params["ping"]))

    async def ss_idle(request: Request) -> Response:
        queue: asyncio.Queue[fe.Event] = asyncio.Queue(maxsize=1000)

        async def messages() -> Any:
            while True:
                event = await queue.get()
                yield ServerSentEvent(data=event.to_json(), event=str(event.type))

        return EventSourceResponse(messages(), ping=float(request.query_params["ping"]))

    async def health(request: Request) -> Response:
        return Response("ok")

    return Starlette(routes=[
        Route("/fe/burst", fe_burst), Route("/ss/burst", ss_burst),
        Route("/fe/idle", fe_idle), Route("/ss/idle", ss_idle), Route("/health", health),
    ])


def _stream_class() -> Any:
    import fastevents as fe

    # Until the compiled twin has sequence numbers (issue 10), the pure one serves SSE.
    return fe.EventStream if hasattr(fe.EventStream, "aentries") else fe.PyEventStream


def _serve(fd: int) -> None:
    import uvicorn

    _raise_nofile()
    sock = socket.socket(fileno=fd)
    config = uvicorn.Config(_app(), log_level="error", access_log=False, lifespan="off",
                            backlog=2048, timeout_graceful_shutdown=5)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass


# -- the measuring side ------------------------------------------------------------------------


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 8192) if hard != resource.RLIM_INFINITY else 8192
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


@contextmanager
def _server() -> Iterator[tuple[int, int]]:
    """A fresh uvicorn process; yields (pid, port)."""
    import httpx

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastevents.bench._sse", "serve", str(sock.fileno())],
        pass_fds=(sock.fileno(),), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).raise_for_status()
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the benchmark's uvicorn did not start") from None
                time.sleep(0.05)
        yield proc.pid, port
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        sock.close()


def _burst(port: int, kind: str, n: int) -> float:
    """Events/s of one response of ``n`` events to one client."""
    import httpx

    count = 0
    tail = b""
    started = time.perf_counter()
    with httpx.stream("GET", f"http://127.0.0.1:{port}/{kind}/burst", params={"n": n},
                      timeout=httpx.Timeout(60.0)) as r:
        r.raise_for_status()
        for chunk in r.iter_raw():
            buf = tail + chunk
            count += buf.count(b"data: ")
            tail = buf[-5:]  # too short to hold a whole "data: ": nothing counted twice
    elapsed = time.perf_counter() - started
    if count != n:
        raise RuntimeError(f"{kind}: {count} messages arrived, not {n}")
    return n / elapsed


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _hold(port: int, path: str, ready: asyncio.Event, gate: asyncio.Semaphore,
                opened: list[int], total: int) -> None:
    async with gate:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n"
                     "Accept: text/event-stream\r\n\r\n".encode())
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
    opened[0] += 1
    if opened[0] == total:
        ready.set()
    try:
        while await reader.read(65536):
            pass
    finally:
        writer.close()


async def _idle(port: int, pid: int, kind: str, clients: int, ping: float,
                window: float) -> tuple[float, float]:
    """(bytes of server RSS per client, CPU seconds per second per client) at idle."""
    base = _rss(pid)
    ready = asyncio.Event()
    gate = asyncio.Semaphore(100)  # connect in waves, within the listen backlog
    opened = [0]
    holders = [asyncio.ensure_future(
        _hold(port, f"/{kind}/idle?ping={ping}", ready, gate, opened, clients))
        for _ in range(clients)]
    try:
        await asyncio.wait_for(ready.wait(), 120)
        await asyncio.sleep(max(1.0, ping * 1.5))  # settle: every response has pinged
        grown = _rss(pid) - base
        cpu0, t0 = _cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(window)
        cpu = (_cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
    finally:
        for h in holders:
            h.cancel()
        await asyncio.gather(*holders, return_exceptions=True)
    return grown / clients, cpu / clients


def _check() -> str | None:
    for module, extra in (("uvicorn", "uvicorn"), ("sse_starlette", "sse-starlette"),
                          ("starlette", "starlette"), ("httpx", "httpx")):
        try:
            __import__(module)
        except ImportError:
            return f"{extra} is not installed (pip install \"fastevents-stream[sse]\" " \
                   "uvicorn sse-starlette)"
    return None


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "n/a"


def main(*, quick: bool = False, smoke: bool = False) -> int:
    missing = _check()
    if missing:
        sys.stderr.write(f"fastevents-bench --sse: {missing}\n")
        return 2
    _raise_nofile()
    import fastevents as fe

    n = 2_000 if smoke else 20_000 if quick else 100_000
    reps = 1 if smoke else 3 if quick else 5
    clients = 50 if smoke else 1000
    window = 1.0 if smoke else 5.0 if quick else 15.0
    ping = 1.0
    w = sys.stdout.write
    w(f"fastevents {fe.__version__}, streams: {_stream_class().__name__}; SSE over uvicorn "
      f"on 127.0.0.1; {os.cpu_count()} CPUs\n\n")
    rates: dict[str, float] = {}
    for kind in KINDS:
        with _server() as (_pid, port):
            _burst(port, kind, min(n, 2_000))  # warm-up
            samples = [_burst(port, kind, n) for _ in range(reps)]
        rates[kind] = statistics.median(samples)
    w(f"one response, one client: {n:,} TextDelta events (median of {reps})\n")
    for kind, label in KINDS.items():
        w(f"  {label:<36} {rates[kind]:>10,.0f} events/s\n")
    w(f"  ratio fastevents / sse-starlette     {rates['fe'] / rates['ss']:>10.2f}x\n\n")

    idle: dict[str, tuple[float, float]] = {}
    for kind in KINDS:
        with _server() as (pid, port):
            _burst(port, kind, 100)  # load the code paths before the baseline
            idle[kind] = asyncio.run(_idle(port, pid, kind, clients, ping, window))
    w(f"{clients:,} concurrent idle clients, a ping every {ping:g} s "
      f"(CPU over {window:g} s)\n")
    w(f"  {'':<36} {'memory/client':>14} {'CPU/client':>14}\n")
    for kind, label in KINDS.items():
        mem, cpu = idle[kind]
        w(f"  {label:<36} {mem / 1024:>11.1f} KiB {cpu * 1e6:>9.1f} us/s\n")
    fe_mem, fe_cpu = idle["fe"]
    ss_mem, ss_cpu = idle["ss"]
    w(f"  {'ratio fastevents / sse-starlette':<36} {_ratio(fe_mem, ss_mem):>15} "
      f"{_ratio(fe_cpu, ss_cpu):>14}\n")
    w("  (lower is better: memory is the server's RSS growth, CPU its time per second)\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        _serve(int(sys.argv[2]))
    else:
        sys.exit(main(quick="--quick" in sys.argv, smoke="--smoke" in sys.argv))
