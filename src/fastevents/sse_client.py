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


def _headers(last_id: str | None) -> dict[str, str]:
    return {} if last_id is None else {"Last-Event-ID": last_id}


def _retryable(exc: Exception) -> bool:
    return isinstance(exc, httpx.TransportError)


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
    by a reconnect with the last id (so nothing is missed or repeated); ``retries``
    failed attempts in a row end it with the last error. The server's ``204`` ends the
    iteration. ``HistoryLost`` is raised when the server can no longer replay what was
    missed; an ``httpx.HTTPStatusError`` for other refusals (``400``: a bad id).
    """
    own = client is None
    http = httpx.Client(timeout=httpx.Timeout(10.0, read=None)) if client is None else client
    last_id = last_event_id
    failures = 0
    delay = _FIRST_DELAY
    try:
        while True:
            try:
                with connect_sse(http, "GET", url, headers=_headers(last_id)) as source:
                    _check(source.response)
                    for sse in source.iter_sse():
                        entry = _entry(sse)
                        if entry is not None:
                            failures, delay = 0, _FIRST_DELAY
                            last_id = entry[0]
                            yield entry
            except _Done:
                return
            except Exception as exc:
                if not (reconnect and _retryable(exc)):
                    raise
                failures += 1
                if failures > retries:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, _MAX_DELAY)
                continue
            if not reconnect:
                return
            # A clean end: the stream finished (the reconnect gets 204) or the server is
            # restarting or handed the stream to a newer connection; ask again.
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
    http = (httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None))
            if client is None else client)
    last_id = last_event_id
    failures = 0
    delay = _FIRST_DELAY
    try:
        while True:
            try:
                async with aconnect_sse(http, "GET", url, headers=_headers(last_id)) as source:
                    _check(source.response)
                    async for sse in source.aiter_sse():
                        entry = _entry(sse)
                        if entry is not None:
                            failures, delay = 0, _FIRST_DELAY
                            last_id = entry[0]
                            yield entry
            except _Done:
                return
            except Exception as exc:
                if not (reconnect and _retryable(exc)):
                    raise
                failures += 1
                if failures > retries:
                    raise
                await anyio.sleep(delay)
                delay = min(delay * 2, _MAX_DELAY)
                continue
            if not reconnect:
                return
    finally:
        if own:
            await http.aclose()
