"""Issue 9, item 13: streams and managers refuse copy, deepcopy and pickle with one clear
``TypeError`` (a copy of a pure stream used to share the buffer but not ``closed``).

Both twins through ``stream_cls``; the manager is the same class for both.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from typing import Any

import pytest

import fastevents as fe

COPIERS: list[tuple[str, Callable[[Any], Any]]] = [
    ("copy", copy.copy),
    ("deepcopy", copy.deepcopy),
    ("pickle", lambda o: pickle.dumps(o)),
    ("pickle-0", lambda o: pickle.dumps(o, protocol=0)),
    ("deepcopy-inside", lambda o: copy.deepcopy({"k": [o]})),
]


@pytest.mark.parametrize("name, copier", COPIERS, ids=[n for n, _ in COPIERS])
def test_streams_refuse_copy_and_pickle(
    stream_cls: type, name: str, copier: Callable[[Any], Any]
) -> None:
    s = stream_cls(4, history=2, stream_id="c")
    e = fe.text_delta_event("x")
    s.send(e)
    with pytest.raises(TypeError, match="cannot copy or pickle") as info:
        copier(s)
    assert stream_cls.__name__ in str(info.value)
    # Nothing changed.
    assert len(s) == 1 and not s.closed
    assert s.receive(timeout=0) is e


@pytest.mark.parametrize("name, copier", COPIERS, ids=[n for n, _ in COPIERS])
def test_managers_refuse_copy_and_pickle(
    manager_factory: Callable[..., fe.StreamManager], name: str, copier: Callable[[Any], Any]
) -> None:
    m = manager_factory(4)
    m.create_stream("a")
    with pytest.raises(TypeError, match="cannot copy or pickle") as info:
        copier(m)
    assert "StreamManager" in str(info.value)
    assert m.list_streams() == ["a"]


def test_stream_info_still_copies(manager_factory: Callable[..., fe.StreamManager]) -> None:
    m = manager_factory(4)
    m.create_stream("a")
    info = m.get_stream_info("a")
    assert pickle.loads(pickle.dumps(info)) == info
    assert copy.copy(info) == info
