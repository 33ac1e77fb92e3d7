"""The chat example's web app: a prompt in, the answer out live over server-sent events.

``create_app()`` builds it; ``python -m examples.chat`` serves it with uvicorn. With
``FASTEVENTS_CHAT_REDIS`` set (``--redis``), streams live in Redis and every worker
process can serve every session; otherwise they live in this process.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

import fastevents as fe
from fastevents.sse import EventStreamResponse

from .producers import Producer, pick_producer

# Enough history to replay a whole answer: a reconnect, however late, resumes exactly.
HISTORY = 10_000
# A small buffer: a slow reader throttles the provider instead of growing memory.
BUFFER_SIZE = 64
INDEX_HTML = Path(__file__).with_name("static") / "index.html"
# In-process sessions idle this long are forgotten (Redis keys expire by their ttl), so a
# long-running server does not keep every answer it ever gave.
IDLE_SESSION = 3600.0


class Prompt(BaseModel):
    prompt: str = Field(min_length=1, max_length=20_000)


def make_manager(redis_url: str | None) -> Any:
    """In-process streams, or Redis-backed ones shared by every worker."""
    if redis_url:
        from fastevents.redis import RedisStreamManager

        # ttl: an abandoned session's keys vanish an hour after its last activity.
        return RedisStreamManager(
            redis_url, buffer_size=BUFFER_SIZE, history=HISTORY, ttl=3600.0,
        )
    return fe.StreamManager(buffer_size=BUFFER_SIZE, history=HISTORY)


def create_app(
    redis_url: str | None = None, producer: Producer | None = None,
) -> FastAPI:
    if redis_url is None:
        redis_url = os.environ.get("FASTEVENTS_CHAT_REDIS") or None
    manager = make_manager(redis_url)
    if producer is None:
        provider, producer = pick_producer()
    else:
        provider = getattr(producer, "__name__", "custom")
    produce: Producer = producer
    tasks: set[asyncio.Task[None]] = set()

    async def forget_idle_sessions() -> None:
        while True:
            await asyncio.sleep(IDLE_SESSION / 10)
            await asyncio.to_thread(manager.cleanup_inactive, IDLE_SESSION)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cleaner = None if redis_url else asyncio.create_task(forget_idle_sessions())
        yield
        if cleaner is not None:
            cleaner.cancel()
        # Shutting down: stop the answers still being produced here (their streams are
        # closed by the producers' finally), then release Redis connections.
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if redis_url:
            manager.close()

    app = FastAPI(title="fastevents chat", lifespan=lifespan)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return INDEX_HTML.read_text(encoding="utf-8")

    @app.get("/info")
    async def info() -> dict[str, Any]:
        return {"provider": provider, "redis": bool(redis_url), "pid": os.getpid()}

    @app.post("/chat")
    async def chat(body: Prompt) -> dict[str, Any]:
        session = secrets.token_urlsafe(12)
        # Manager calls may talk to Redis: keep them off the event loop.
        stream = await asyncio.to_thread(manager.create_stream, session)
        task = asyncio.create_task(produce(body.prompt, stream))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return {"session": session, "pid": os.getpid()}

    @app.get("/chat/{session}/events")
    async def events(session: str) -> Response:
        try:
            stream = await asyncio.to_thread(manager.get_stream, session)
        except fe.StreamNotFound:
            raise HTTPException(status_code=404, detail="no such chat session") from None
        except ConnectionError:
            # Redis unreachable (RedisUnavailable): any status but 200 would make the
            # page's EventSource give up for good; this one says "come back in 2 s".
            return Response(b"retry: 2000\n\n", media_type="text/event-stream")
        # The response reads the browser's Last-Event-ID itself and resumes from it.
        return EventStreamResponse(stream, ping=5.0)

    return app
