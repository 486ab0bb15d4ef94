"""`QuestionService`: one item for a topic and part, from a pool, the model or the bank.

Order: the pool for (model, prompt version, part, topic) if one is cached (its items
checked again: a store holds data); else one model call whose valid items become the
pool; if the model cannot be reached, the bank's items on the same topic (`degraded`), and
only when there are none, `NoQuestion`. A session that has seen a whole pool gets it
widened (the call sees the pool; near-repeats are dropped). A mock test's Part 3 is written
for its card. Every model attempt a request causes is charged to its `Payer`: past its
quota the bank answers, else `QuotaExhausted`; a GET gets pools or the bank only.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

import structlog

from ielts_service.deadline import Deadline, DeadlineExceeded
from ielts_service.llm.client import ModelClient
from ielts_service.llm.errors import ContentFiltered, ModelUnavailable
from ielts_service.observability.metrics import Metrics
from ielts_service.observability.timing import waiting
from ielts_service.questions.bank import Bank, pool_topic
from ielts_service.questions.items import Item, fingerprint, item_id, to_data
from ielts_service.questions.prompts import PromptSet, PromptStore
from ielts_service.questions.readiness import check_dependencies
from ielts_service.questions.topics import reject_avoided
from ielts_service.questions.validators import Problem, accept_items, parse_answer, unlike
from ielts_service.state.background import BackgroundTasks
from ielts_service.state.flight import SingleFlight
from ielts_service.state.pools import LocalPools, Pool, PoolStore, StoreError, pool_key
from ielts_service.state.quota import OPERATOR, Allowance, Payer, QuotaExhausted

log = structlog.get_logger("ielts_service.questions")
DEFAULT_RETRY_AFTER = 10


@dataclass(frozen=True)
class PoolSettings:
    size: int
    ttl_seconds: int
    soft_ttl_seconds: int  # past it a pool is served stale while one refill runs
    max_items: int  # widening stops here; past it a session sees repeats
    refill_timeout: float  # a background refill's own deadline
    local_ttl: float  # how long a worker serves a hot pool without asking Redis
    session_ttl: int  # how long a session's seen items are remembered


class NoQuestion(Exception):
    """Nothing to serve: the model is unreachable and the bank has no area for the topic."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"no question; retry after {retry_after} s")
        self.retry_after = retry_after


class NotCached(Exception):
    """A request that may not call the model found no pool, and the bank has no area."""


class QuestionService:
    """Holds what a question needs; every dependency is passed in."""

    def __init__(self, *, store: PoolStore, bank: Bank, prompts: PromptStore,
                 model: ModelClient | None, pools: PoolSettings, metrics: Metrics,
                 flight: SingleFlight, background: BackgroundTasks,
                 quota: Allowance | None = None) -> None:
        self.store, self.bank, self.prompts, self.model = store, bank, prompts, model
        self.pools, self.metrics, self.quota = pools, metrics, quota
        self.flight, self.background = flight, background
        self.local = LocalPools(pools.local_ttl)

    async def question(
        self, topic: str | None, part: int, session_id: str | None, deadline: Deadline,
        payer: Payer = OPERATOR, card: Item | None = None,
    ) -> dict[str, Any]:
        """The `data` of a /generate-question answer; a Part 3 is written for `card`, if any."""
        reject_avoided(topic)
        card = card if part == 3 else None
        if self.model is None:
            return await self._serve_bank(*self.bank.choose(topic, part, card), part, session_id,
                                          degraded=False)
        norm = pool_topic(self.bank, topic) if topic else self.bank.random_topic().name
        prompt = self.prompts.current[part].for_card(card)  # the card's own pool and prompt
        key = pool_key(part, prompt.pool_name(norm), prompt.version, self.model.model)
        pool = await self._cached(key, part)
        if pool is None:
            if not payer.fresh:
                return await self._fallback(norm, part, session_id, NotCached(norm), card)
            return await self._cold(key, norm, prompt, session_id, deadline, payer, card)
        if pool.stale and payer.fresh:
            self.background.spawn(key, "refill", lambda: self._refill(key, norm, prompt, payer))
        with waiting("cache"):
            seen = await self.store.seen(session_id, key) if session_id else set()
        unseen = [item for item in pool.items if item_id(part, item) not in seen]
        if (unseen or session_id is None or len(pool.items) >= self.pools.max_items
                or not payer.fresh):
            if payer.fresh and session_id is not None and len(unseen) <= 2:  # ahead of need
                self.background.spawn(key, "widen",
                                      lambda: self._widen(key, norm, prompt, payer))
            return await self._serve(key, norm, prompt, unseen or pool.items, session_id, "cache")
        # This session has seen the whole pool: widen it now rather than repeat.
        try:
            with waiting("model"):
                fresh = await self._widen(key, norm, prompt, payer, deadline)
        except (ContentFiltered, ModelUnavailable, DeadlineExceeded, QuotaExhausted):
            fresh = []
        source = "ai" if fresh else "cache"
        return await self._serve(key, norm, prompt, fresh or pool.items, session_id, source)

    async def _cold(
        self, key: str, topic: str, prompt: PromptSet, session_id: str | None, deadline: Deadline,
        payer: Payer, card: Item | None,
    ) -> dict[str, Any]:
        """A miss: one model call for everyone missing this pool (single-flight). A client
        past its quota is answered without joining (or starting) the call."""

        async def landed() -> list[Item] | None:
            pool = await self._cached(key, prompt.part, count=False)
            return pool.items if pool else None

        async def produce() -> list[Item]:
            return await self._generate(key, topic, prompt, Deadline(deadline.at), [], payer)

        try:
            if (check := payer.admission(self.quota, spend=False)) is not None:
                await check()
            with waiting("model"):  # also when another request's call is the one we wait on
                items, produced = await self.flight.run(key, landed, produce, deadline)
        except (ModelUnavailable, DeadlineExceeded, QuotaExhausted) as exc:
            return await self._fallback(topic, prompt.part, session_id, exc, card)
        return await self._serve(key, topic, prompt, items, session_id,
                                 "ai" if produced else "cache")

    async def _refill(self, key: str, topic: str, prompt: PromptSet, payer: Payer,
                      deadline: Deadline | None = None) -> None:
        """Replace a missing or stale pool; one refill at a time across every instance."""

        async def fresh() -> list[Item] | None:
            pool = await self._cached(key, prompt.part, count=False)
            return pool.items if pool and not pool.stale else None

        async def produce() -> list[Item]:
            stale = await self._cached(key, prompt.part, count=False)  # shown: write others
            return await self._generate(key, topic, prompt, deadline or self._refill_deadline(),
                                        stale.items if stale else [], payer, replace=True)

        await self.flight.run(key, fresh, produce, deadline or self._refill_deadline())

    async def fill(self, topic: str, part: int, deadline: Deadline) -> str:
        """Have the pool of (topic, part) cached and fresh ahead of students: `cached` when
        it was, `filled` when a model call (ours or another worker's) filled it, `failed`."""
        assert self.model is not None
        norm = pool_topic(self.bank, topic)
        prompt = self.prompts.current[part]
        key = pool_key(part, norm, prompt.version, self.model.model)
        pool = await self._cached(key, part, count=False)
        if pool is not None and not pool.stale:
            return "cached"
        try:
            await self._refill(key, norm, prompt, OPERATOR, deadline)
        except (ContentFiltered, ModelUnavailable, DeadlineExceeded):
            return "failed"
        return "filled"

    async def _widen(self, key: str, topic: str, prompt: PromptSet, payer: Payer,
                     deadline: Deadline | None = None) -> list[Item]:
        """Add a call's new items to the pool (up to `max_items`); return the new ones."""
        pool = await self._cached(key, prompt.part, count=False)
        if pool is None or len(pool.items) >= self.pools.max_items:
            return []
        return await self._generate(key, topic, prompt, deadline or self._refill_deadline(),
                                    pool.items, payer)

    def _refill_deadline(self) -> Deadline:
        return Deadline.after(self.pools.refill_timeout)

    async def _generate(
        self, key: str, topic: str, prompt: PromptSet, deadline: Deadline, pool: list[Item],
        payer: Payer, *, replace: bool = False,
    ) -> list[Item]:
        """One model call, shown `pool`; its new items join (or replace) it and are returned."""
        assert self.model is not None
        call = prompt.call(topic, prompt.items or self.pools.size, pool)
        batch = await self.model.generate(
            call, lambda payload: parse_answer(prompt.part, payload, self._rejected), deadline,
            payer.admission(self.quota))
        fresh = await self._claim(prompt, unlike(prompt.part, batch.items, pool, self._rejected))
        if not fresh and not pool:
            fresh = batch.items  # all seen elsewhere: still better than nothing
        items = (fresh or pool) if replace else pool + fresh
        await self._store(key, items)
        return fresh

    def _rejected(self, part: int, problems: list[Problem]) -> None:
        for problem in problems:
            self.metrics.items_rejected.labels(str(part), problem.code).inc()
        if problems:
            log.info("ai_items_rejected", part=part, rejected=len(problems),
                     reasons=[f"{problem.code}: {problem}" for problem in problems])

    async def _claim(self, prompt: PromptSet, items: list[Item]) -> list[Item]:
        """Drop items whose text another pool (or this one) already holds."""
        assert self.model is not None
        prints = [fingerprint(prompt.part, item) for item in items]
        new = await self.store.claim(f"{self.model.model}:{prompt.version}", prints,
                                     self.pools.ttl_seconds)
        if dropped := len(items) - len([p for p in prints if p in new]):
            self._rejected(prompt.part, [Problem("duplicate", "duplicate item")] * dropped)
        return [item for item, p in zip(items, prints, strict=True) if p in new]

    async def _serve(
        self, key: str, topic: str, prompt: PromptSet, items: list[Item],
        session_id: str | None, source: str,
    ) -> dict[str, Any]:
        item = random.choice(items)
        if session_id is not None:
            with waiting("cache"):
                await self.store.mark_seen(session_id, key, item_id(prompt.part, item),
                                           self.pools.session_ttl)
        return to_data(prompt.part, topic, item, source=source, degraded=False,
                       prompt_version=prompt.version)

    async def _serve_bank(
        self, topic: str, items: list[Item], part: int, session_id: str | None, *,
        degraded: bool,
    ) -> dict[str, Any]:
        key = f"bank:{self.bank.version}:p{part}:{topic}"
        seen = await self.store.seen(session_id, key) if session_id else set()
        item = random.choice([i for i in items if item_id(part, i) not in seen] or items)
        if session_id is not None:
            await self.store.mark_seen(session_id, key, item_id(part, item),
                                       self.pools.session_ttl)
        return to_data(part, topic, item, source="bank", degraded=degraded,
                       prompt_version=self.bank.version)

    async def _fallback(
        self, topic: str, part: int, session_id: str | None, exc: Exception,
        card: Item | None = None,
    ) -> dict[str, Any]:
        found = self.bank.items_for(topic, part, card)
        if not isinstance(exc, NotCached):  # a GET's answer from the bank is by design
            log.warning("ai_fallback", reason=str(exc) or type(exc).__name__,
                        served="bank" if found else "nothing")
        if found is not None:
            return await self._serve_bank(*found, part, session_id,
                                          degraded=not isinstance(exc, NotCached))
        if isinstance(exc, DeadlineExceeded | QuotaExhausted | NotCached):
            raise exc
        raise NoQuestion(getattr(exc, "retry_after", None) or DEFAULT_RETRY_AFTER)

    async def _cached(self, key: str, part: int, *, count: bool = True) -> Pool | None:
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
            items, rejected = accept_items(part, pool.items, dedupe=False)
            self._rejected(part, rejected)
            pool = Pool(items, pool.fresh_until) if items else None
        if pool is not None:
            self.local.put(key, pool)
        if count:
            result = "miss" if pool is None else "stale" if pool.stale else "hit"
            self.metrics.cache_requests.labels(result).inc()
        return pool

    async def _store(self, key: str, items: list[Item]) -> None:
        pool = Pool(items, time.time() + self.pools.soft_ttl_seconds)
        self.local.put(key, pool)
        await self.store.put(key, pool, self.pools.ttl_seconds)

    # What the operator routes ask of the service.

    def catalogue(self) -> list[dict[str, Any]]:
        """The topic areas a frontend can offer."""
        return self.bank.catalogue()

    async def purge(self) -> int:
        """Drop every pool (StoreError when the store does not answer); the number dropped.
        Other workers' local copies expire within `local_ttl` seconds."""
        purged = await self.store.purge()
        self.local.clear()
        return purged

    async def readiness(self, timeout: float) -> dict[str, dict[str, Any]]:
        """Each dependency's state (`ok` or `down`, with why), each within `timeout` s."""
        return await check_dependencies(self.store, self.prompts, self.model, timeout)
