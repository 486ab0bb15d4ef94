"""`QuestionService`: one item for a topic and part, from a pool, the model or the bank.

Order: the pool for (model, prompt version, part, topic) if one is cached (its items
checked again: a store holds data); else one model call whose valid items become the
pool, streamed so the first student gets the first item the model writes; if the model
cannot be reached, the bank's items on the same topic (`degraded`), and only when there
are none, `NoQuestion`. Items are served least-served first across every session (counted
in the store); a session that has seen a whole pool, or a pool whose every item was
served `serves_per_item` times, gets the pool widened by another call, not a repeat. A
mock test's Part 3 is written for its card. The topic is never swapped for another: text
that names a catalogue area shares the area's pools; any other text keeps its own, and
the model is asked about it (see `bank.pool_topic`). With no model, a topic the bank has nothing on
is `TopicUnavailable`. Every model attempt a request causes (and the refills it starts)
is charged to its `Payer`'s quota: past it the bank answers (`degraded`), else
`QuotaExhausted`; a GET gets pools or the bank only, else `NotCached`. How pools are made
and kept is `pooling.PoolMaker`'s job.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from ielts_service.deadline import Deadline, DeadlineExceeded
from ielts_service.llm.client import ModelClient
from ielts_service.llm.errors import ContentFiltered, ModelUnavailable
from ielts_service.observability.timing import waiting
from ielts_service.questions.bank import Bank, pool_topic
from ielts_service.questions.items import Item, item_id, to_data
from ielts_service.questions.operations import check_dependencies
from ielts_service.questions.pooling import PoolMaker
from ielts_service.questions.prompts import PromptSet, PromptStore
from ielts_service.questions.topics import reject_avoided
from ielts_service.state.background import BackgroundTasks
from ielts_service.state.pools import pool_key
from ielts_service.state.quota import OPERATOR, Payer, QuotaExhausted

log = structlog.get_logger("ielts_service.questions")
DEFAULT_RETRY_AFTER = 10


class NoQuestion(Exception):
    """Nothing to serve: the model is unreachable and the bank has no area for the topic."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"no question; retry after {retry_after} s")
        self.retry_after = retry_after


class NotCached(Exception):
    """A request that may not call the model found no pool, and the bank has no area."""


class QuestionService:
    """Holds what a question needs; every dependency is passed in."""

    def __init__(self, *, pools: PoolMaker, bank: Bank, prompts: PromptStore,
                 background: BackgroundTasks) -> None:
        self.pools, self.bank, self.prompts, self.background = pools, bank, prompts, background
        self.store, self.flight = pools.store, pools.flight

    @property
    def model(self) -> ModelClient | None:
        return self.pools.model

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
        pool = await self.pools.cached(key, part)
        if pool is None:
            if not payer.fresh:
                return await self._fallback(norm, part, session_id, NotCached(norm), card)
            return await self._cold(key, norm, prompt, session_id, deadline, payer, card)
        if pool.stale and payer.fresh:
            self.background.spawn(key, "refill",
                                  lambda: self.pools.refill(key, norm, prompt, payer))
        return await self._from_pool(key, norm, prompt, pool.items, session_id, deadline, payer)

    async def _from_pool(
        self, key: str, topic: str, prompt: PromptSet, items: list[Item],
        session_id: str | None, deadline: Deadline, payer: Payer, *, may_wait: bool = True,
    ) -> dict[str, Any]:
        """The pool's least-served item this session has not seen. Rather than repeat, a
        pool grows by one call (shared by whoever waits for it) while it can: for a session
        that has seen it all, and when every item it could serve was served
        `serves_per_item` times; the call starts in the background as the last item under
        that count is handed out, so students arriving one by one rarely wait for it."""
        part, size = prompt.part, len(items)
        with waiting("cache"):
            seen = await self.store.seen(session_id, key) if session_id else set()
        unseen = ([item for item, iid in zip(items, self.pools.item_ids(key, part, items, items),
                                             strict=True) if iid not in seen]
                  if seen else items)
        can_grow = payer.fresh and self.pools.can_widen(size)
        # A session that has seen it all gets a new item, not a repeat: nothing is picked.
        item, under = ((None, 0) if session_id is not None and not unseen and can_grow else
                       await self.pools.pick(key, part, unseen or items, items, strict=can_grow))
        if (item is None and may_wait  # a request waits for one model call at most
                and self.flight.waiting(f"{key}:widen:{size}") < self.pools.batch(prompt)):
            try:
                with waiting("model"):
                    fresh = await self.pools.widen(key, topic, prompt, payer, size, deadline)
            except (ContentFiltered, ModelUnavailable, DeadlineExceeded, QuotaExhausted):
                fresh = []
            new, _ = await self.pools.pick(key, part, fresh, items + fresh, strict=False)
            if new is not None:
                return await self._serve(key, topic, prompt, new, session_id, "ai")
        if item is None:  # nothing new to be had now: the least-served, counted
            item, under = await self.pools.pick(key, part, unseen or items, items,
                                                strict=False)
        variety = self.pools.settings.serves_per_item > 0
        if can_grow and (variety and under <= 1
                         or session_id is not None and len(unseen) <= 2):  # ahead of need
            self.background.spawn(key, "widen",
                                  lambda: self.pools.widen(key, topic, prompt, payer, size))
        assert item is not None  # `items` is never empty
        return await self._serve(key, topic, prompt, item, session_id, "cache")

    async def _cold(
        self, key: str, topic: str, prompt: PromptSet, session_id: str | None, deadline: Deadline,
        payer: Payer, card: Item | None = None,
    ) -> dict[str, Any]:
        """A miss: one model call for everyone missing this pool (single-flight). A client
        past its quota is answered without joining (or starting) the call."""

        async def landed() -> list[Item] | None:
            pool = await self.pools.cached(key, prompt.part, count=False)
            return pool.items if pool else None

        try:
            if (check := payer.admission(self.pools.quota, spend=False)) is not None:
                await check()
            if self.pools.settings.stream:
                return await self._cold_streamed(key, topic, prompt, session_id, deadline, payer,
                                                 landed)

            async def produce() -> list[Item]:
                return await self.pools.generate(key, topic, prompt, Deadline(deadline.at), [],
                                                 payer)

            with waiting("model"):  # also when another request's call is the one we wait on
                items, produced = await self.flight.run(key, landed, produce, deadline)
        except (ModelUnavailable, DeadlineExceeded, QuotaExhausted) as exc:
            return await self._fallback(topic, prompt.part, session_id, exc, card)
        item, _ = await self.pools.pick(key, prompt.part, items, items, strict=False)
        assert item is not None  # a generation yields at least one item
        return await self._serve(key, topic, prompt, item, session_id,
                                 "ai" if produced else "cache")

    async def _cold_streamed(
        self, key: str, topic: str, prompt: PromptSet, session_id: str | None,
        deadline: Deadline, payer: Payer, landed: Callable[[], Awaitable[list[Item] | None]],
    ) -> dict[str, Any]:
        """A miss, streamed: the first item this session has not seen, as soon as the one
        call for this pool (here, or on another instance) has written it."""
        with waiting("cache"):
            seen = await self.store.seen(session_id, key) if session_id else set()

        async def start(deliver: Callable[[list[Item]], Awaitable[None]]) -> None:
            await self.pools.generate_streamed(key, topic, prompt, payer, deliver,
                                               Deadline(deadline.at))

        taken: set[str] = set()  # served as often as `serves_per_item` already (elsewhere)

        def wanted(item: Item) -> bool:
            return item_id(prompt.part, item) not in seen | taken

        feed, started = self.flight.stream(key, landed, start, Deadline(deadline.at))
        # With variety on, an item nobody was handed yet as soon as one is written, else
        # when the call ends the least served (see `Feed.first`); every instance counts.
        limit = self.pools.settings.serves_per_item or None
        while True:
            if (item := feed.pick(wanted, limit)) is None:  # nothing written for us yet
                with waiting("model"):
                    item = await feed.first(wanted, deadline, limit=limit)
            if item is None:
                break
            source = "ai" if started and feed.produced_here else "cache"
            if limit is None:  # no counting: the item handed out least here
                return await self._serve(key, topic, prompt, item, session_id, source)
            # An item handed out here for the first time: checked against every instance's
            # serves. Once the call ended (a class asking at once), the least served of
            # what it wrote: that beats waiting for a widening.
            first_time = feed.handed(item) <= limit
            chosen, _ = await self.pools.pick(
                key, prompt.part, [item] if first_time else [i for i in feed.items if wanted(i)],
                feed.items, strict=first_time)
            if chosen is not None:
                return await self._serve(key, topic, prompt, chosen, session_id, source)
            taken.add(item_id(prompt.part, item))
        # The call ended without an item for this session: the pool, if it landed.
        if feed.error is not None:
            raise feed.error
        if (pool := await self.pools.cached(key, prompt.part, count=False)) is None:
            raise ModelUnavailable("no_item")
        return await self._from_pool(key, topic, prompt, pool.items, session_id, deadline, payer,
                                     may_wait=False)  # it waited for this pool's call

    async def fill(self, topic: str, part: int, deadline: Deadline) -> str:
        """Have the pool of (topic, part) cached and fresh ahead of students: `cached` when
        it was, `filled` when a model call (ours or another worker's) filled it, `failed`."""
        assert self.model is not None
        norm = pool_topic(self.bank, topic)
        prompt = self.prompts.current[part]
        key = pool_key(part, norm, prompt.version, self.model.model)
        pool = await self.pools.cached(key, part, count=False)
        if pool is not None and not pool.stale:
            return "cached"
        try:
            await self.pools.refill(key, norm, prompt, OPERATOR, deadline)
        except (ContentFiltered, ModelUnavailable, DeadlineExceeded):
            return "failed"
        return "filled"

    async def _serve(
        self, key: str, topic: str, prompt: PromptSet, item: Item, session_id: str | None,
        source: str,
    ) -> dict[str, Any]:
        if session_id is not None:
            with waiting("cache"):
                await self.store.mark_seen(session_id, key, item_id(prompt.part, item),
                                           self.pools.settings.session_ttl)
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
                                       self.pools.settings.session_ttl)
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

    # What the operator routes ask of the service.

    def catalogue(self) -> list[dict[str, Any]]:
        """The topic areas a frontend can offer."""
        return self.bank.catalogue()

    async def purge(self) -> int:
        """Drop every pool (StoreError when the store does not answer); the number dropped.
        Other workers' local copies expire within `local_ttl` seconds."""
        purged = await self.store.purge()
        self.pools.local.clear()
        return purged

    async def readiness(self, timeout: float) -> dict[str, dict[str, Any]]:
        """Each dependency's state (`ok` or `down`, with why), each within `timeout` s."""
        return await check_dependencies(self.store, self.prompts, self.model, timeout)
