"""The Lua scripts, one file per atomic operation, loaded with redis-py's ``register_script``.

``register_script`` gives a ``Script`` that runs ``EVALSHA`` and falls back to loading
the source when Redis answers ``NOSCRIPT`` (after a restart or ``SCRIPT FLUSH``).
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

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
        self._client = client

    def run(self, script: Script, keys: list[Any], args: list[Any]) -> Any:
        """``script(keys, args)`` for the hot paths: ``EVALSHA`` straight, loading the
        script only when Redis answers ``NOSCRIPT`` (what ``Script.__call__`` does, minus
        its per-call bookkeeping)."""
        try:
            return self._client.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            return script(keys=keys, args=args)
