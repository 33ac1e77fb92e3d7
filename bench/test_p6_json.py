"""P6: ``Event.to_json`` / ``Event.from_json`` vs hand-written stdlib equivalents."""

import pytest

from fastevents.bench import _scenarios as sc

OPS = 100_000


@pytest.mark.parametrize("impl", sc.P6_IMPLS)
def test_p6_to_json(impl, run_body):
    run_body(lambda: sc.p6_to_json(impl, OPS), OPS)


@pytest.mark.parametrize("impl", sc.P6_IMPLS)
def test_p6_from_json(impl, run_body):
    run_body(lambda: sc.p6_from_json(impl, OPS), OPS)
