"""Warming: fill the pool of every catalogue topic for every part before students ask.

`warm(service, concurrency, deadline_seconds, progress)` runs bounded fills (each one a
single-flight refill, so warming beside live traffic or a second warmer costs no extra
call, and each one draws on the shared model budget like any other call).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from ielts_service.deadline import Deadline
from ielts_service.questions.items import PARTS
from ielts_service.questions.service import QuestionService

log = structlog.get_logger("ielts_service.warm")


@dataclass
class WarmProgress:
    """How far a warm has got: fills done, by outcome (`cached`, `filled`, `failed`)."""

    total: int
    outcomes: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    @property
    def done(self) -> int:
        return sum(self.outcomes.values())

    def line(self) -> str:
        o = self.outcomes
        return (f"{self.done}/{self.total} pools: {o['filled']} filled, {o['cached']} already "
                f"cached, {o['failed']} failed, in {time.monotonic() - self.started:.1f} s")


async def warm(service: QuestionService, *, concurrency: int, fill_seconds: float,
               progress: Callable[[WarmProgress], None] | None = None) -> WarmProgress:
    """Fill every (catalogue topic, part) pool, `concurrency` at a time."""
    jobs = [(area["topic"], part) for area in service.catalogue() for part in PARTS]
    state = WarmProgress(len(jobs))
    gate = asyncio.Semaphore(concurrency)

    async def one(topic: str, part: int) -> None:
        async with gate:
            outcome = await service.fill(topic, part, Deadline.after(fill_seconds))
        state.outcomes[outcome] += 1
        if progress is not None:
            progress(state)

    await asyncio.gather(*(one(topic, part) for topic, part in jobs))
    return state


async def warm_once(service: QuestionService, *, concurrency: int, fill_seconds: float) -> None:
    """`warm` unless another worker or instance already warms these prompts (WARM_ON_START)."""
    assert service.model is not None
    versions = "-".join(p.version for _, p in sorted(service.prompts.current.items()))
    claim = f"warm:{service.model.model}:{versions}"
    if not await service.store.once(claim, service.pools.soft_ttl_seconds):
        log.info("warm_skipped", reason="another worker or instance warms these prompts")
        return
    log.info("warm_started")
    result = await warm(service, concurrency=concurrency, fill_seconds=fill_seconds)
    log.info("warm_done", **result.outcomes, seconds=round(time.monotonic() - result.started, 1))
