"""OpenAI streams → fastevents events: Chat Completions chunks and Responses API events.

Feed it what the official ``openai`` SDK yields for a streamed request; which of the two
APIs it is, is read off the first object::

    pump(client.chat.completions.create(..., stream=True,
                                        stream_options={"include_usage": True}), stream)
    pump(client.responses.create(..., stream=True), stream)

Chat Completions (also what DeepSeek, vLLM, OpenRouter, ... serve): the first chunk gives
``MessageStart {message_id, model}``; ``delta.content`` → ``TextDelta``;
``delta.reasoning_content`` / ``delta.reasoning`` (DeepSeek, vLLM) → ``Thinking``;
``delta.refusal`` → ``TextDelta`` in a ``"refusal"`` block; each tool call (parallel
ones too) is a ``"tool_use"`` block whose argument pieces are ``ToolInputDelta``.
A text or thinking block ends when the delta switches kind; tool-call blocks stay open
until the choice finishes (providers may interleave their pieces).  The end of the
stream gives ``Usage`` (with ``include_usage``) and ``MessageStop {message_id,
stop_reason: finish_reason}``.  An error chunk → ``Error``.

Responses API: ``response.created`` → ``MessageStart``; each output item (reasoning,
function call, message part, or another kind) is a block; text, refusal, reasoning
summary and reasoning text deltas, function-call argument deltas and annotations
(``citation``) map as above; ``response.completed`` / ``response.incomplete`` →
``Usage`` then ``MessageStop {stop_reason: status}``; ``response.failed`` and ``error``
→ ``Error {error, error_type}``, then the end.  docs/providers.md has every row.

This module does not import the SDK: it reads the attributes of the objects it is given.
"""

from __future__ import annotations

from typing import Any

from .._event import (
    Event,
    content_end_event,
    content_start_event,
    error_event,
    message_start_event,
    message_stop_event,
    text_delta_event,
    thinking_event,
    tool_input_delta_event,
    usage_event,
)
from ._base import Adapter, Converter, ProviderEvent, TypedConverter, citation_event, dump

__all__ = ["ChatCompletionsConverter", "ResponsesConverter", "aconvert", "apump", "convert",
           "pump"]

_TEXT = "text"
_THINKING = "thinking"
_REFUSAL = "refusal"
_AUDIO = "audio"
# The delta fields OpenAI-compatible servers stream reasoning in (DeepSeek's, vLLM's):
# Thinking events.  Any other field a server adds to a delta or a choice (OpenRouter's
# reasoning_details, Azure's content_filter_results, vLLM's stop_reason) rides on the
# last event the chunk gave for that choice.
_REASONING_KEYS = ("reasoning_content", "reasoning")


def _extra(model: Any) -> dict[str, Any]:
    # Fields an OpenAI-compatible server adds beyond OpenAI's own schema (DeepSeek's
    # reasoning_content, vLLM's reasoning): the SDK's models keep them as pydantic
    # "extra" fields.  A dict read, not getattr, which costs an exception per miss.
    extra = getattr(model, "__pydantic_extra__", None)
    if extra is None:
        extra = getattr(model, "model_extra", None)
    return extra or {}


def _attach_extras(ev: Event, choice_extra: dict[str, Any] | None,
                   delta_extra: dict[str, Any] | None) -> None:
    # A server's own fields on a choice or beside the reasoning in a delta ride on the
    # last event the chunk gave for that choice.
    if choice_extra:
        ev.data.update(_present(choice_extra))
    if delta_extra:
        ev.data.update(_present({k: v for k, v in delta_extra.items()
                                 if k not in _REASONING_KEYS}))


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` as JSON, without those that say nothing (None, empty dicts and lists)."""
    return {k: dump(v) for k, v in fields.items() if v is not None and v != {} and v != []}


def _usage_from_openai(usage: Any, *, prompt_key: str, completion_key: str) -> Event:
    """The Usage event for a Chat Completions or Responses usage object."""
    u = dump(usage)
    prompt = u.pop(prompt_key, 0) or 0
    completion = u.pop(completion_key, 0) or 0
    total = u.pop("total_tokens", None)
    in_details = u.pop("prompt_tokens_details", None) or u.pop("input_tokens_details", None) or {}
    out_details = (u.pop("completion_tokens_details", None)
                   or u.pop("output_tokens_details", None) or {})
    cached = in_details.pop("cached_tokens", None)
    if cached is None:
        cached = u.pop("prompt_cache_hit_tokens", None)  # DeepSeek's name for it
    ev = usage_event(prompt, completion, prompt + completion if total is None else total,
                     cache_creation_input_tokens=in_details.pop("cache_write_tokens", None),
                     cache_read_input_tokens=cached,
                     reasoning_tokens=out_details.pop("reasoning_tokens", None))
    # Whatever else the provider counted (audio, predictions, cache TTLs, ...), as given.
    if in_details:
        u[f"{prompt_key}_details"] = in_details
    if out_details:
        u[f"{completion_key}_details"] = out_details
    ev.data.update(u)
    return ev


# -- Chat Completions --------------------------------------------------------------------


class ChatCompletionsConverter(Converter):
    """Blocks, usage and finish reasons of one ``chat.completion.chunk`` stream."""

    def __init__(self) -> None:
        self.message_id: str | None = None
        self.next_index = 0
        #: choice index -> (kind, block index) of its open text/thinking/refusal block
        self.current: dict[int, tuple[str, int]] = {}
        #: (choice index, tool call index) -> block index, while the block is open
        self.tools: dict[tuple[int, int], int] = {}
        self.finish_reasons: dict[int, str] = {}
        self.stop_sequences: dict[int, str] = {}
        self.usage: Any = None
        #: chunk fields beyond OpenAI's schema seen before the first real chunk (Azure
        #: opens with a chunk that has no id, no choices, only prompt_filter_results)
        self.start_extra: dict[str, Any] = {}
        #: moderation results (chunk.moderation), for MessageStop
        self.moderation: dict[str, Any] = {}

    def feed(self, item: ProviderEvent) -> list[Event]:
        chunk = item
        if getattr(chunk, "choices", None) is None:
            # chat.completions.stream() yields helper events; its "chunk" event carries
            # the raw chunk, and the others repeat what that chunk said.
            if getattr(item, "type", None) != "chunk":
                return []
            chunk = item.chunk
        out: list[Event] = []
        if self.message_id is None:
            if not chunk.id and not chunk.choices:
                # A preamble without an id (Azure's prompt filter results): its fields
                # go on the MessageStart of the first chunk that names the message.
                self.start_extra.update(dump(_extra(chunk)))
                if chunk.usage is not None:
                    self.usage = chunk.usage
                return out
            out.append(self._start(chunk))
        for choice in chunk.choices:
            ci = choice.index
            delta = choice.delta
            before = len(out)
            delta_extra = None
            if delta is not None:
                delta_extra = getattr(delta, "__pydantic_extra__", None)  # pydantic 2
                if delta_extra:
                    reasoning = (delta_extra.get(_REASONING_KEYS[0])
                                 or delta_extra.get(_REASONING_KEYS[1]))
                    if reasoning:
                        self._piece(out, ci, _THINKING, reasoning)
                if delta.content:
                    self._piece(out, ci, _TEXT, delta.content)
                if delta.refusal:
                    self._piece(out, ci, _REFUSAL, delta.refusal)
                if delta.tool_calls:
                    for call in delta.tool_calls:
                        self._tool_piece(out, ci, call.index, call.id, call.function)
                function_call = getattr(delta, "function_call", None)
                if function_call is not None:  # the deprecated single-function form
                    self._tool_piece(out, ci, -1, None, function_call)
                audio = getattr(delta, "audio", None)
                if audio is not None:  # audio output: its transcript is the text
                    self._audio_piece(out, ci, audio)
                logprobs = choice.logprobs
                if logprobs is not None and len(out) > before:
                    # Requested with logprobs=True: they belong to this chunk's token.
                    out[-1].data["logprobs"] = dump(logprobs)
            extra = getattr(choice, "__pydantic_extra__", None)
            if choice.finish_reason is not None:
                self.finish_reasons[ci] = choice.finish_reason
                matched = extra.get("stop_reason") if extra else None
                if isinstance(matched, str):  # vLLM: the stop string that matched
                    self.stop_sequences[ci] = matched
                self._close_choice(out, ci)
            if (extra or delta_extra) and len(out) > before:
                _attach_extras(out[-1], extra, delta_extra)
        if chunk.usage is not None:
            self.usage = chunk.usage
        moderation = getattr(chunk, "moderation", None)
        if moderation is not None:
            self.moderation.update(dump(moderation))
        return out

    def _start(self, chunk: Any) -> Event:
        self.message_id = chunk.id
        start = message_start_event(chunk.id, model=chunk.model)
        for key in ("system_fingerprint", "service_tier"):
            value = getattr(chunk, key, None)
            if value is not None:
                start.data[key] = value
        start.data.update(self.start_extra)
        start.data.update(_present(_extra(chunk)))  # a server's own chunk fields
        return start

    def _audio_piece(self, out: list[Event], ci: int, audio: Any) -> None:
        # Pieces of one audio answer: an id, base64 data, an expiry, the transcript.
        fields = dump(audio)
        self._piece(out, ci, _AUDIO, fields.pop("transcript", None) or "")
        if fields:
            out[-1].data["audio"] = fields

    def _open(self, out: list[Event], ci: int, kind: str, tool_use_id: str | None = None,
              name: str | None = None) -> int:
        index = self.next_index
        self.next_index = index + 1
        start = content_start_event(index, block_type=kind, tool_use_id=tool_use_id, name=name)
        if ci:
            start.data["choice"] = ci  # n > 1: which choice the block belongs to
        out.append(start)
        return index

    def _piece(self, out: list[Event], ci: int, kind: str, text: str) -> None:
        current = self.current.get(ci)
        if current is not None and current[0] is kind:
            index = current[1]
        else:
            if current is not None:
                out.append(content_end_event(current[1]))
            index = self._open(out, ci, kind)
            self.current[ci] = (kind, index)
        if kind is _THINKING:
            out.append(thinking_event(text, index=index))
        else:
            out.append(text_delta_event(text, index=index))

    def _tool_piece(self, out: list[Event], ci: int, call_index: int, call_id: str | None,
                    function: Any) -> None:
        key = (ci, call_index)
        index = self.tools.get(key)
        if index is None:
            current = self.current.pop(ci, None)
            if current is not None:  # text before the call ends with it
                out.append(content_end_event(current[1]))
            name = getattr(function, "name", None)
            index = self.tools[key] = self._open(out, ci, "tool_use", call_id, name)
        arguments = getattr(function, "arguments", None)
        if arguments:
            out.append(tool_input_delta_event(index, arguments))

    def _close_choice(self, out: list[Event], ci: int) -> None:
        current = self.current.pop(ci, None)
        if current is not None:
            out.append(content_end_event(current[1]))
        for key in [k for k in self.tools if k[0] == ci]:
            out.append(content_end_event(self.tools.pop(key)))

    def finish(self) -> list[Event]:
        if self.message_id is None:
            return []  # an empty stream: nothing to say
        out: list[Event] = []
        for ci in sorted({*self.current, *(k[0] for k in self.tools)}):
            self._close_choice(out, ci)  # a stream that ended without finish_reason
        if self.usage is not None:
            out.append(_usage_from_openai(self.usage, prompt_key="prompt_tokens",
                                          completion_key="completion_tokens"))
        reasons = self.finish_reasons
        stop = message_stop_event(self.message_id, reasons.get(0) or next(
            iter(reasons.values()), ""), stop_sequence=self.stop_sequences.get(0))
        if len(reasons) > 1:
            stop.data["finish_reasons"] = {str(k): v for k, v in sorted(reasons.items())}
        if self.moderation:
            stop.data["moderation"] = self.moderation
        out.append(stop)
        return out


# -- Responses API -----------------------------------------------------------------------

# Output item types whose argument deltas are ToolInputDelta pieces, and the event
# type that carries those deltas.
_TOOL_ITEMS = {"function_call": "tool_use", "custom_tool_call": "custom_tool_call",
               "mcp_call": "mcp_call"}


class ResponsesConverter(TypedConverter):
    """Blocks, usage and status of one Responses API event stream.

    Events in `skipped` repeat what others said (``output_text.done``, ...), report
    progress of a hosted tool whose finished item carries the result, or are audio
    output (not carried: docs/providers.md).

    Block keys: ``("item", output_index)`` for a reasoning item, a tool call or an
    item kind this module does not model; ``("part", output_index, content_index)``
    for each part of a message item (text or refusal).
    """

    skipped = frozenset({
        # the whole text, arguments or summary again, after their deltas
        "response.output_text.done", "response.refusal.done",
        "response.reasoning_summary_text.done", "response.reasoning_text.done",
        "response.reasoning_summary_part.added", "response.reasoning_summary_part.done",
        "response.custom_tool_call_input.done", "response.mcp_call_arguments.done",
        # progress of hosted tools: output_item.done carries the finished item
        "response.web_search_call.in_progress", "response.web_search_call.searching",
        "response.web_search_call.completed", "response.file_search_call.in_progress",
        "response.file_search_call.searching", "response.file_search_call.completed",
        "response.code_interpreter_call.in_progress",
        "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed", "response.code_interpreter_call_code.delta",
        "response.code_interpreter_call_code.done",
        "response.image_generation_call.in_progress",
        "response.image_generation_call.generating",
        "response.image_generation_call.partial_image",
        "response.image_generation_call.completed", "response.mcp_call.in_progress",
        "response.mcp_call.completed", "response.mcp_call.failed",
        "response.mcp_list_tools.in_progress", "response.mcp_list_tools.completed",
        "response.mcp_list_tools.failed", "response.shell_call_command.added",
        "response.shell_call_command.delta", "response.shell_call_command.done",
        "response.shell_call_output_content.delta", "response.shell_call_output_content.done",
        "response.compaction.compacting",
        # audio output (docs/providers.md, "Not carried")
        "response.audio.delta", "response.audio.done", "response.audio.transcript.delta",
        "response.audio.transcript.done",
    })

    def __init__(self) -> None:
        self.message_id: str | None = None
        self.status = ""
        self.next_index = 0
        self.blocks: dict[tuple[Any, ...], int] = {}
        self.args_seen: set[int] = set()  # tool blocks that got argument deltas
        self.reasoning_seen: set[int] = set()  # reasoning blocks that got deltas
        self.parts_seen: set[int] = set()  # output indices of messages that had parts
        super().__init__({
            "response.output_text.delta": self._text_delta,  # first: one per token
            "response.reasoning_summary_text.delta": self._reasoning_delta,
            "response.reasoning_text.delta": self._reasoning_delta,
            "response.function_call_arguments.delta": self._arguments_delta,
            "response.custom_tool_call_input.delta": self._arguments_delta,
            "response.mcp_call_arguments.delta": self._arguments_delta,
            "response.refusal.delta": self._text_delta,
            "response.output_text.annotation.added": self._annotation,
            "response.content_part.added": self._part_added,
            "response.content_part.done": self._part_done,
            "response.output_item.added": self._item_added,
            "response.output_item.done": self._item_done,
            "response.function_call_arguments.done": self._arguments_done,
            "response.created": self._started,
            "response.in_progress": self._started,
            "response.queued": self._started,
            "response.completed": self._ended,
            "response.incomplete": self._ended,
            "response.failed": self._failed,
            "error": self._error,
        })

    def _open(self, key: tuple[Any, ...], kind: str, item_id: str | None,
              tool_use_id: str | None = None, name: str | None = None) -> Event:
        index = self.blocks[key] = self.next_index
        self.next_index = index + 1
        start = content_start_event(index, block_type=kind, tool_use_id=tool_use_id, name=name)
        if item_id is not None:
            start.data["item_id"] = item_id  # needed to send reasoning back, for one
        return start

    # -- the response -------------------------------------------------------------------

    def _started(self, ev: Any) -> list[Event]:
        response = ev.response
        self.status = getattr(response, "status", None) or self.status
        if self.message_id is not None:
            return []
        self.message_id = response.id
        return [message_start_event(response.id, model=response.model)]

    def _ended(self, ev: Any) -> list[Event]:
        response = ev.response
        out = self._started(ev)
        out.extend(self._close_all())
        if getattr(response, "usage", None) is not None:
            out.append(_usage_from_openai(response.usage, prompt_key="input_tokens",
                                          completion_key="output_tokens"))
        stop = message_stop_event(response.id, response.status or ev.type.rpartition(".")[2])
        details = getattr(response, "incomplete_details", None)
        if details is not None:
            stop.data["incomplete_details"] = dump(details)
        out.append(self.terminal(stop))
        self.done = True
        return out

    def _failed(self, ev: Any) -> list[Event]:
        error = getattr(ev.response, "error", None)
        message = getattr(error, "message", None) or "response failed"
        code = getattr(error, "code", None) or "response_failed"
        self.done = True
        failed = error_event(message, error_type=code)
        usage = getattr(ev.response, "usage", None)
        if usage is not None:  # what the failed attempt was billed
            failed.data["usage"] = dump(usage)
        return [self.terminal(failed)]

    def _error(self, ev: Any) -> list[Event]:
        self.done = True
        error = error_event(ev.message, error_type=ev.code or "error")
        param = getattr(ev, "param", None)
        if param is not None:
            error.data["param"] = param  # the request parameter at fault
        return [self.terminal(error)]

    def finish(self) -> list[Event]:
        # The stream ended without response.completed/incomplete/failed: close what is
        # open and say how far it got.
        if self.message_id is None:
            return []
        out = self._close_all()
        out.append(self.terminal(message_stop_event(self.message_id,
                                                    self.status or "incomplete")))
        return out

    def _close_all(self) -> list[Event]:
        out = [content_end_event(index) for index in self.blocks.values()]
        self.blocks.clear()
        return out

    # -- output items -------------------------------------------------------------------

    def _item_added(self, ev: Any) -> list[Event]:
        item = ev.item
        kind = item.type
        key = ("item", ev.output_index)
        item_id = getattr(item, "id", None)
        if kind == "message":
            return []  # its parts are the blocks
        if kind == "reasoning":
            return [self._open(key, _THINKING, item_id)]
        tool_kind = _TOOL_ITEMS.get(kind)
        if tool_kind is not None:
            start = self._open(key, tool_kind, item_id, getattr(item, "call_id", None) or item_id,
                               getattr(item, "name", None))
            out = [start]
            arguments = getattr(item, "arguments", None) or getattr(item, "input", None)
            if arguments:
                out.append(tool_input_delta_event(self.blocks[key], arguments))
                self.args_seen.add(self.blocks[key])
            return out
        start = self._open(key, kind, item_id)
        start.data["item"] = dump(item)  # web_search_call, image_generation_call, ...
        return [start]

    def _item_done(self, ev: Any) -> list[Event]:
        item = ev.item
        kind = item.type
        out: list[Event] = []
        if kind == "message":
            if ev.output_index not in self.parts_seen:
                # No content_part events came (some compatible servers send the item
                # whole): its parts are the blocks, opened and closed here.
                for content_index, part in enumerate(getattr(item, "content", None) or ()):
                    out.extend(self._open_part(ev.output_index, content_index,
                                               getattr(item, "id", None), part))
            # Its parts were the blocks: close any left open.
            for key in [k for k in self.blocks if k[0] == "part" and k[1] == ev.output_index]:
                out.append(content_end_event(self.blocks.pop(key)))
            return out
        if ("item", ev.output_index) not in self.blocks:
            out.extend(self._item_added(ev))  # done without added: open it now
        index = self.blocks.pop(("item", ev.output_index))
        if kind == "reasoning":
            if index not in self.reasoning_seen:  # no deltas came: the text is here
                for i, summary in enumerate(getattr(item, "summary", None) or ()):
                    if summary.text:
                        thinking = thinking_event(summary.text, index=index)
                        thinking.data["summary_index"] = i
                        out.append(thinking)
                for content in getattr(item, "content", None) or ():
                    if content.text:
                        out.append(thinking_event(content.text, index=index))
            self.reasoning_seen.discard(index)
            encrypted = getattr(item, "encrypted_content", None)
            if encrypted:  # the reasoning's opaque state, Anthropic's signature in kind
                out.append(thinking_event("", index=index, signature=encrypted))
        elif kind in _TOOL_ITEMS:
            arguments = getattr(item, "arguments", None) or getattr(item, "input", None)
            if arguments and index not in self.args_seen:
                out.append(tool_input_delta_event(index, arguments))  # no deltas came
            self.args_seen.discard(index)
        end = content_end_event(index)
        if kind != "reasoning" and kind not in _TOOL_ITEMS:
            end.data["item"] = dump(item)  # the finished item: results, status, ...
        out.append(end)
        return out

    def _part_added(self, ev: Any) -> list[Event]:
        if ev.part.type == "reasoning_text":
            return []  # inside a reasoning item: the item is the block
        return self._open_part(ev.output_index, ev.content_index, ev.item_id, ev.part)

    def _open_part(self, output_index: int, content_index: int, item_id: str | None,
                   part: Any) -> list[Event]:
        self.parts_seen.add(output_index)
        key = ("part", output_index, content_index)
        out = [self._open(key, _REFUSAL if part.type == "refusal" else _TEXT, item_id)]
        index = self.blocks[key]
        text = getattr(part, "text", None) or getattr(part, "refusal", None)
        if text:
            out.append(text_delta_event(text, index=index))
        for annotation in getattr(part, "annotations", None) or ():
            out.append(citation_event(annotation, index))
        return out

    def _part_done(self, ev: Any) -> list[Event]:
        index = self.blocks.pop(("part", ev.output_index, ev.content_index), None)
        return [] if index is None else [content_end_event(index)]

    # -- deltas -------------------------------------------------------------------------

    def _text_delta(self, ev: Any) -> list[Event]:
        index = self.blocks.get(("part", ev.output_index, ev.content_index))
        if index is None:  # a delta without its content_part.added: open the block
            out = self._part_added_for(ev)
            index = self.blocks[("part", ev.output_index, ev.content_index)]
        else:
            out = []
        text = text_delta_event(ev.delta, index=index)
        logprobs = getattr(ev, "logprobs", None)
        if logprobs:
            text.data["logprobs"] = dump(logprobs)
        out.append(text)
        return out

    def _part_added_for(self, ev: Any) -> list[Event]:
        self.parts_seen.add(ev.output_index)
        kind = _REFUSAL if ev.type == "response.refusal.delta" else _TEXT
        return [self._open(("part", ev.output_index, ev.content_index), kind, ev.item_id)]

    def _reasoning_delta(self, ev: Any) -> list[Event]:
        key = ("item", ev.output_index)
        index = self.blocks.get(key)
        out: list[Event] = []
        if index is None:
            out.append(self._open(key, _THINKING, ev.item_id))
            index = self.blocks[key]
        self.reasoning_seen.add(index)
        thinking = thinking_event(ev.delta, index=index)
        summary_index = getattr(ev, "summary_index", None)
        if summary_index is not None:
            thinking.data["summary_index"] = summary_index  # which summary paragraph
        out.append(thinking)
        return out

    def _arguments_delta(self, ev: Any) -> list[Event]:
        index = self.blocks.get(("item", ev.output_index))
        if index is None:
            return []  # arguments of an item never announced: nothing to attach them to
        self.args_seen.add(index)
        return [tool_input_delta_event(index, ev.delta)]

    def _arguments_done(self, ev: Any) -> list[Event]:
        index = self.blocks.get(("item", ev.output_index))
        if index is None or index in self.args_seen or not ev.arguments:
            return []
        self.args_seen.add(index)
        return [tool_input_delta_event(index, ev.arguments)]

    def _annotation(self, ev: Any) -> list[Event]:
        index = self.blocks.get(("part", ev.output_index, ev.content_index))
        if index is None:
            return []
        return [citation_event(ev.annotation, index)]


# -- entry points --------------------------------------------------------------------------


def _make(first: ProviderEvent) -> Converter:
    # A chat chunk (or the chat helper's "chunk" event) has choices; a Responses event
    # has a dotted type ("response.created") or is "error".
    if first is None or getattr(first, "choices", None) is not None or (
        getattr(first, "type", None) in ("chunk", "content.delta", "content.done")
    ):
        return ChatCompletionsConverter()
    return ResponsesConverter()


_adapter = Adapter(_make)
convert = _adapter.convert
aconvert = _adapter.aconvert
pump = _adapter.pump
apump = _adapter.apump
