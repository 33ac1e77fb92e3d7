"""Anthropic Messages streams → fastevents events.

Feed it what the official ``anthropic`` SDK yields for a streamed request::

    with client.messages.stream(model=..., max_tokens=..., messages=...) as s:
        pump(s, stream)                     # or: for ev in convert(s): ...
    pump(client.messages.create(..., stream=True), stream)

Both shapes work: the raw events of ``messages.create(stream=True)``, and
``messages.stream()``, which yields the same raw events plus helper events (``text``,
``thinking``, ``signature``, ``input_json``, ``citation``) that repeat them: those are
skipped, so nothing is counted twice.  ``client.beta.messages`` streams work the same.

The mapping (docs/providers.md has it row by row): ``message_start`` → ``MessageStart
{message_id, model}``; each content block → ``ContentStart {index, block_type[,
tool_use_id, name]}`` … ``ContentEnd {index}`` with Anthropic's own block indices; text →
``TextDelta {text, index}``; a citation → ``TextDelta {text: "", index, citation}``;
thinking → ``Thinking {thinking, index}``, its signature → ``Thinking {thinking: "",
signature, index}``; redacted thinking → ``ContentStart {..., redacted_data}``; tool
input → ``ToolInputDelta {index, partial_json}``; ``message_stop`` → ``Usage`` then
``MessageStop {message_id, stop_reason[, stop_sequence]}``.  A block type this module
does not know (server tool results, …) arrives whole on its ``ContentStart`` as
``content_block``.  An error event → ``Error {error, error_type}``, then the end.

This module does not import the SDK: it reads the attributes of the objects it is given.
"""

from __future__ import annotations

import json
from typing import Any

from .._event import (
    Event,
    content_end_event,
    content_start_event,
    message_start_event,
    message_stop_event,
    text_delta_event,
    thinking_event,
    tool_input_delta_event,
    usage_event,
)
from ._base import Adapter, Converter, ProviderEvent, TypedConverter, citation_event, dump

__all__ = ["AnthropicConverter", "aconvert", "apump", "convert", "pump"]

# Usage fields that become the Usage event's own keys; any other field the provider
# reports (server_tool_use, cache_creation by TTL, service_tier, ...) is kept as is.
_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens",
               "cache_read_input_tokens", "output_tokens_details")
# Fields of a tool_use-like block that ContentStart carries under its own names.
_TOOL_KEYS = ("type", "id", "name", "input")
# Fields of message_start's message that MessageStart carries (id, model) or that other
# events do (usage -> Usage, content -> the blocks); any other field the provider adds
# (container, diagnostics, ...) is kept on MessageStart under its own name.
_MESSAGE_KEYS = ("id", "model", "usage", "type", "role")


class AnthropicConverter(TypedConverter):
    """The state machine of one Messages stream: the message id, usage and stop."""

    #: The helper events of ``messages.stream()`` (and of the beta one): each repeats a
    #: raw ``content_block_delta`` already converted.
    skipped = frozenset({"text", "thinking", "signature", "input_json", "citation",
                         "compaction"})

    def __init__(self) -> None:
        self.message_id = ""
        self.usage: dict[str, Any] = {}
        self.stop_reason: str | None = None
        self.stop_sequence: str | None = None
        self.stop_extra: dict[str, Any] = {}
        self.open_blocks: dict[int, None] = {}  # ordered set of the open block indices
        #: open tool blocks -> whether any argument piece was non-empty
        self.tool_input: dict[int, bool] = {}
        super().__init__({
            "content_block_delta": self._block_delta,  # first: one per token
            "content_block_start": self._block_start,
            "content_block_stop": self._block_stop,
            "message_start": self._message_start,
            "message_delta": self._message_delta,
            "message_stop": self._message_stop,
        })

    # -- the message --------------------------------------------------------------------

    def _message_start(self, ev: Any) -> list[Event]:
        msg = ev.message
        self.message_id = msg.id
        self._add_usage(getattr(msg, "usage", None))
        start = message_start_event(msg.id, model=msg.model)
        extra = dump(msg)
        for key in _MESSAGE_KEYS:
            extra.pop(key, None)
        if not extra.get("content"):  # always [] on the wire: the blocks follow
            extra.pop("content", None)
        start.data.update(extra)  # container, diagnostics, ...
        return [start]

    def _message_delta(self, ev: Any) -> list[Event]:
        delta = ev.delta
        if delta.stop_reason is not None:
            self.stop_reason = delta.stop_reason
        if delta.stop_sequence is not None:
            self.stop_sequence = delta.stop_sequence
        extra = dump(delta)
        for key in ("stop_reason", "stop_sequence"):
            extra.pop(key, None)
        self.stop_extra.update(extra)  # stop_details, container, ...
        self._add_usage(getattr(ev, "usage", None))
        return []

    def _message_stop(self, ev: Any) -> list[Event]:
        out = [content_end_event(index) for index in self.open_blocks]  # normally none
        self.open_blocks.clear()
        if self.usage:
            out.append(self._usage_event())
        stop = message_stop_event(self.message_id, self.stop_reason or "",
                                  stop_sequence=self.stop_sequence)
        stop.data.update(self.stop_extra)
        out.append(self.terminal(stop))
        self.done = True
        return out

    def finish(self) -> list[Event]:
        # The SDK stream ended without message_stop (and without an error): close what
        # is open, and stop with the reason given so far, or "incomplete".
        if not self.message_id:
            return []
        if self.stop_reason is None:
            self.stop_reason = "incomplete"
        return self._message_stop(None)

    def _add_usage(self, usage: Any) -> None:
        # message_start carries the input counts, message_delta cumulative counts: the
        # latest value of each field wins.
        if usage is not None:
            self.usage.update(dump(usage))

    def _usage_event(self) -> Event:
        u = dict(self.usage)
        uncached = u.pop("input_tokens", None) or 0
        created = u.pop("cache_creation_input_tokens", None)
        read = u.pop("cache_read_input_tokens", None)
        output = u.pop("output_tokens", None) or 0
        details = u.pop("output_tokens_details", None) or {}
        # prompt_tokens counts every input token, cached or not, as OpenAI's does:
        # Anthropic's input_tokens excludes both cache counts (it is recoverable as
        # prompt_tokens - cache_creation_input_tokens - cache_read_input_tokens).
        prompt = uncached + (created or 0) + (read or 0)
        ev = usage_event(prompt, output, prompt + output,
                         cache_creation_input_tokens=created, cache_read_input_tokens=read,
                         reasoning_tokens=details.pop("thinking_tokens", None))
        if details:
            u["output_tokens_details"] = details
        ev.data.update(u)
        return ev

    # -- content blocks -----------------------------------------------------------------

    def _block_start(self, ev: Any) -> list[Event]:
        index = ev.index
        block = ev.content_block
        kind = block.type
        self.open_blocks[index] = None
        if kind == "text":
            out = [content_start_event(index, block_type=kind)]
            if block.text:
                out.append(text_delta_event(block.text, index=index))
            for citation in getattr(block, "citations", None) or ():
                out.append(citation_event(citation, index))
            return out
        if kind == "thinking":
            out = [content_start_event(index, block_type=kind)]
            if block.thinking:
                out.append(thinking_event(block.thinking, index=index))
            if block.signature:
                out.append(thinking_event("", index=index, signature=block.signature))
            return out
        if kind == "redacted_thinking":
            start = content_start_event(index, block_type=kind)
            start.data["redacted_data"] = block.data  # opaque; pass back to the API as is
            return [start]
        if hasattr(block, "input") and hasattr(block, "name") and hasattr(block, "id"):
            # tool_use, server_tool_use, and tool-call blocks to come
            start = content_start_event(index, block_type=kind, tool_use_id=block.id,
                                        name=block.name)
            extra = dump(block)
            for key in _TOOL_KEYS:
                extra.pop(key, None)
            start.data.update(extra)  # caller, toolset_name, ...
            out = [start]
            if block.input:  # normally {} here, the input following as deltas
                out.append(tool_input_delta_event(index, json.dumps(block.input)))
            self.tool_input[index] = bool(block.input)
            return out
        start = content_start_event(index, block_type=kind)
        start.data["content_block"] = dump(block)  # a block that arrives whole
        return [start]

    def _block_delta(self, ev: Any) -> list[Event]:
        delta = ev.delta
        kind = delta.type
        if kind == "text_delta":
            return [text_delta_event(delta.text, index=ev.index)]
        if kind == "input_json_delta":
            if delta.partial_json:
                self.tool_input[ev.index] = True
            return [tool_input_delta_event(ev.index, delta.partial_json)]
        if kind == "thinking_delta":
            return [thinking_event(delta.thinking, index=ev.index)]
        if kind == "signature_delta":
            return [thinking_event("", index=ev.index, signature=delta.signature)]
        if kind == "citations_delta":
            return [citation_event(delta.citation, ev.index)]
        # A delta type this module does not know: kept whole on an empty TextDelta,
        # which a reader that only concatenates text passes over unchanged.
        out = text_delta_event("", index=ev.index)
        out.data["delta"] = dump(delta)
        return [out]

    def _block_stop(self, ev: Any) -> list[Event]:
        index = ev.index
        self.open_blocks.pop(index, None)
        if self.tool_input.pop(index, True):
            return [content_end_event(index)]
        # A tool called without arguments streams no JSON at all (at most ""); the
        # pieces of every tool block concatenate to its JSON arguments, so: "{}".
        return [tool_input_delta_event(index, "{}"), content_end_event(index)]


def _make(first: ProviderEvent) -> Converter:
    return AnthropicConverter()


_adapter = Adapter(_make)
convert = _adapter.convert
aconvert = _adapter.aconvert
pump = _adapter.pump
apump = _adapter.apump
