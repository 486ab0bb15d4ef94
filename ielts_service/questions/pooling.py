"""How a pool is made and kept: one model call (whole, or streamed item by item) whose valid
items, claimed against every other pool of the same prompt, land in the store; reads that
check what the store holds; refills and widenings, one at a time across every instance.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from ielts_service.deadline import Deadline
from ielts_service.llm.client import ModelClient
from ielts_service.observability.metrics import Metrics
from ielts_service.observability.timing import waiting
from ielts_service.questions.items import Item
from ielts_service.questions.prompts import PromptSet
from ielts_service.questions.validators import (
    ItemChecker,
    Problem,
    accept_items,
    fingerprint,
    parse_answer,
    unlike,
)
from ielts_service.state.flight import SingleFlight
from ielts_service.state.pools import LocalPools, Pool, PoolStore, StoreError
from ielts_service.state.quota import Allowance, Payer

log = structlog.get_logger("ielts_service.questions")


@dataclass(frozen=True)
class PoolSettings:
    size: int
    ttl_seconds: int
    soft_ttl_seconds: int  # past it a pool is served stale while one refill runs
    max_items: int  # widening stops here; past it a session sees repeats
    refill_timeout: float  # a background refill's own deadline
    local_ttl: float  # how long a worker serves a hot pool without asking Redis
    session_ttl: int  # how long a session's seen items are remembered
    stream: bool = True  # a cold request is served the first item of a streamed call


class PoolMaker:
    """Makes, reads and stores pools; every dependency is passed in."""

    def __init__(self, *, store: PoolStore, model: ModelClient | None, settings: PoolSettings,
                 metrics: Metrics, flight: SingleFlight, quota: Allowance | None) -> None:
        self.store, self.model, self.settings = store, model, settings
        self.metrics, self.flight, self.quota = metrics, flight, quota
        self.local = LocalPools(settings.local_ttl)

    async def cached(self, key: str, part: int, *, count: bool = True) -> Pool | None:
        """The pool under `key`, its items checked again. Counted lookups (a student's
        request) may be answered by this worker's local copy; uncounted ones
        (single-flight, refills) ask the store."""
        if count and (pool := self.local.get(key)) is not None:
            self.metrics.cache_requests.labels("stale" if pool.stale else "hit").inc()
            return pool
        try:
            with waiting("cache"):
                pool = await self.store.get(key)
        except StoreError:
            self.metrics.cache_requests.labels("error").inc()
            return None
        if pool is not None and (self.store.backend != "memory" or not pool.items):
            # What another process wrote is data, not items: a bad item costs a call, not a 500.
            items, rejected = accept_items(part, pool.items, dedupe=False)  # de-duplicated once
            self.rejected(part, rejected)
            pool = Pool(items, pool.fresh_until) if items else None
        if pool is not None:
            self.local.put(key, pool)
        if count:
            result = "miss" if pool is None else "stale" if pool.stale else "hit"
            self.metrics.cache_requests.labels(result).inc()
        return pool

    async def keep(self, key: str, items: list[Item]) -> None:
        pool = Pool(items, time.time() + self.settings.soft_ttl_seconds)
        self.local.put(key, pool)
        await self.store.put(key, pool, self.settings.ttl_seconds)

    async def generate(
        self, key: str, topic: str, prompt: PromptSet, deadline: Deadline, pool: list[Item],
        payer: Payer, *, replace: bool = False,
    ) -> list[Item]:
        """One model call, shown `pool`; its new items join (or replace) the pool (items that
        nearly repeat it are dropped). Returns the new items."""
        assert self.model is not None
        call = prompt.call(topic, prompt.items or self.settings.size, pool)
        batch = await self.model.generate(
            call, lambda payload: parse_answer(prompt.part, payload, self.rejected), deadline,
            payer.admission(self.quota))
        fresh = await self.claim(prompt, unlike(prompt.part, batch.items, pool, self.rejected))
        if not fresh and not pool:
            fresh = batch.items  # all seen elsewhere: still better than nothing
        items = (fresh or pool) if replace else pool + fresh
        await self.keep(key, items)
        return fresh

    async def generate_streamed(
        self, key: str, topic: str, prompt: PromptSet, payer: Payer,
        deliver: Callable[[list[Item]], Awaitable[None]], deadline: Deadline,
    ) -> None:
        """One streamed call: each valid item that no other pool holds goes to `deliver` as
        soon as it is written; the pool lands in the store once, at the end."""
        assert self.model is not None
        valid: list[Item] = []
        fresh: list[Item] = []

        async def hand_on(items: list[Item]) -> None:
            valid.extend(items)
            if new := await self.claim(prompt, items):
                fresh.extend(new)
                await deliver(new)

        checker = ItemChecker(prompt.part, self.rejected)
        await self.model.stream(prompt.call(topic, prompt.items or self.settings.size),
                                checker.accept, hand_on, deadline, payer.admission(self.quota))
        if not fresh:  # all seen elsewhere: still better than nothing
            await deliver(valid)
        await self.keep(key, fresh or valid)

    async def refill(self, key: str, topic: str, prompt: PromptSet, payer: Payer,
                     deadline: Deadline | None = None) -> None:
        """Replace a missing or stale pool; one refill at a time across every instance."""

        async def fresh() -> list[Item] | None:
            pool = await self.cached(key, prompt.part, count=False)
            return pool.items if pool and not pool.stale else None

        async def produce() -> list[Item]:
            stale = await self.cached(key, prompt.part, count=False)  # shown: write others
            return await self.generate(key, topic, prompt, deadline or self.refill_deadline(),
                                       stale.items if stale else [], payer, replace=True)

        await self.flight.run(key, fresh, produce, deadline or self.refill_deadline())

    async def widen(self, key: str, topic: str, prompt: PromptSet, payer: Payer,
                    deadline: Deadline | None = None) -> list[Item]:
        """Add a call's new items to the pool (up to `max_items`); return the new ones."""
        pool = await self.cached(key, prompt.part, count=False)
        if pool is None or len(pool.items) >= self.settings.max_items:
            return []
        return await self.generate(key, topic, prompt, deadline or self.refill_deadline(),
                                   pool.items, payer)

    def refill_deadline(self) -> Deadline:
        return Deadline.after(self.settings.refill_timeout)

    def rejected(self, part: int, problems: list[Problem]) -> None:
        for problem in problems:
            self.metrics.items_rejected.labels(str(part), problem.code).inc()
        if problems:
            log.info("ai_items_rejected", part=part, rejected=len(problems),
                     reasons=[f"{problem.code}: {problem}" for problem in problems])

    async def claim(self, prompt: PromptSet, items: list[Item]) -> list[Item]:
        """Drop items whose text another pool (or this one) already holds."""
        assert self.model is not None
        prints = [fingerprint(prompt.part, item) for item in items]
        new = await self.store.claim(f"{self.model.model}:{prompt.version}", prints,
                                     self.settings.ttl_seconds)
        if dropped := len(items) - len([p for p in prints if p in new]):
            self.rejected(prompt.part, [Problem("duplicate", "duplicate item")] * dropped)
        return [item for item, p in zip(items, prints, strict=True) if p in new]
