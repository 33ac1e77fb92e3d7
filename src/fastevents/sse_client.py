"""Read a fastevents SSE response back into ``(id, Event)``, reconnecting with ``Last-Event-ID``.

For Python consumers of :class:`fastevents.sse.EventStreamResponse` (a terminal UI, a
test, another service). The HTTP and the SSE parsing are httpx's and httpx-sse's; this
module adds what an ``EventSource`` does in a browser: remember the last id, reconnect
after a dropped connection or a server restart, and stop when the server says there is
nothing more (``204``). ``pip install "fastevents-stream[sse]"``.

    for id, event in iter_events("http://127.0.0.1:8000/chat/42/events"):
        print(event.data.get("text", ""), end="", flush=True)
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx
from httpx_sse import ServerSentEvent, aconnect_sse, connect_sse

from ._errors import HistoryLost
from ._event import Event

__all__ = ["aiter_events", "iter_events"]

# Failures in a row (refused, reset, 5xx) before giving up; the delay doubles up to 5 s.
_RETRIES = 10
_FIRST_DELAY = 0.25
_MAX_DELAY = 5.0
# No read timeout: a stream may be idle between pings for as long as the server likes.
_TIMEOUT = httpx.Timeout(10.0, read=None)


class _Done(Exception):
    """The server answered 204: the stream has nothing more to give."""


def _check(response: httpx.Response) -> None:
    if response.status_code == 204:
        raise _Done
    if response.status_code >= 500:
        # A restarting or failing worker: worth another try.
        raise httpx.RemoteProtocolError(f"server answered {response.status_code}")
    response.raise_for_status()  # 4xx (400: an id it cannot read) is final


def _entry(sse: ServerSentEvent) -> tuple[str, Event] | None:
    if not sse.data:
        return None
    event = Event.from_json(sse.data)
    if sse.event == "Error" and event.data.get("error_type") == "history_lost":
        raise HistoryLost(str(event.data.get("error", "")), op="resume")
    return sse.id, event


class _Session:
    """What ``iter_events`` and ``aiter_events`` share: the last id and the back-off.

    The two differ only in how they connect and sleep; every decision is made here.
    """

    __slots__ = ("delay", "failures", "got", "last_id", "reconnect", "retries", "told_retry")

    def __init__(self, last_event_id: str | None, reconnect: bool, retries: int) -> None:
        self.last_id = last_event_id
        self.reconnect = reconnect
        self.retries = retries
        self.failures = 0
        self.delay = _FIRST_DELAY
        self.got = False  # whether the current connection delivered an event
        self.told_retry = False  # whether it only said "retry later" (backend down)

    def headers(self) -> dict[str, str]:
        self.got = self.told_retry = False
        return {} if self.last_id is None else {"Last-Event-ID": self.last_id}

    def entry(self, sse: ServerSentEvent) -> tuple[str, Event] | None:
        if sse.retry is not None and not sse.data:
            self.told_retry = True
        entry = _entry(sse)
        if entry is not None:
            self.got, self.failures, self.delay = True, 0, _FIRST_DELAY
            self.last_id = entry[0]
        return entry

    def _backoff(self) -> float | None:
        self.failures += 1
        if self.failures > self.retries:
            return None
        delay, self.delay = self.delay, min(self.delay * 2, _MAX_DELAY)
        return delay

    def after_error(self, exc: Exception) -> float:
        """Seconds to wait before the next attempt; re-raises ``exc`` when it is final."""
        if not (self.reconnect and isinstance(exc, httpx.TransportError)):
            raise exc
        delay = self._backoff()
        if delay is None:
            raise exc
        return delay

    def after_end(self) -> float | None:
        """The response ended cleanly: seconds to wait before asking again, or None: stop.

        The stream finished (the next request gets 204), the server is restarting, or
        it handed the stream to a newer connection: ask again -- at once after a
        connection that delivered events, else with the back-off (and quietly give up
        after ``retries`` empty ones).
        """
        if not self.reconnect:
            return None
        if self.got:
            return 0.0
        delay = self._backoff()
        if delay is None and self.told_retry:
            # Not the end of the stream: the server could not reach it (Redis down).
            raise httpx.RemoteProtocolError(
                "the server kept answering 'retry later': its stream backend is unavailable")
        return delay


def iter_events(
    url: str,
    *,
    client: httpx.Client | None = None,
    last_event_id: str | None = None,
    reconnect: bool = True,
    retries: int = _RETRIES,
) -> Iterator[tuple[str, Event]]:
    """Yield ``(id, event)`` from an SSE endpoint until the stream is finished.

    A dropped connection, a server restart or a clean end of the response is followed
    by a reconnect with the last id (so nothing is missed or repeated); after ``retries``
    failed attempts in a row it gives up: with the last error, or quietly when the server
    kept ending the response without an event. The server's ``204`` ends the
    iteration. ``HistoryLost`` is raised when the server can no longer replay what was
    missed; an ``httpx.HTTPStatusError`` for other refusals (``400``: a bad id).
    """
    own = client is None
    http = httpx.Client(timeout=_TIMEOUT) if client is None else client
    session = _Session(last_event_id, reconnect, retries)
    try:
        while True:
            try:
                with connect_sse(http, "GET", url, headers=session.headers()) as source:
                    _check(source.response)
                    for sse in source.iter_sse():
                        entry = session.entry(sse)
                        if entry is not None:
                            yield entry
                wait = session.after_end()
            except _Done:
                return
            except Exception as exc:
                wait = session.after_error(exc)
            if wait is None:
                return
            if wait:
                time.sleep(wait)
    finally:
        if own:
            http.close()


async def aiter_events(
    url: str,
    *,
    client: httpx.AsyncClient | None = None,
    last_event_id: str | None = None,
    reconnect: bool = True,
    retries: int = _RETRIES,
) -> AsyncIterator[tuple[str, Event]]:
    """:func:`iter_events` for ``async for`` (asyncio or trio, through anyio)."""
    own = client is None
    http = httpx.AsyncClient(timeout=_TIMEOUT) if client is None else client
    session = _Session(last_event_id, reconnect, retries)
    try:
        while True:
            try:
                async with aconnect_sse(http, "GET", url,
                                        headers=session.headers()) as source:
                    _check(source.response)
                    async for sse in source.aiter_sse():
                        entry = session.entry(sse)
                        if entry is not None:
                            yield entry
                wait = session.after_end()
            except _Done:
                return
            except Exception as exc:
                wait = session.after_error(exc)
            if wait is None:
                return
            if wait:
                await anyio.sleep(wait)
    finally:
        if own:
            await http.aclose()
