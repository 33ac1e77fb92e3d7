"""The exception hierarchy: messages, attributes, pickling, and the errors.Is helpers."""

from __future__ import annotations

import copy
import pickle
import sys
from collections.abc import Callable
from typing import Any

import pytest

import fastevents as fe

SUBCLASSES = [
    (fe.StreamClosed, "stream closed"),
    (fe.StreamNotFound, "stream not found"),
    (fe.StreamFull, "stream full"),
    (fe.StreamExists, "stream already exists"),
    (fe.InvalidEvent, "invalid event"),
    (fe.Cancelled, "operation cancelled"),
]
HELPERS: list[tuple[Callable[[object], bool], type[fe.StreamError]]] = [
    (fe.is_stream_closed, fe.StreamClosed),
    (fe.is_stream_not_found, fe.StreamNotFound),
    (fe.is_stream_full, fe.StreamFull),
    (fe.is_invalid_event, fe.InvalidEvent),
]


@pytest.mark.parametrize(("cls", "kind"), SUBCLASSES)
def test_hierarchy_and_kind(cls: type[fe.StreamError], kind: str) -> None:
    assert issubclass(cls, fe.StreamError)
    assert issubclass(fe.StreamError, Exception)
    assert cls.kind == kind
    assert str(cls()) == kind


@pytest.mark.parametrize(
    ("err", "text"),
    [
        (fe.StreamError(), "stream error"),
        (fe.StreamError("boom"), "stream error: boom"),
        (fe.InvalidEvent("timestamp cannot be zero"), "invalid event: timestamp cannot be zero"),
        (fe.StreamClosed(stream_id="s1", op="send"), "stream s1: send: stream closed"),
        (fe.StreamClosed(op="send"), "send: stream closed"),
        (fe.StreamClosed(stream_id="s1"), "stream s1: stream closed"),
        (
            fe.InvalidEvent("event cannot be None", stream_id="s1", op="send"),
            "stream s1: send: invalid event: event cannot be None",
        ),
        (fe.StreamNotFound(stream_id="x", op="get"), "stream x: get: stream not found"),
        (fe.StreamExists(stream_id="a", op="create"), "stream a: create: stream already exists"),
        (fe.Cancelled(op="receive"), "receive: operation cancelled"),
        (fe.StreamClosed(""), "stream closed"),  # an empty detail adds nothing
        (fe.StreamClosed(stream_id=""), "stream : stream closed"),  # "" is an id, not absent
    ],
)
def test_str(err: fe.StreamError, text: str) -> None:
    assert str(err) == text


def test_stream_exists_says_already_exists() -> None:
    assert "already exists" in str(fe.StreamExists(stream_id="a", op="create"))


def test_stream_full_carries_buffer_size() -> None:
    err = fe.StreamFull(stream_id="s", op="send", buffer_size=10)
    assert err.buffer_size == 10
    assert str(err) == "stream s: send: stream full (buffer size 10)"
    assert str(fe.StreamFull("no room", buffer_size=3)) == "stream full (buffer size 3): no room"
    assert str(fe.StreamFull()) == "stream full"
    assert fe.StreamFull().buffer_size is None


def test_attributes() -> None:
    err = fe.StreamClosed("why", stream_id="s1", op="send")
    assert (err.detail, err.stream_id, err.op, err.sent) == ("why", "s1", "send", None)
    assert err.args == ("why",)
    assert fe.StreamClosed().args == ()
    err.sent = 3
    assert err.sent == 3


def test_keyword_only() -> None:
    with pytest.raises(TypeError):
        fe.StreamClosed("d", "s1")  # type: ignore[misc]


def test_repr() -> None:
    assert (
        repr(fe.StreamClosed(stream_id="s1", op="send"))
        == "StreamClosed(stream_id='s1', op='send')"
    )
    assert repr(fe.InvalidEvent("bad")) == "InvalidEvent(detail='bad')"
    full = fe.StreamFull(stream_id="s", op="send", buffer_size=2)
    full.sent = 1
    assert repr(full) == "StreamFull(stream_id='s', op='send', sent=1, buffer_size=2)"


def _state(err: fe.StreamError) -> dict[str, Any]:
    return {"type": type(err), "args": err.args, "str": str(err), **vars(err)}


@pytest.mark.parametrize("cls", [fe.StreamError] + [c for c, _ in SUBCLASSES])
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_keeps_every_attribute(cls: type[fe.StreamError], protocol: int) -> None:
    kwargs: dict[str, Any] = {"stream_id": "s1", "op": "send"}
    if cls is fe.StreamFull:
        kwargs["buffer_size"] = 7
    err = cls("detail", **kwargs)
    err.sent = 5
    again = pickle.loads(pickle.dumps(err, protocol))
    assert _state(again) == _state(err)
    if cls is fe.StreamFull:
        assert again.buffer_size == 7
    assert again.sent == 5
    bare = pickle.loads(pickle.dumps(cls(), protocol))
    assert _state(bare) == _state(cls())


def test_pickle_keeps_extra_attributes_and_copy_works() -> None:
    err = fe.InvalidEvent("x", op="send")
    err.extra = [1, 2]  # type: ignore[attr-defined]
    again = pickle.loads(pickle.dumps(err))
    assert again.extra == [1, 2]
    assert _state(copy.copy(err)) == _state(err)
    assert _state(copy.deepcopy(err)) == _state(err)


@pytest.mark.parametrize(("is_", "cls"), HELPERS)
def test_is_helpers_match_their_class_only(is_: Callable[[object], bool], cls: type) -> None:
    assert is_(cls()) is True
    assert is_(cls("d", stream_id="s", op="o")) is True
    for other, _ in SUBCLASSES:
        if other is not cls:
            assert is_(other()) is False
    assert is_(fe.StreamError()) is False
    assert is_(None) is False
    assert is_(ValueError("stream closed")) is False
    assert is_("stream closed") is False
    assert is_(cls) is False  # the class itself is not an error value


def _raise_chained(inner: BaseException, explicit: bool) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as exc:
            if explicit:
                raise RuntimeError("outer") from exc
            raise RuntimeError("outer")  # noqa: B904 - implicit on purpose: __context__
    except RuntimeError as outer:
        return outer
    raise AssertionError("unreachable")


@pytest.mark.parametrize(("is_", "cls"), HELPERS)
@pytest.mark.parametrize("explicit", [True, False])
def test_is_helpers_follow_the_chain(
    is_: Callable[[object], bool], cls: type, explicit: bool
) -> None:
    outer = _raise_chained(cls(stream_id="s", op="send"), explicit)
    assert is_(outer) is True
    # Two levels deep, and past an unrelated error in the middle.
    assert is_(_raise_chained(outer, explicit)) is True
    assert is_(_raise_chained(ValueError("x"), explicit)) is False


def test_is_helpers_survive_cycles() -> None:
    a, b = ValueError("a"), KeyError("b")
    a.__context__ = b
    b.__context__ = a
    assert fe.is_stream_closed(a) is False
    c = fe.StreamClosed()
    b.__cause__ = c
    assert fe.is_stream_closed(a) is True
    c.__context__ = a  # a cycle through the match itself
    assert fe.is_stream_closed(c) is True
    assert fe.is_stream_full(a) is False


def test_is_helpers_on_a_long_chain() -> None:
    err: BaseException = fe.StreamFull()
    for i in range(5000):  # no recursion: deeper than the recursion limit
        nxt = RuntimeError(i)
        nxt.__cause__ = err
        err = nxt
    assert fe.is_stream_full(err) is True


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is 3.11+")
def test_is_helpers_search_exception_groups() -> None:
    group = ExceptionGroup("many", [ValueError(), ExceptionGroup("inner", [fe.StreamNotFound()])])  # noqa: F821
    assert fe.is_stream_not_found(group) is True
    assert fe.is_stream_closed(group) is False
