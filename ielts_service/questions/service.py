"""`QuestionService`: one item for a topic and part, from a pool, the model or the bank.

Order: the pool for (model, prompt version, part, topic) if one is cached; else one model
call whose valid items become the pool; if the model cannot be reached, the bank's item
for the same topic area (`degraded`), and only when there is none, 503. A session that
has seen a whole pool gets the pool widened by another call rather than a repeat.
"""

from __future__ import annotations

import functools
import random
import time
from dataclasses import dataclass
from typing import Any

import structlog

from ielts_service.deadline import Deadline
from ielts_service.errors import APIError
from ielts_service.state.background import BackgroundTasks
from ielts_service.questions.bank import Bank, BankTopic
from ielts_service.llm.budget import BudgetExhausted
from ielts_service.state.flight import SingleFlight
from ielts_service.questions.items import Item, item_id, to_data
from ielts_service.llm.client import DeadlineExceeded, ModelClient, ModelUnavailable
from ielts_service.state.pools import CacheError, LocalPools, Pool, PoolStore, pool_key
from ielts_service.questions.prompt_store import PromptStore
from ielts_service.questions.prompts import PromptSet
from ielts_service.llm.retry import ContentFiltered
from ielts_service.questions.topics import is_avoided, normalise_topic
from ielts_service.questions.validators import fingerprint
from ielts_service.observability.metrics import Metrics

log = structlog.get_logger("ielts_service.questions")

DEFAULT_RETRY_AFTER = 10
MAPPING_COVERAGE = 0.5  # free text joins a catalogue pool when half its words match


@dataclass(frozen=True)
class PoolSettings:
    size: int = 5
    ttl_seconds: int = 86400
    soft_ttl_seconds: int = 21600  # past it a pool is served stale while one refill runs
    max_items: int = 20  # widening stops here; past it a session sees repeats
    background_timeout: float = 60.0  # a refill's own deadline
    local_ttl: float = 2.0  # how long a worker serves a hot pool without asking Redis


@functools.lru_cache(maxsize=8192)
def pool_topic(bank: Bank, topic: str) -> str:
    """The topic a pool is kept under: its catalogue area when close enough, else itself.

    Cached: popular topics arrive over and over, and the bank never changes."""
    area = bank.match(topic, MAPPING_COVERAGE)
    return area.name if area else normalise_topic(topic)


def reject_avoided(topic: str | None) -> None:
    if topic is not None and is_avoided(topic):
        raise APIError(422, "topic_rejected",
                       "this topic is not used in the IELTS Speaking test; choose another")


class QuestionService:
    """Holds what a question needs; every dependency is passed in."""

    def __init__(
        self,
        *,
        store: PoolStore,
        bank: Bank,
        prompts: PromptStore,
        model: ModelClient | None,
        pools: PoolSettings,
        metrics: Metrics,
        flight: SingleFlight,
        background: BackgroundTasks,
    ) -> None:
        self.store = store
        self.bank = bank
        self.prompts = prompts
        self.model = model
        self.pools = pools
        self.metrics = metrics
        self.flight = flight
        self.background = background
        self.local = LocalPools(pools.local_ttl if store.redis is not None else 0.0)

    async def question(
        self, topic: str | None, part: int, session_id: str | None, deadline: Deadline
    ) -> dict[str, Any]:
        """The `data` of a /generate-question answer."""
        reject_avoided(topic)
        if self.model is None:
            area = self._bank_area(topic)
            return await self._serve_bank(area, part, session_id, degraded=False)
        norm = pool_topic(self.bank, topic) if topic else self.bank.random_topic().name
        prompt = self.prompts.current[part]
        key = pool_key(part, norm, prompt.version, self.model.model)
        pool = await self._cached(key)
        if pool is None:
            return await self._cold(key, norm, prompt, session_id, deadline)
        if pool.stale:
            self.background.spawn(key, "refill", lambda: self._refill(key, norm, prompt))
        seen = await self._seen(session_id, key)
        unseen = [item for item in pool.items if item_id(part, item) not in seen]
        if unseen or session_id is None or len(pool.items) >= self.pools.max_items:
            if session_id is not None and len(unseen) <= 2:  # refill ahead of need
                self.background.spawn(key, "widen", lambda: self._widen(key, norm, prompt))
            return await self._serve(key, norm, prompt, unseen or pool.items, session_id, "cache")
        # This session has seen the whole pool: widen it now rather than repeat.
        try:
            fresh = await self._widen(key, norm, prompt, deadline)
        except (ContentFiltered, ModelUnavailable, DeadlineExceeded, BudgetExhausted):
            fresh = []
        source = "ai" if fresh else "cache"
        return await self._serve(key, norm, prompt, fresh or pool.items, session_id, source)

    async def _cold(
        self, key: str, topic: str, prompt: PromptSet, session_id: str | None, deadline: Deadline
    ) -> dict[str, Any]:
        """A miss: one model call for everyone missing this pool (single-flight)."""

        async def landed() -> list[Item] | None:
            pool = await self._cached(key, count=False)
            return pool.items if pool else None

        async def produce() -> list[Item]:
            return await self._generate(key, topic, prompt, Deadline.after(
                max(deadline.remaining(), 0.0)), [])

        try:
            items, produced = await self.flight.run(key, landed, produce, deadline)
        except ContentFiltered:
            raise APIError(422, "content_filtered",
                           "the model's content filter refused this topic; choose another") from None
        except (ModelUnavailable, DeadlineExceeded) as exc:
            return await self._fallback(topic, prompt.part, session_id, exc)
        return await self._serve(key, topic, prompt, items, session_id,
                                 "ai" if produced else "cache")

    async def _refill(self, key: str, topic: str, prompt: PromptSet) -> None:
        """Replace a stale pool; one refill at a time across every instance."""

        async def fresh() -> list[Item] | None:
            pool = await self._cached(key, count=False)
            return pool.items if pool and not pool.stale else None

        async def produce() -> list[Item]:
            return await self._generate(key, topic, prompt, self._background_deadline(), [],
                                        replace=True)

        await self.flight.run(key, fresh, produce, self._background_deadline())

    async def _widen(self, key: str, topic: str, prompt: PromptSet,
                     deadline: Deadline | None = None) -> list[Item]:
        """Add a call's new items to the pool (up to `max_items`); return the new ones."""
        pool = await self._cached(key, count=False)
        if pool is None or len(pool.items) >= self.pools.max_items:
            return []
        return await self._generate(key, topic, prompt,
                                    deadline or self._background_deadline(), pool.items)

    def _background_deadline(self) -> Deadline:
        return Deadline.after(self.pools.background_timeout)

    async def _generate(
        self, key: str, topic: str, prompt: PromptSet, deadline: Deadline, pool: list[Item],
        *, replace: bool = False,
    ) -> list[Item]:
        """One model call; its new items join (or replace) the pool. Returns the new items."""
        assert self.model is not None
        count = prompt.items or self.pools.size
        generation = await self.model.generate(prompt, topic, count, deadline)
        fresh = await self._claim(prompt, generation.items)
        if not fresh and not pool:
            fresh = generation.items  # all seen elsewhere: still better than nothing
        items = (fresh or pool) if replace else pool + fresh
        await self._store(key, items)
        return fresh

    async def _claim(self, prompt: PromptSet, items: list[Item]) -> list[Item]:
        """Drop items whose text another pool (or this one) already holds."""
        assert self.model is not None
        scope = f"{self.model.model}:{prompt.version}"
        prints = [fingerprint(prompt.part, item) for item in items]
        try:
            new = await self.store.claim(scope, prints, self.pools.ttl_seconds)
        except CacheError as exc:
            log.warning("cache_error", op="claim", error=str(exc))
            return items
        if dropped := len(items) - len([p for p in prints if p in new]):
            self.metrics.items_rejected.labels(str(prompt.part), "duplicate").inc(dropped)
        return [item for item, p in zip(items, prints, strict=True) if p in new]

    async def _serve(
        self, key: str, topic: str, prompt: PromptSet, items: list[Item],
        session_id: str | None, source: str,
    ) -> dict[str, Any]:
        item = random.choice(items)
        await self._mark_seen(session_id, key, item_id(prompt.part, item))
        return to_data(prompt.part, topic, item, source=source, degraded=False,
                       prompt_version=prompt.version)

    def _bank_area(self, topic: str | None) -> BankTopic:
        if topic is None:
            return self.bank.random_topic()
        return self.bank.match(topic) or self.bank.fallback_topic(topic)

    async def _serve_bank(
        self, area: BankTopic, part: int, session_id: str | None, *, degraded: bool
    ) -> dict[str, Any]:
        key = f"bank:{self.bank.version}:p{part}:{area.name}"
        seen = await self._seen(session_id, key)
        items = area.items[part]
        item = random.choice([i for i in items if item_id(part, i) not in seen] or items)
        await self._mark_seen(session_id, key, item_id(part, item))
        return to_data(part, area.name, item, source="bank", degraded=degraded,
                       prompt_version=self.bank.version)

    async def _fallback(
        self, topic: str, part: int, session_id: str | None, exc: Exception
    ) -> dict[str, Any]:
        area = self.bank.match(topic)
        log.warning("ai_fallback", reason=str(exc) or type(exc).__name__,
                    served="bank" if area else "nothing")
        if area is not None:
            return await self._serve_bank(area, part, session_id, degraded=True)
        if isinstance(exc, DeadlineExceeded):
            raise APIError(504, "timeout", "the question took too long to generate; try again")
        retry_after = getattr(exc, "retry_after", None) or DEFAULT_RETRY_AFTER
        raise APIError(503, "upstream_unavailable",
                       "the question generator is unavailable right now; try again later",
                       headers={"Retry-After": str(retry_after)})

    async def _cached(self, key: str, *, count: bool = True) -> Pool | None:
        """The pool under `key`. Counted lookups (a student's request) may be answered by
        this worker's local copy; uncounted ones (single-flight, refills) ask the store."""
        if count and (pool := self.local.get(key)) is not None:
            self.metrics.cache_requests.labels("stale" if pool.stale else "hit").inc()
            return pool
        try:
            pool = await self.store.get(key)
        except CacheError as exc:
            log.warning("cache_error", op="get", error=str(exc))
            self.metrics.cache_requests.labels("error").inc()
            return None
        pool = pool if pool and pool.items else None
        if pool is not None:
            self.local.put(key, pool)
        if count:
            result = "miss" if pool is None else "stale" if pool.stale else "hit"
            self.metrics.cache_requests.labels(result).inc()
        return pool

    async def _store(self, key: str, items: list[Item]) -> None:
        pool = Pool(items, time.time() + self.pools.soft_ttl_seconds)
        self.local.put(key, pool)
        try:
            await self.store.put(key, pool, self.pools.ttl_seconds)
        except CacheError as exc:
            log.warning("cache_error", op="put", error=str(exc))

    async def _seen(self, session_id: str | None, key: str) -> set[str]:
        if session_id is None:
            return set()
        try:
            return await self.store.seen(session_id, key)
        except CacheError as exc:
            log.warning("cache_error", op="seen", error=str(exc))
            return set()

    async def _mark_seen(self, session_id: str | None, key: str, item: str) -> None:
        if session_id is None:
            return
        try:
            await self.store.mark_seen(session_id, key, item, self.pools.ttl_seconds)
        except CacheError as exc:
            log.warning("cache_error", op="mark_seen", error=str(exc))
