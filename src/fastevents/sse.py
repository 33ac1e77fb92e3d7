"""Server-sent events: any ``fe.Stream`` to a browser, with resume.

``pip install "fastevents-stream[sse]"``.

``encode(event, id)`` is one SSE message. ``EventStreamResponse(stream)`` is a Starlette
(and so FastAPI) response that writes ``stream.aentries(after)`` as SSE messages whose
ids name the stream instance and the sequence number (``<instance_id>:<seq>``), so an
``EventSource`` that reconnects with ``Last-Event-ID`` resumes exactly where it stopped:
the stream replays what it still keeps, then goes live. The resume logic is the stream's;
this module is the ASGI plumbing around it.

What it takes from the ecosystem, and what it adds (see sse-starlette's and FastAPI's
SSE support, and their users' issue trackers):

- Starlette's ``StreamingResponse`` gives the headers (media type + charset),
  ``stream_response`` (start, body chunks, the final empty chunk) and
  ``listen_for_disconnect``.
- Starlette listens for ``http.disconnect`` only when the server speaks ASGI < 2.4; on
  2.4 it relies on ``send`` raising. A response waiting for the next event never sends,
  so it would never learn that its client left and would go on *receiving* events that
  nobody reads (the "undetected disconnect"). This response always listens, like
  sse-starlette does, and cancels its read within one event-loop turn of the message.
- Keep-alive comments come from a separate task that writes only when nothing else was
  written for ``ping`` seconds (sse-starlette's ping task; FastAPI's keep-alive
  inserter), so the read of the stream is never cancelled by a timer.
- uvicorn waits, on Ctrl-C or ``--reload``, for every open response before it shuts
  down: an endless SSE response hangs it (sse-starlette #124, #128). Like sse-starlette,
  the response finds uvicorn's ``Server`` through its signal handler and watches its
  ``should_exit``; unlike it, nothing is monkey-patched at import. Open responses then
  end cleanly, so browsers reconnect (and resume) against the next worker.
- A ``HEAD`` request gets the headers and no body: it must not consume events
  (sse-starlette #218).
- Neither a ready event nor uvicorn's ``send`` yields to the event loop, so the write
  loop gives it a turn every few events: a producer faster than the socket (a thread)
  would otherwise hold the loop, and a departed client would go unnoticed while its
  response kept receiving into a dead socket.
- A stream backend that cannot be reached (``RedisUnavailable`` is a ``ConnectionError``)
  ends the body cleanly with a ``retry:`` hint, or is answered so before the first event:
  any status but 200, or a reset connection followed by one, makes an ``EventSource``
  give up for good.
- In one process one response reads a stream at a time: a newer response for the same
  stream instance (a browser reconnecting before the old connection was noticed dead,
  e.g. after a network cut) stops the older one before it reads anything, so the two
  never split the events between them. Across processes that cannot be done, so the
  response watches the sequence numbers: a gap (events another receiver took) is
  written from the stream's history before the next event.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import anyio
import anyio.lowlevel
import anyio.to_thread
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from ._errors import HistoryLost
from ._event import Event
from ._stream_abc import Stream
from ._types import EventType

__all__ = ["HISTORY_LOST", "EventStreamResponse", "encode", "format_id", "parse_id"]

#: ``error_type`` of the ``Error`` message that answers a resume from lost history.
HISTORY_LOST = "history_lost"

_NAMES = {t: str(t) for t in EventType}
_BAD_ID_CHARS = re.compile(r"[\r\n\0]")
# A sequence number: ASCII digits, bounded (a 64-bit counter has at most 20).
_SEQ = re.compile(r"[0-9]{1,20}")
_PING = b": ping\n"
# The answer while the stream's backend (Redis) cannot be reached: come back in 2 s. Any
# status but 200 would make an EventSource give up for good; a retry field and the end
# of the body make it reconnect (with its Last-Event-ID) once the backend may be back.
_RETRY_LATER = b"retry: 2000\n\n"
# How often the shutdown watcher looks at the server's exit flag.
_SHUTDOWN_POLL = 0.25
# How long a newer response waits for the older reader of its stream to stop.
_TAKEOVER_WAIT = 5.0
# Events written between two turns of the event loop at most. Neither a ready event nor
# uvicorn's ``send`` (which returns at once while the socket takes data, and silently
# once the client is gone) yields: without this, a response fed faster than it writes
# (a producer thread) would hold the loop -- no other request served, its client's
# disconnect never processed, events received into a dead socket for as long as the
# producer lasts. A turn every 16 events costs a few percent (fastevents-bench --sse).
_EVENTS_PER_TURN = 16


def encode(event: Event, id: str | None = None) -> bytes:
    """One SSE message: ``id:`` (when given), ``event: <wire type>``, ``data: <JSON>``."""
    if not isinstance(event, Event):
        raise TypeError(f"encode() needs an Event, not {type(event).__name__}")
    data = event.to_json()  # InvalidEvent for an invalid event
    name = _NAMES.get(event.type) or str(event.type)
    if id is None:
        return f"event: {name}\ndata: {data}\n\n".encode()
    if not isinstance(id, str):
        raise TypeError(f"an SSE id is a str, not {type(id).__name__}")
    if _BAD_ID_CHARS.search(id):
        # A line break would end the field early; a NUL makes browsers ignore the id.
        raise ValueError("an SSE id cannot contain CR, LF or NUL")
    return f"id: {id}\nevent: {name}\ndata: {data}\n\n".encode()


def format_id(instance_id: str, seq: int) -> str:
    """The SSE id of event ``seq`` of stream instance ``instance_id``."""
    return f"{instance_id}:{seq}"


def parse_id(value: str) -> tuple[str, int]:
    """``(instance_id, seq)`` from an SSE id; ``ValueError`` when it is not one of ours."""
    instance, sep, seq = value.rpartition(":")
    if not sep or not instance or not _SEQ.fullmatch(seq) or _BAD_ID_CHARS.search(instance):
        raise ValueError(f"not a fastevents SSE id: {value[:100]!r}")
    return instance, int(seq)


class _Unreadable(Exception):
    """The resume id cannot be used: the request is answered 400."""


@dataclass(frozen=True)
class _Plan:
    instance_id: str
    after: int | None  # None: live
    finished: bool  # closed, drained, nothing to replay: 204


def _client_id(scope: Scope, explicit: str | None) -> str | None:
    if explicit is not None:
        return explicit or None
    for name, value in scope.get("headers", ()):
        if name == b"last-event-id":
            try:
                text = bytes(value).decode("utf-8").strip()
            except UnicodeDecodeError:
                raise _Unreadable("Last-Event-ID is not UTF-8") from None
            return text or None  # an empty id means "none" (what EventSource sends)
    return None


def _plan(stream: Stream, client_id: str | None) -> _Plan:
    """Where to start; runs in a worker thread, as a Redis stream's state is a round trip."""
    wanted: tuple[str, int] | None = None
    if client_id is not None:
        try:
            wanted = parse_id(client_id)
        except ValueError as exc:
            raise _Unreadable(str(exc)) from None
    instance_id = stream.instance_id
    # Read in this order: once closed, len() only shrinks and last_seq is final, so
    # "closed, empty, nothing after `after`" means nothing will ever come.
    closed = stream.closed
    empty = closed and len(stream) == 0
    last = stream.last_seq
    after: int | None = None
    if wanted is not None:
        instance, seq = wanted
        if instance != instance_id:
            after = 0  # an older instance under the same name: this one from its start
        elif seq > last:
            # Not an event this stream ever numbered; skipping up to it would lose events.
            raise _Unreadable(f"Last-Event-ID {client_id!r} is ahead of the stream ({last})")
        else:
            after = seq
    finished = empty and (after is None or last <= after)
    return _Plan(instance_id, after, finished)


# -- one reader per stream instance, and the shutdown watcher (per thread / loop) ----------


class _Reader:
    """A running response, as seen by the takeover and the shutdown watcher."""

    __slots__ = ("cancel_scope", "done")

    def __init__(self, cancel_scope: anyio.CancelScope) -> None:
        self.cancel_scope = cancel_scope
        self.done = anyio.Event()  # set once it has stopped reading

    def stop(self) -> None:
        """End the response cleanly (a takeover, a shutdown): its client will resume."""
        self.cancel_scope.cancel()


class _Local(threading.local):
    # One event loop per thread: cancel scopes may only be cancelled from their own
    # thread, so the registry is per thread (sse-starlette #152 learnt the same).
    def __init__(self) -> None:
        self.readers: dict[str, _Reader] = {}
        self.open: set[_Reader] = set()
        self.watcher: asyncio.Task[None] | None = None


_local = _Local()


def _server_exiting() -> bool:
    """True once uvicorn (or a server like it) has been asked to shut down.

    uvicorn installs its bound method ``Server.handle_exit`` as the SIGINT/SIGTERM
    handler, and that sets ``should_exit``; reading it needs no patching.
    """
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            owner = getattr(signal.getsignal(sig), "__self__", None)
        except (ValueError, OSError):  # pragma: no cover - exotic platforms
            continue
        if owner is not None and getattr(owner, "should_exit", False) is True:
            return True
    return False


async def _watch_shutdown(local: _Local) -> None:
    try:
        while local.open:
            if _server_exiting():
                for reader in list(local.open):
                    reader.stop()
                return
            await asyncio.sleep(_SHUTDOWN_POLL)
    finally:
        local.watcher = None


def _ensure_watcher(local: _Local) -> None:
    # The watcher outlives the response that starts it, so it cannot live in that
    # response's task group: it is a plain asyncio task (uvicorn is asyncio-only), which
    # ends by itself once no response is open, so an idle process runs nothing.
    if local.watcher is not None:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # trio: no uvicorn to watch
        return
    local.watcher = loop.create_task(_watch_shutdown(local))


# -- the response ---------------------------------------------------------------------------


class EventStreamResponse(StreamingResponse):
    """Writes a stream as server-sent events, resuming from ``Last-Event-ID``.

    ``last_event_id`` overrides the request's ``Last-Event-ID`` header (e.g. an id a
    client passes in the query string). ``ping`` is the keep-alive interval in seconds
    (``None``: no pings). The response ends when the stream is closed and drained; a
    request for a stream that is closed, drained and has nothing to replay is answered
    ``204``, which tells an ``EventSource`` to stop reconnecting.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        stream: Stream,
        *,
        last_event_id: str | None = None,
        ping: float | None = 15.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not callable(getattr(stream, "aentries", None)):
            raise TypeError(f"EventStreamResponse needs a fastevents stream, not {stream!r}")
        if last_event_id is not None and not isinstance(last_event_id, str):
            raise TypeError(f"last_event_id must be a str or None, not {last_event_id!r}")
        if ping is not None:
            if isinstance(ping, bool) or not isinstance(ping, (int, float)):
                raise TypeError(f"ping must be a number of seconds or None, not {ping!r}")
            if not ping > 0 or ping == float("inf"):
                raise ValueError(f"ping must be a positive number of seconds, not {ping!r}")
        self.stream = stream
        self.last_event_id = last_event_id
        self.ping = None if ping is None else float(ping)
        all_headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
        all_headers.update(headers or {})
        # The body iterator is built per call (it needs the request's id); Starlette's
        # constructor sets the status, the media type with its charset and the headers.
        super().__init__((), headers=all_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await PlainTextResponse("server-sent events need HTTP", status_code=400)(
                scope, receive, send)
            return
        try:
            client_id = _client_id(scope, self.last_event_id)
            plan = await anyio.to_thread.run_sync(_plan, self.stream, client_id)
        except _Unreadable as exc:
            await PlainTextResponse(f"unreadable Last-Event-ID: {exc}", status_code=400)(
                scope, receive, send)
            return
        except ConnectionError:  # fastevents.redis.RedisUnavailable is one
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            await send({"type": "http.response.body", "body": _RETRY_LATER,
                        "more_body": False})
            return
        if plan.finished:
            await Response(status_code=204, headers={"cache-control": "no-cache"})(
                scope, receive, send)
            return
        if scope.get("method") == "HEAD":
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await self._run(plan, receive, send)

    async def _run(self, plan: _Plan, receive: Receive, send: Send) -> None:
        local = _local
        writer = _Writer(send)
        disconnected = False
        async with anyio.create_task_group() as tg:
            me = _Reader(tg.cancel_scope)
            try:
                older = local.readers.get(plan.instance_id)
                local.readers[plan.instance_id] = me
                local.open.add(me)
                _ensure_watcher(local)
                if older is not None:
                    older.stop()
                    with anyio.move_on_after(_TAKEOVER_WAIT):
                        await older.done.wait()

                async def listen() -> None:
                    nonlocal disconnected
                    await self.listen_for_disconnect(receive)
                    disconnected = True
                    tg.cancel_scope.cancel()

                tg.start_soon(listen)
                if self.ping is not None:
                    tg.start_soon(writer.keep_alive, self.ping)
                await writer.start(self.status_code, self.raw_headers)
                await self._write_entries(plan, writer)
                tg.cancel_scope.cancel()  # drained: stop the listener and the pings
            finally:
                local.open.discard(me)
                if local.readers.get(plan.instance_id) is me:
                    del local.readers[plan.instance_id]
                me.done.set()
        # Ended by the stream, a takeover or a shutdown: end the body properly, so the
        # client sees a complete response (an EventSource then reconnects and resumes).
        if not disconnected:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5), \
                    contextlib.suppress(OSError):  # the client left meanwhile
                await writer.finish()

    async def _write_entries(self, plan: _Plan, writer: _Writer) -> None:
        prefix = f"id: {plan.instance_id}:"
        stream = self.stream
        entries = stream.aentries(plan.after)
        last = plan.after  # the last number written (None: live, nothing written yet)
        unyielded = 0

        async def write(seq: int, event: Event) -> None:
            nonlocal last
            name = _NAMES.get(event.type) or str(event.type)
            await writer.write(
                f"{prefix}{seq}\nevent: {name}\ndata: {event.to_json()}\n\n".encode())
            last = seq

        async def fill(upto: int | None) -> None:
            # Another receiver took the events between `last` and `upto` (a stale
            # connection on another worker, a second tab): each event is received once,
            # but every received event is in history, so take them from there.
            assert last is not None
            gap = await anyio.to_thread.run_sync(stream.replay, last)
            for seq, event in gap:
                if upto is not None and seq >= upto:
                    break
                await write(seq, event)

        try:
            async for seq, event in entries:
                if last is not None:
                    if seq <= last:
                        continue  # already written from history (a gap filled earlier)
                    if seq > last + 1:
                        await fill(seq)
                await write(seq, event)
                unyielded += 1
                if unyielded >= _EVENTS_PER_TURN:
                    unyielded = 0
                    # A disconnect noticed in this turn cancels us here, before the next
                    # event is received.
                    await anyio.lowlevel.checkpoint()
            # Closed and drained; the last events may have gone to the other receiver.
            if last is not None and await anyio.to_thread.run_sync(
                    lambda: stream.last_seq) > last:
                await fill(None)
        except HistoryLost as exc:
            await writer.write(encode(_history_lost_event(plan, exc)))
        except ConnectionError:
            # The backend went away mid-stream (nothing was taken from it): end cleanly,
            # with a hint to come back, rather than reset the connection. (A server whose
            # send raises once the client is gone lands here too: nothing more to say.)
            with contextlib.suppress(OSError):
                await writer.write(_RETRY_LATER)
        finally:
            aclose = getattr(entries, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()


def _history_lost_event(plan: _Plan, exc: HistoryLost) -> Event:
    oldest = "nothing" if exc.oldest is None else f"events from {exc.oldest}"
    text = (f"history lost: the events after {plan.after} are no longer kept "
            f"(the stream keeps {oldest}); start again without Last-Event-ID")
    return Event(EventType.ERROR, {"error": text, "error_type": HISTORY_LOST})


class _Writer:
    """The response's one way to the socket: events and pings never interleave."""

    __slots__ = ("_last", "_lock", "_send", "_started")

    def __init__(self, send: Send) -> None:
        self._send = send
        # fast_acquire: an uncontended acquire does not yield to the event loop (a full
        # loop turn per event would halve the throughput); writes still yield in `send`.
        self._lock = anyio.Lock(fast_acquire=True)
        self._last = time.monotonic()
        self._started = False

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        async with self._lock:
            await self._send({"type": "http.response.start", "status": status,
                              "headers": headers})
            self._started = True
            self._last = time.monotonic()

    async def write(self, chunk: bytes) -> None:
        message: Message = {"type": "http.response.body", "body": chunk, "more_body": True}
        async with self._lock:
            await self._send(message)
            self._last = time.monotonic()

    async def keep_alive(self, every: float) -> None:
        # A comment line, with no blank line after it: a blank line would make some
        # parsers (httpx-sse keeps the last id) dispatch an empty message.
        while True:
            await anyio.sleep(max(0.0, self._last + every - time.monotonic()))
            if time.monotonic() - self._last >= every:
                async with self._lock:
                    if self._started:
                        await self._send({"type": "http.response.body", "body": _PING,
                                          "more_body": True})
                    self._last = time.monotonic()

    async def finish(self) -> None:
        async with self._lock:
            if self._started:
                await self._send({"type": "http.response.body", "body": b"",
                                  "more_body": False})

