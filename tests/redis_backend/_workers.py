"""Process bodies for the multi-process Redis tests (spawned, so importable by name)."""

from __future__ import annotations

import time
from typing import Any

import fastevents as fe
from fastevents.redis import RedisStreamManager


def produce(url: str, ns: str, sid: str, producer: int, n: int) -> int:
    with RedisStreamManager(url, namespace=ns) as m:
        s = m.get_stream(sid)
        for i in range(n):
            s.send(fe.text_delta_event(f"{producer}:{i}"), timeout=60)
    return n


def produce_batches(url: str, ns: str, sid: str, producer: int, n: int) -> int:
    with RedisStreamManager(url, namespace=ns) as m:
        s = m.get_stream(sid)
        i = 0
        while i < n:
            k = min(7, n - i)
            s.send_many([fe.text_delta_event(f"{producer}:{j}") for j in range(i, i + k)],
                        timeout=60)
            i += k
    return n


def consume(url: str, ns: str, sid: str) -> list[str]:
    with RedisStreamManager(url, namespace=ns) as m:
        s = m.get_stream(sid)
        out = []
        while True:
            batch = s.receive_many(5, timeout=60)
            if not batch:
                return out
            out.extend(e.data["text"] for e in batch)


def race_get_or_create(url: str, ns: str, sid: str, start_at: float) -> tuple[bool, str]:
    with RedisStreamManager(url, namespace=ns) as m:
        time.sleep(max(0.0, start_at - time.time()))
        s, created = m.get_or_create(sid)
        return created, s.instance_id


def close_stream(url: str, ns: str, sid: str) -> None:
    with RedisStreamManager(url, namespace=ns) as m:
        m.get_stream(sid).close()


def cleanup(url: str, ns: str, threshold: float) -> int:
    with RedisStreamManager(url, namespace=ns) as m:
        return m.cleanup_inactive(threshold)


def run(fn: Any, *args: Any) -> Any:
    return fn(*args)
