"""How a pool is made and kept: one model call (whole, or streamed item by item) whose valid
items, claimed against every other pool of the same prompt, land in the store; reads that
check what the store holds; refills and widenings, one at a time across every instance.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from ielts_service.deadline import Deadline
from ielts_service.llm.client import ModelClient
from ielts_service.observability.metrics import Metrics
from ielts_service.observability.timing import waiting
from ielts_service.questions.items import Item, item_id
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
    serves_per_item: int = 1  # widen once every item was served this often; 0: no counting


class PoolMaker:
    """Makes, reads and stores pools; every dependency is passed in."""

    def __init__(self, *, store: PoolStore, model: ModelClient | None, settings: PoolSettings,
                 metrics: Metrics, flight: SingleFlight, quota: Allowance | None) -> None:
        self.store, self.model, self.settings = store, model, settings
        self.metrics, self.flight, self.quota = metrics, flight, quota
        self.local = LocalPools(settings.local_ttl)
        self._ids: dict[str, tuple[list[Item], dict[int, str]]] = {}  # see `ids`

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

    async def keep(self, key: str, items: list[Item], fresh_until: float | None = None) -> None:
        """Store the pool, fresh for `soft_ttl_seconds` (a widened pool keeps its own)."""
        pool = Pool(items, fresh_until or time.time() + self.settings.soft_ttl_seconds)
        self.local.put(key, pool)
        await self.store.put(key, pool, self.settings.ttl_seconds)

    async def generate(
        self, key: str, topic: str, prompt: PromptSet, deadline: Deadline, pool: list[Item],
        payer: Payer, *, replace: bool = False, fresh_until: float | None = None,
    ) -> list[Item]:
        """One model call, shown `pool`; its new items join (or replace) the pool (items that
        nearly repeat it are dropped). Returns the new items."""
        assert self.model is not None
        call = prompt.call(topic, self.batch(prompt), pool)
        batch = await self.model.generate(
            call, lambda payload: parse_answer(prompt.part, payload, self.rejected), deadline,
            payer.admission(self.quota))
        fresh = await self.claim(prompt, unlike(prompt.part, batch.items, pool, self.rejected))
        if not fresh and not pool:
            fresh = batch.items  # all seen elsewhere: still better than nothing
        if not replace:
            fresh = fresh[:max(0, self.settings.max_items - len(pool))]
        items = (fresh or pool) if replace else pool + fresh
        await self.keep(key, items, fresh_until)
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
        await self.model.stream(prompt.call(topic, self.batch(prompt)),
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

    async def widen(self, key: str, topic: str, prompt: PromptSet, payer: Payer, since: int,
                    deadline: Deadline | None = None) -> list[Item]:
        """Grow the pool past the `since` items the caller saw by one call's new items (up
        to `max_items`), and return the new ones: single-flight across every instance, and
        at most one call per size (a call that added nothing is not repeated at once), so
        whoever asks to grow the same pool from the same size shares one call."""
        deadline = deadline or self.refill_deadline()

        async def grown() -> list[Item] | None:
            pool = await self.cached(key, prompt.part, count=False)
            return pool.items[since:] if pool is not None and len(pool.items) > since else None

        async def produce() -> list[Item]:
            pool = await self.cached(key, prompt.part, count=False)
            if pool is None or len(pool.items) >= self.settings.max_items:
                return []
            if len(pool.items) > since:
                return pool.items[since:]
            # One call per size of this pool (a refill makes a new pool: a new name).
            name = f"widen:{key}:{since}:{pool.fresh_until:.0f}"
            if not await self.store.once(name, int(self.settings.refill_timeout)):
                return []
            return await self.generate(key, topic, prompt, deadline, pool.items, payer,
                                       fresh_until=pool.fresh_until)

        if (ready := await grown()) is not None:
            return ready
        fresh, _ = await self.flight.run(f"{key}:widen:{since}", grown, produce, deadline)
        return fresh

    def can_widen(self, size: int) -> bool:
        return size < self.settings.max_items

    def batch(self, prompt: PromptSet) -> int:
        """The items one call of `prompt` is asked for."""
        return prompt.items or self.settings.size

    def ids(self, key: str, part: int, pool: list[Item]) -> dict[int, str]:
        """The item ids of `pool` by each item's identity: computed once per pool read
        (a local copy serves the same list for `local_ttl`), not on every request (30 ids
        cost ~0.4 ms of CPU)."""
        entry = self._ids.get(key)
        if entry is not None and entry[0] is pool:
            return entry[1]
        if len(self._ids) >= 4096:
            self._ids.clear()
        ids = {id(item): item_id(part, item) for item in pool}
        self._ids[key] = (pool, ids)
        return ids

    def item_ids(self, key: str, part: int, pool: list[Item], items: list[Item]) -> list[str]:
        """The ids of `items`, members of `pool` (or not: then computed)."""
        known = self.ids(key, part, pool)
        return [known.get(id(item)) or item_id(part, item) for item in items]

    async def pick(self, key: str, part: int, candidates: list[Item], pool: list[Item], *,
                   strict: bool) -> tuple[Item | None, int]:
        """The least-served of `candidates` across every session and instance (a random one
        of those tied), counted; and how many of `pool`'s items are still under
        `serves_per_item`. `strict`: None rather than an item already served that often."""
        target = self.settings.serves_per_item
        if target == 0 or not candidates:
            return (random.choice(candidates) if candidates else None), len(pool)
        shuffled = random.sample(candidates, len(candidates))
        ids = dict(zip(self.item_ids(key, part, pool, shuffled), shuffled, strict=True))
        with waiting("cache"):
            served = await self.store.serve(key, list(ids), self.item_ids(key, part, pool, pool),
                                            target, self.settings.ttl_seconds, strict=strict)
        return (ids.get(served.item_id) if served.item_id else None), served.under

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
