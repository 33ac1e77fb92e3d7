"""Run one uvicorn worker on a listening socket inherited from the test (``--fd N``).

The test owns the socket, so a worker can be killed and another started on the very
same port (a "restart" that browsers reconnect to), and no port is ever raced for.
Usage: ``python _serve.py FD MODULE:APP``.
"""

from __future__ import annotations

import os
import socket
import sys

import uvicorn


def main() -> None:
    fd, app = int(sys.argv[1]), sys.argv[2]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sock = socket.socket(fileno=fd)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=30)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it shut down for
        pass


if __name__ == "__main__":
    main()
