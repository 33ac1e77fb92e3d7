"""Provider adapters: official LLM SDK streams in, fastevents events out.

* `fastevents.providers.anthropic` — Anthropic Messages streams
  (``messages.create(stream=True)`` and ``messages.stream()``);
* `fastevents.providers.openai` — OpenAI Chat Completions chunks and Responses API
  events (``chat.completions.create(stream=True)``, ``responses.create(stream=True)``).

Each module has ``convert`` / ``aconvert`` (SDK stream → events) and ``pump`` /
``apump`` (SDK stream → a fastevents stream).  The converters only read the attributes
of the objects the SDK yields, so neither this package nor its modules import an SDK:
``pip install "fastevents-stream[anthropic]"`` (or ``[openai]``) installs the SDK you
call.  The mapping, row by row, is in ``docs/providers.md``.
"""

from ._base import Adapter, AsyncSink, Converter, ProviderEvent, Sink

__all__ = ["Adapter", "AsyncSink", "Converter", "ProviderEvent", "Sink"]
