"""``python -m examples.chat``: serve the chat example with uvicorn.

    python -m examples.chat                                   # one process, in-memory streams
    python -m examples.chat --redis redis://127.0.0.1:6379/0 --workers 4
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.chat", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes (more than one needs --redis)")
    parser.add_argument("--redis", metavar="URL",
                        help="share streams through Redis, e.g. redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.workers > 1 and not args.redis:
        # In-memory streams live in one process: a reconnect that lands on another
        # worker would find no session there.
        parser.error("several workers share sessions only through Redis: add --redis URL")

    import uvicorn

    if args.redis:
        # Worker processes build the app themselves (factory=True): pass the URL down.
        os.environ["FASTEVENTS_CHAT_REDIS"] = args.redis
    else:
        os.environ.pop("FASTEVENTS_CHAT_REDIS", None)
    uvicorn.run("examples.chat.app:create_app", factory=True, host=args.host,
                port=args.port, workers=args.workers, timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
