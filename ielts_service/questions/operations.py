"""What operators ask of the questions room: readiness and warming.

`check_dependencies`: can this worker answer questions? Each dependency is checked
concurrently, each within a timeout, so the answer comes in bounded time whatever a
dependency does. `warm`: fill the pool of every catalogue topic for every part before
students ask, in bounded fills (each a single-flight refill, so warming beside live
traffic or a second warmer costs no extra call, and each draws on the shared model budget).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from ielts_service.deadline import Deadline
from ielts_service.llm.client import ModelClient
from ielts_service.questions.items import PARTS
from ielts_service.questions.prompts import PromptStore
from ielts_service.state.pools import PoolStore, StoreError

if TYPE_CHECKING:  # the service uses the readiness checks; warming uses the service
    from ielts_service.questions.service import QuestionService

log = structlog.get_logger("ielts_service.warm")


class CheckFailed(Exception):
    """A readiness check found its dependency unusable."""


async def check_dependencies(store: PoolStore, prompts: PromptStore, model: ModelClient | None,
                             timeout: float) -> dict[str, dict[str, Any]]:
    """`{"cache": {...}, "prompts": {...}, "model": {...}}`, each with `state` ok or down."""

    async def cache() -> dict[str, Any]:
        await store.ping()
        return {"backend": store.backend}

    async def prompt_files() -> dict[str, Any]:
        loaded = sorted(prompts.current)
        if model is not None and loaded != list(PARTS):
            raise CheckFailed(f"prompts loaded for parts {loaded}, need {list(PARTS)}")
        # A broken edit is reported, while the last good version keeps serving.
        return {"parts": loaded, "reload_error": prompts.error}

    async def model_state() -> dict[str, Any]:
        # An open circuit is reported, not failed: pools and the bank still serve.
        if model is None:
            return {"provider": "bank", "model": "bank", "circuit": "none"}
        return {"provider": model.provider, "model": model.model, "circuit": model.circuit}

    checks = {"cache": cache(), "prompts": prompt_files(), "model": model_state()}
    results = await asyncio.gather(*(_timed(check, timeout) for check in checks.values()))
    return dict(zip(checks, results, strict=True))


async def _timed(check: Awaitable[dict[str, Any]], timeout: float) -> dict[str, Any]:
    started = time.monotonic()
    try:
        result = {"state": "ok", **await asyncio.wait_for(check, timeout)}
    except TimeoutError:
        result = {"state": "down", "error": "timeout"}
    except (StoreError, CheckFailed) as exc:
        result = {"state": "down", "error": str(exc)}
    result["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


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
    if not await service.store.once(claim, service.pools.settings.soft_ttl_seconds):
        log.info("warm_skipped", reason="another worker or instance warms these prompts")
        return
    log.info("warm_started")
    result = await warm(service, concurrency=concurrency, fill_seconds=fill_seconds)
    log.info("warm_done", **result.outcomes, seconds=round(time.monotonic() - result.started, 1))
