"""What every provider adapter shares: the driver loop, `pump`/`apump`, error events.

A provider module supplies one thing: a `Converter`, a small state machine that turns
each object the SDK yields into zero or more events (`feed`), says what the end of the
SDK stream adds (`finish`), and marks itself `done` when the provider reported an error
or a terminal event.  Everything else — iterating the SDK stream, turning an exception
the SDK raises into an ``Error`` event, sending into a stream, closing — is written once
here, for sync and async alike.
"""

from __future__ import annotations

import json
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Iterator,
)
from typing import Any, Protocol

from .._errors import StreamClosed
from .._event import Event, error_event, text_delta_event

__all__ = ["Adapter", "AsyncSink", "Converter", "ProviderEvent", "Sink", "TypedConverter",
           "citation_event", "dump", "error_from_exception"]

#: One object an SDK stream yields (a pydantic model of the SDK's own types).
ProviderEvent = Any


class Sink(Protocol):
    """What `pump` needs of a stream: every `fe.Stream` (both twins, Redis) has it."""

    @property
    def closed(self) -> bool: ...

    def send(self, event: Event, *, timeout: float | None = None) -> None: ...

    def close(self) -> None: ...


class AsyncSink(Protocol):
    """What `apump` needs of a stream."""

    @property
    def closed(self) -> bool: ...

    async def asend(self, event: Event, *, timeout: float | None = None) -> None: ...

    def close(self) -> None: ...


class Converter:
    """The state of one streamed response, fed the SDK's objects one by one."""

    #: Set once the provider has ended the response (an error it reported, or a
    #: terminal event): the driver stops reading and does not call `finish`.
    done = False

    def feed(self, item: ProviderEvent) -> list[Event]:
        """The events for one SDK object (often one, sometimes none or several)."""
        raise NotImplementedError

    def finish(self) -> list[Event]:
        """The events that the end of the SDK stream adds (open blocks, the stop)."""
        return []


class TypedConverter(Converter):
    """A converter for SDK objects that name their kind in ``type`` (Anthropic's events,
    the Responses API's): one handler per type, a set of types to skip, and the rest
    kept.

    A type without a handler is either in `skipped` (it repeats what another event said,
    or reports progress that a later event carries whole) or unknown to this module (a
    newer API than it was written for): those are kept, whole, and the terminal event
    carries them as ``unknown_events``, so nothing the provider sent is dropped.
    """

    skipped: frozenset[str] = frozenset()

    def __init__(self, handlers: dict[str, Callable[[Any], list[Event]]]) -> None:
        self._handlers = handlers
        self.unknown: list[Any] = []

    def feed(self, item: ProviderEvent) -> list[Event]:
        handler = self._handlers.get(item.type)
        if handler is not None:
            return handler(item)
        if item.type not in self.skipped:
            self.unknown.append(dump(item))
        return []

    def terminal(self, ev: Event) -> Event:
        """`ev` (the stop, or the error that ends the response), with what was kept."""
        if self.unknown:
            ev.data["unknown_events"] = self.unknown
        return ev


#: Builds the converter for a stream from its first object (OpenAI tells Chat
#: Completions from Responses by it); called with None for an empty stream.
MakeConverter = Callable[[ProviderEvent], Converter]


# -- values -----------------------------------------------------------------------------


def dump(obj: Any) -> Any:
    """An SDK object as JSON-ready Python (its wire field names, no ``None`` fields)."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [dump(x) for x in obj]
    if isinstance(obj, dict):
        return {k: dump(v) for k, v in obj.items() if v is not None}
    model_dump = getattr(obj, "model_dump", None)
    if model_dump is not None:  # pydantic 2
        return model_dump(mode="json", exclude_none=True, by_alias=True)
    as_json = getattr(obj, "json", None)
    if as_json is not None:  # pydantic 1 (both SDKs still support it)
        return json.loads(as_json(exclude_none=True, by_alias=True))
    return str(obj)


def citation_event(citation: Any, index: int) -> Event:
    """A citation (Anthropic) or annotation (Responses) of text block `index`: an empty
    ``TextDelta`` carrying it, which a reader that only concatenates text passes over."""
    ev = text_delta_event("", index=index)
    ev.data["citation"] = dump(citation)
    return ev


def error_from_exception(exc: BaseException) -> Event:
    """The ``Error`` event for an exception an SDK raised while streaming.

    Both SDKs raise an ``APIError`` subclass whose ``body`` is the provider's error
    object: Anthropic's ``{"type": "error", "error": {"type", "message"}}``, OpenAI's
    ``{"message", "type", "code", ...}``.  Anything else (a dropped connection) is
    named by its class.
    """
    body = getattr(exc, "body", None)
    outer: dict[str, Any] = {}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        outer = body  # Anthropic's envelope: its request_id, when given, is kept too
        body = body["error"]
    message = error_type = None
    if isinstance(body, dict):
        message = body.get("message")
        error_type = body.get("type") or body.get("code")
    if not isinstance(message, str) or not message:
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if not isinstance(error_type, str) or not error_type:
        error_type = type(exc).__name__
    ev = error_event(str(message), error_type=error_type)
    if isinstance(body, dict):
        # The rest of the provider's error object (OpenAI's code beside its type, the
        # param at fault, Anthropic's request_id, ...), under its own names.
        for key, value in (*body.items(), *outer.items()):
            if value is not None and value != error_type and key not in _ERROR_OWN_KEYS:
                ev.data[key] = dump(value)
    return ev


# Keys of a provider's error object that the Error event already carries.
_ERROR_OWN_KEYS = ("message", "type", "error", "error_type")


# -- the driver -------------------------------------------------------------------------


class _Run:
    """What the sync and async drivers share: the converter, made from the first object
    the SDK yields, and how the stream ends."""

    __slots__ = ("_make", "conv", "feed")

    def __init__(self, make: MakeConverter) -> None:
        self._make = make
        self.conv: Converter | None = None
        #: `Converter.feed` once the first object has made the converter
        self.feed: Callable[[ProviderEvent], list[Event]] = self._first

    def _first(self, item: ProviderEvent) -> list[Event]:
        conv = self.conv = self._make(item)
        self.feed = conv.feed
        return conv.feed(item)

    def finish(self) -> list[Event]:
        """The events the end of the SDK stream adds (none for an empty stream)."""
        return (self.conv or self._make(None)).finish()


# The two drivers differ only in how they iterate (next / await anext): only the SDK's
# own read is guarded, so an exception from the converter or the consumer is not
# mistaken for a provider error.


def _events(make: MakeConverter, sdk_stream: Iterable[ProviderEvent], reraise: bool
            ) -> Generator[Event, None, None]:
    run = _Run(make)
    it = iter(sdk_stream)
    while True:
        try:
            item = next(it)
        except StopIteration:
            yield from run.finish()
            return
        except Exception as exc:  # the SDK's: raised while it read or parsed the stream
            yield error_from_exception(exc)
            if reraise:
                raise
            return
        yield from run.feed(item)
        if run.conv.done:  # type: ignore[union-attr]  # the first feed made it
            return


async def _aevents(make: MakeConverter, sdk_stream: AsyncIterable[ProviderEvent],
                   reraise: bool) -> AsyncGenerator[Event, None]:
    run = _Run(make)
    it = aiter(sdk_stream)
    while True:
        try:
            item = await anext(it)
        except StopAsyncIteration:
            for ev in run.finish():
                yield ev
            return
        except Exception as exc:
            yield error_from_exception(exc)
            if reraise:
                raise
            return
        for ev in run.feed(item):
            yield ev
        if run.conv.done:  # type: ignore[union-attr]
            return


def _close_sdk_stream(sdk_stream: object) -> Any:
    # Stop reading from the provider: releases the HTTP connection (both SDKs' stream
    # objects, and the helpers' stream managers' streams, have close()).
    close = getattr(sdk_stream, "close", None)
    return close() if callable(close) else None


def _close_stream(stream: Sink | AsyncSink) -> None:
    try:
        if not stream.closed:
            stream.close()
    except StreamClosed:  # closed by someone else in between: the same outcome
        pass


class Adapter:
    """The four entry points of a provider module, written once for every provider.

    A provider module makes one ``Adapter`` from its converter factory and exports its
    bound methods: ``convert = _adapter.convert``, and so on.
    """

    __slots__ = ("_make",)

    def __init__(self, make: MakeConverter) -> None:
        self._make = make

    def convert(self, sdk_stream: Iterable[ProviderEvent]) -> Iterator[Event]:
        """The events of an SDK stream, in order.

        After an exception the SDK raises mid-stream (an error the provider sent, a
        dropped connection) it yields ``Error {error, error_type}`` and ends; so it
        does after an error the provider reports as an event.
        """
        return _events(self._make, sdk_stream, reraise=False)

    def aconvert(self, sdk_stream: AsyncIterable[ProviderEvent]) -> AsyncIterator[Event]:
        """`convert` for the async clients' streams."""
        return _aevents(self._make, sdk_stream, reraise=False)

    def pump(self, sdk_stream: Iterable[ProviderEvent], stream: Sink, *,
             close: bool = True) -> int:
        """Send the events of `sdk_stream` into `stream`; return how many were sent.

        ``send`` waits under BLOCK, so a slow consumer throttles the read from the
        provider.  An exception the SDK raises is sent as an ``Error`` event first,
        then re-raised; if sending fails (the stream was closed), the SDK stream is
        closed so the provider's connection is released, and the exception
        propagates.  With `close`, the stream is closed at the end, however it ends.
        """
        send = stream.send
        sent = 0
        events = _events(self._make, sdk_stream, reraise=True)
        try:
            for ev in events:
                send(ev)
                sent += 1
        except BaseException:
            events.close()
            _close_sdk_stream(sdk_stream)
            raise
        finally:
            if close:
                _close_stream(stream)
        return sent

    async def apump(self, sdk_stream: AsyncIterable[ProviderEvent], stream: AsyncSink, *,
                    close: bool = True) -> int:
        """`pump` for the async clients' streams, sending with ``await stream.asend``."""
        asend = stream.asend
        sent = 0
        events = _aevents(self._make, sdk_stream, reraise=True)
        try:
            async for ev in events:
                await asend(ev)
                sent += 1
        except BaseException:
            await events.aclose()
            closing = _close_sdk_stream(sdk_stream)
            if closing is not None and hasattr(closing, "__await__"):
                await closing
            raise
        finally:
            if close:
                _close_stream(stream)
        return sent
