"""The Lua scripts, one file per atomic operation, loaded with redis-py's ``register_script``.

``register_script`` gives a ``Script`` that runs ``EVALSHA`` and falls back to loading
the source when Redis answers ``NOSCRIPT`` (after a restart or ``SCRIPT FLUSH``).
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis
    from redis.commands.core import Script

NAMES = (
    "cleanup", "close", "create", "heartbeat", "lookup", "receive", "restore", "send",
    "set_policy", "touch",
)


def source(name: str) -> str:
    return (resources.files(__package__) / "scripts" / f"{name}.lua").read_text("utf-8")


class Scripts:
    """Every script, registered on one client."""

    def __init__(self, client: redis.Redis) -> None:
        loaded: dict[str, Script] = {n: client.register_script(source(n)) for n in NAMES}
        self.cleanup = loaded["cleanup"]
        self.close = loaded["close"]
        self.create = loaded["create"]
        self.heartbeat = loaded["heartbeat"]
        self.lookup = loaded["lookup"]
        self.receive = loaded["receive"]
        self.restore = loaded["restore"]
        self.send = loaded["send"]
        self.set_policy = loaded["set_policy"]
        self.touch = loaded["touch"]
