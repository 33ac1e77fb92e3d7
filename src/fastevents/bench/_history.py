"""H1: what ``history=N`` costs on the hot path (issue 10).

``send(ev); receive()`` in one thread, like P1, on a stream that keeps no history and on
one that keeps the last 1000 received events, for each twin: the ratio of the two rows,
measured in the same run, is the cost of history (target: at most 1.3x for the compiled
core).
"""

from __future__ import annotations

import functools
from itertools import repeat
from typing import Any

import fastevents as fe

from ._catalog import TIME, Case, Row, Scenario, Target
from ._peers import peer
from ._scenarios import Body, sample_event

HISTORY = 1000


def send_receive(cls: Any, history: int, n: int) -> Body:
    """``send(ev); receive()`` n times on ``cls(100, history=history)``."""
    s = cls(100, history=history)
    send, receive, ev = s.send, s.receive, sample_event()
    for _ in range(HISTORY + 100):  # fill the history ring first: steady state only
        send(ev)
        receive()

    def run() -> None:
        for _ in repeat(None, n):
            send(ev)
            receive()

    return Body(run, n)


def _case(key: str, name: str, cls: Any, reason: str) -> Case:
    def row(history: int) -> Row:
        label = f"{name} history={history}"
        rkey = f"{key}:h{history}"
        if cls is None:
            return Row(rkey, label, None, reason, peer=key)
        return Row(rkey, label, functools.partial(send_receive, cls, history), peer=key)

    targets = (Target(f"{key}:h{HISTORY}", f"{key}:h0", 1 / 1.3,
                      f"history={HISTORY} within 1.3x of history=0"),) if key == "fe-c" else ()
    return Case(name.split()[-1].strip("()"), (row(0), row(HISTORY)), f"{key}:h0",
                f"{name} history=0", fallback=None, targets=targets)


def _usable(key: str, cls: Any) -> tuple[Any, str]:
    """(cls, "") or (None, why it is skipped)."""
    if cls is None:
        return None, peer(key).reason
    try:
        cls(1, history=HISTORY)
    except TypeError as exc:  # a core built before history= existed
        return None, f"this core has no history= ({exc})"
    return cls, ""


def _cases() -> list[Case]:
    # One case per twin (each row compared with the same twin at history=0); a twin that
    # is not there gets no case at all rather than a case with nothing measured.
    cases = []
    for key, name, cls in (("fe-c", "fastevents (cython)", fe.CEventStream),
                           ("fe-py", "fastevents (python)", fe.PyEventStream)):
        usable, _why = _usable(key, cls)
        if usable is not None:
            cases.append(_case(key, name, usable, ""))
    return cases


SCENARIO = Scenario("H1", f"send + receive with history={HISTORY} vs history=0", TIME,
                    "one send + one receive", _cases, warm_ops=20_000, min_ops=10_000)
