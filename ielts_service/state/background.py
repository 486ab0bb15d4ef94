"""Bounded background work (pool refills), logged with the request that started it and
cancelled cleanly at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from ielts_service.observability import tracing

log = structlog.get_logger("ielts_service.background")


class BackgroundTasks:
    """At most `limit` tasks at once and one per key; more are skipped, not queued."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def __repr__(self) -> str:
        return f"BackgroundTasks(running={len(self._tasks)}, limit={self.limit})"

    def spawn(self, key: str, kind: str, work: Callable[[], Awaitable[object]]) -> bool:
        """Start `work` unless the same key runs already or the limit is reached."""
        if key in self._tasks or len(self._tasks) >= self.limit:
            return False
        origin = structlog.contextvars.get_contextvars().get("request_id")
        task = asyncio.create_task(self._run(kind, origin, work))  # copies the log context
        self._tasks[key] = task
        task.add_done_callback(lambda _: self._tasks.pop(key, None))
        return True

    @staticmethod
    async def _run(kind: str, origin: str | None, work: Callable[[], Awaitable[object]]) -> None:
        structlog.contextvars.bind_contextvars(background=kind, origin_request_id=origin)
        # Its own trace, linked to the request that caused it (which has answered by now).
        with tracing.span(f"background {kind}", new_trace=True) as span:
            try:
                await work()
                log.info("background_done")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # logged and dropped: a refill failing is not fatal
                span.fail(type(exc).__name__)
                log.warning("background_failed", error=type(exc).__name__,
                            detail=str(exc)[:200])

    async def close(self) -> None:
        """Cancel whatever still runs and wait for it to stop."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
