"""Smoke test of bench scenario A1 (provider adapters vs the SDK alone): tiny sizes, both
rows of each provider API, no timing assertions."""

from __future__ import annotations

import pytest

from fastevents.bench import _catalog
from fastevents.bench import _providers as bp

pytest.importorskip("httpx2", reason="httpx2 is not installed")


@pytest.mark.parametrize("api", ["anthropic", "openai-chat", "openai-responses"])
@pytest.mark.parametrize("build", [bp.sdk_alone, bp.sdk_with_adapter, bp.adapter_alone])
def test_rows_run_every_token(api: str, build: object) -> None:
    pytest.importorskip("anthropic" if api == "anthropic" else "openai")
    body = build(api, 25)  # type: ignore[operator]
    ns, count = body.timed()
    assert ns > 0 and body.ops == 25
    # The SDK yields the token events plus a few around them; the adapter's events are
    # one per token plus the message's start, blocks, usage and stop.
    assert 25 <= count <= 25 + 8


def test_a1_is_registered_with_its_target() -> None:
    scn = _catalog.scenario("a1")
    cases = scn.cases()
    assert [c.name for c in cases] == ["anthropic", "openai-chat", "openai-responses"]
    for case in cases:
        (target,) = case.targets
        assert (target.subject, target.ref, target.required) == ("adapter", "sdk", 0.8)
