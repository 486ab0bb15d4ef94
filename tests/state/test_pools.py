"""The pool stores stay bounded under hostile traffic, in Redis and in the process."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis

from ielts_service.config import load_settings
from ielts_service.state import ttl
from ielts_service.state.pools import MemoryPoolStore, Pool, RedisPoolStore
from ielts_service.state.pools import base as pools
from ielts_service.state.pools import memory as pools_memory
from ielts_service.state.redis import SharedRedis

ITEMS = [{"questions": ["Do you like music?"]}]


async def test_a_flood_of_new_sessions_cannot_push_out_a_pool():
    store = MemoryPoolStore()
    await store.put("ielts:v1:pool:x", Pool(ITEMS, time.time() + 60), 3600)
    for n in range(60_000):  # more sessions than the store keeps
        await store.mark_seen(f"session-{n}", "ielts:v1:pool:x", "p1-abc", 3600)
    assert (await store.get("ielts:v1:pool:x")) is not None
    assert await store.seen("session-59999", "ielts:v1:pool:x") == {"p1-abc"}
    assert await store.seen("session-0", "ielts:v1:pool:x") == set()  # the oldest went


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return time.time()


async def test_in_memory_a_session_is_forgotten_ttl_after_its_first_visit(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(pools_memory, "time", clock)
    monkeypatch.setattr(ttl, "time", clock)
    store = MemoryPoolStore()
    await store.mark_seen("s", "pool", "a", 60)
    clock.now += 50
    await store.mark_seen("s", "pool", "b", 60)  # coming back does not renew it
    assert await store.seen("s", "pool") == {"a", "b"}
    clock.now += 11
    assert await store.seen("s", "pool") == set()


@pytest.fixture
async def shared(redis):
    client = SharedRedis.open(load_settings({"REDIS_URL": redis.url,
                                             "REDIS_TIMEOUT_SECONDS": "2"}, env_file=None))
    raw = aioredis.from_url(redis.url, decode_responses=True)
    yield RedisPoolStore(client), raw
    await raw.aclose()
    await client.close()


async def test_in_redis_a_returning_session_does_not_renew_its_ttl(shared):
    store, raw = shared
    await store.mark_seen("s", "pool", "a", 3600)
    [key] = [k async for k in raw.scan_iter(match="ielts:v1:seen:*")]
    await raw.expire(key, 60)  # as if 59 minutes had passed
    await store.mark_seen("s", "pool", "b", 3600)
    assert 0 < await raw.ttl(key) <= 60
    assert await store.seen("s", "pool") == {"a", "b"}


async def test_the_fingerprints_of_a_scope_are_bounded(shared, monkeypatch):
    store, raw = shared
    monkeypatch.setattr(pools, "PRINTS_MAX", 5)
    first = await store.claim("model:v1", [f"old {n}" for n in range(4)], 3600)
    second = await store.claim("model:v1", ["old 3", "new 1", "new 2", "new 3"], 3600)
    [key] = [k async for k in raw.scan_iter(match="ielts:v1:fp:*")]
    assert len(first) == 4 and second == {"new 1", "new 2", "new 3"}
    kept = await raw.zrange(key, 0, -1)
    assert len(kept) == 5 and {"new 1", "new 2", "new 3"} <= set(kept)  # the oldest went
    assert 0 < await raw.ttl(key) <= 3600


async def test_in_memory_the_fingerprints_of_a_scope_are_bounded(monkeypatch):
    store = MemoryPoolStore()
    monkeypatch.setattr(pools, "PRINTS_MAX", 5)
    await store.claim("model:v1", [f"old {n}" for n in range(4)], 3600)
    assert await store.claim("model:v1", ["old 3", "new 1", "new 2"], 3600) == {"new 1", "new 2"}
    # "old 0" was dropped to keep five: it counts as new again.
    assert await store.claim("model:v1", ["old 0", "new 2"], 3600) == {"old 0"}
