"""`QuestionService`: one item for a topic and part, from a pool, the model or the bank.

Order: a pool for (part, topic, prompt version, model) if one is cached; else one model
call whose valid items become the pool; if the model cannot be reached, the bank's item
for the same topic area (`degraded`), and only when there is none, 503.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import structlog

from ielts_service.deadline import Deadline
from ielts_service.errors import APIError
from ielts_service.generation.bank import Bank, BankTopic
from ielts_service.generation.items import Item, item_id, to_data
from ielts_service.generation.model import DeadlineExceeded, ModelClient, ModelUnavailable
from ielts_service.generation.pools import CacheError, PoolStore, pool_key
from ielts_service.generation.prompt_store import PromptStore
from ielts_service.generation.retry import ContentFiltered
from ielts_service.generation.topics import is_avoided, normalise_topic
from ielts_service.observability.metrics import Metrics

log = structlog.get_logger("ielts_service.questions")

DEFAULT_RETRY_AFTER = 10


@dataclass(frozen=True)
class PoolSettings:
    size: int = 5
    ttl_seconds: int = 86400


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
    ) -> None:
        self.store = store
        self.bank = bank
        self.prompts = prompts
        self.model = model
        self.pools = pools
        self.metrics = metrics

    async def question(
        self, topic: str | None, part: int, session_id: str | None, deadline: Deadline
    ) -> dict[str, Any]:
        """The `data` of a /generate-question answer."""
        if topic is not None and is_avoided(topic):
            raise APIError(422, "topic_rejected",
                           "this topic is not used in the IELTS Speaking test; choose another")
        if self.model is None:
            area = self._bank_area(topic)
            return await self._serve_bank(area, part, session_id, degraded=False)
        norm = normalise_topic(topic) if topic else self.bank.random_topic().name
        prompt = self.prompts.current[part]
        key = pool_key(part, norm, prompt.version, self.model.model)
        items = await self._cached(key)
        if items:
            item = await self._pick(key, part, items, session_id)
            return to_data(part, norm, item, source="cache", degraded=False,
                           prompt_version=prompt.version)
        try:
            count = prompt.items or self.pools.size
            generation = await self.model.generate(prompt, norm, count, deadline)
        except ContentFiltered:
            raise APIError(422, "content_filtered",
                           "the model's content filter refused this topic; choose another") from None
        except (ModelUnavailable, DeadlineExceeded) as exc:
            return await self._fallback(norm, part, session_id, exc)
        await self._store(key, generation.items)
        item = await self._pick(key, part, generation.items, session_id)
        return to_data(part, norm, item, source="ai", degraded=False, prompt_version=prompt.version)

    def _bank_area(self, topic: str | None) -> BankTopic:
        if topic is None:
            return self.bank.random_topic()
        return self.bank.match(topic) or self.bank.fallback_topic(topic)

    async def _serve_bank(
        self, area: BankTopic, part: int, session_id: str | None, *, degraded: bool
    ) -> dict[str, Any]:
        key = f"bank:{self.bank.version}:p{part}:{area.name}"
        item = await self._pick(key, part, area.items[part], session_id)
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

    async def _cached(self, key: str) -> list[Item] | None:
        try:
            items = await self.store.get(key)
        except CacheError as exc:
            log.warning("cache_error", op="get", error=str(exc))
            self.metrics.cache_requests.labels("error").inc()
            return None
        self.metrics.cache_requests.labels("hit" if items else "miss").inc()
        return items

    async def _store(self, key: str, items: list[Item]) -> None:
        try:
            await self.store.put(key, items, self.pools.ttl_seconds)
        except CacheError as exc:
            log.warning("cache_error", op="put", error=str(exc))

    async def _pick(self, key: str, part: int, items: list[Item], session_id: str | None) -> Item:
        """A random item, one this session has not seen while the pool has unseen ones."""
        if session_id is None:
            return random.choice(items)
        try:
            seen = await self.store.seen(session_id, key)
        except CacheError as exc:
            log.warning("cache_error", op="seen", error=str(exc))
            seen = set()
        item = random.choice([i for i in items if item_id(part, i) not in seen] or items)
        try:
            await self.store.mark_seen(session_id, key, item_id(part, item),
                                       self.pools.ttl_seconds)
        except CacheError as exc:
            log.warning("cache_error", op="mark_seen", error=str(exc))
        return item
