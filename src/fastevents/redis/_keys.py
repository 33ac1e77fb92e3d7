"""Where a stream lives in Redis: the whole key layout, in one place.

A stream *name* (any non-empty ``str``) maps to one hash tag, so every key of one stream
hashes to one Redis Cluster slot and a script may touch them all. The tag is the
URL-safe base64 of the name's UTF-8 bytes (lone surrogates included, via
``surrogatepass``): its alphabet has no ``{``, ``}``, ``:`` or space, so no name can end
the tag early or collide with another name's keys.

Layout, for namespace ``ns`` and tag ``T``::

    ns:{T}:cur              string: the generation (instance id) the name points at now
    ns:{T}:<gen>:m          hash: the instance's state (see below)
    ns:{T}:<gen>:q          list: buffered events, "<seq> <json>", head is the next one
    ns:{T}:<gen>:h          list: received events kept for replay, newest at the tail
    ns:{T}:<gen>:s          stream (MAXLEN 1): the wake-up signal, ids 0-<signal version>
    ns:{T}:<gen>:w          hash: "<process>:<s|r>" -> "<count>:<lease deadline ms>"
    ns:{T}:<gen>:t:<token>  string: what one interruptible receive took (restore on Ctrl-C)
    ns:index                sorted set: the names of this namespace, by creation time
                            (no TTL: pruned of expired names by list/cleanup)

Keys are per *generation* so that a closed stream replaced under the same name
(``get_or_create``) is a new, empty instance, while objects still holding the old one can
drain it. The meta hash fields: ``closed`` (0/1), ``bs`` (buffer size), ``pol``
(policy), ``hist`` (history length), ``ttl`` (ms), ``seq`` (last accepted), ``rs``
(received), ``drop`` (dropped), ``act`` (ms of the last real operation), ``sv`` (signal
version), ``ex`` (ms of the last TTL refresh).
"""

from __future__ import annotations

import base64
from typing import NamedTuple

__all__ = ["InstanceKeys", "check_namespace", "index_key", "instance_keys", "name_prefix"]


def check_namespace(namespace: object) -> str:
    if not isinstance(namespace, str):
        raise TypeError(f"namespace must be a str, not {type(namespace).__name__}")
    if not namespace or "{" in namespace or "}" in namespace:
        raise ValueError(f"namespace must be non-empty and free of braces, got {namespace!r}")
    return namespace


def _tag(stream_id: str) -> str:
    raw = stream_id.encode("utf-8", "surrogatepass")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def name_prefix(namespace: str, stream_id: str) -> str:
    """``ns:{T}:`` -- everything of one stream name starts with it."""
    return f"{namespace}:{{{_tag(stream_id)}}}:"


def index_key(namespace: str) -> str:
    return f"{namespace}:index"


class InstanceKeys(NamedTuple):
    """The keys of one stream instance, in the order every instance script takes them."""

    m: str
    q: str
    h: str
    s: str
    w: str
    cur: str

    def token(self, token: str) -> str:
        return f"{self.m[:-1]}t:{token}"


def instance_keys(prefix: str, gen: str) -> InstanceKeys:
    base = f"{prefix}{gen}:"
    return InstanceKeys(base + "m", base + "q", base + "h", base + "s", base + "w", prefix + "cur")
