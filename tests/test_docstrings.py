"""Issue 9, item 15: every public method of the pure twin (the type checkers' view of
``fe.EventStream``), of ``fe.Stream`` and of ``StreamManager`` has its own docstring, so
``help()`` and IDE hovers work."""

from __future__ import annotations

import inspect

import pytest

import fastevents as fe

# Dunder methods a user calls through syntax (len, iteration, with, async for).
USER_DUNDERS = {
    "__len__", "__iter__", "__next__", "__aiter__", "__anext__", "__enter__", "__exit__",
    "__contains__",
}


def public_members(cls: type) -> list[str]:
    return sorted(
        name for name in vars(cls)
        if (not name.startswith("_") or name in USER_DUNDERS)
        and (inspect.isfunction(vars(cls)[name]) or isinstance(vars(cls)[name], property))
    )


@pytest.mark.parametrize("cls", [fe.PyEventStream, fe.Stream, fe.StreamManager])
def test_every_public_method_has_a_docstring(cls: type) -> None:
    names = public_members(cls)
    assert len(names) > 10
    missing = [n for n in names if not (vars(cls)[n].__doc__ or "").strip()]
    assert missing == [], f"{cls.__name__}: no docstring on {missing}"


def test_the_pure_twin_covers_the_whole_stream_api() -> None:
    assert not getattr(fe.PyEventStream, "__abstractmethods__", set())
    for name in public_members(fe.Stream):
        assert name in vars(fe.PyEventStream), f"PyEventStream does not define {name}"
