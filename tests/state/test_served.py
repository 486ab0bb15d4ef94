"""Served counts: the least-served item of a pool first, across every session and instance,
in Redis and in the process alike."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from ielts_service.config import load_settings
from ielts_service.state.pools import MemoryPoolStore, RedisPoolStore, pool_key
from ielts_service.state.redis import SharedRedis

KEY = pool_key(2, "music", "v1", "gpt-4o-test")
IDS = ["a", "b", "c", "d", "e"]


@pytest.fixture(params=["redis", "memory"])
async def store(request, redis_server):
    if request.param == "memory":
        yield MemoryPoolStore()
        return
    redis = request.getfixturevalue("redis")
    client = SharedRedis.open(load_settings({"REDIS_URL": redis.url,
                                             "REDIS_TIMEOUT_SECONDS": "2"}, env_file=None))
    yield RedisPoolStore(client)
    await client.close()


async def test_every_item_is_served_once_before_any_is_served_twice(store):
    picks = [await store.serve(KEY, IDS, IDS, 1, 3600, strict=False) for _ in range(10)]
    first, second = picks[:5], picks[5:]
    assert sorted(p.item_id for p in first) == IDS and sorted(p.item_id for p in second) == IDS
    assert [p.under for p in first] == [4, 3, 2, 1, 0]  # items still under one serve


async def test_a_strict_pick_refuses_an_item_served_as_often_as_the_target(store):
    for _ in range(5):
        await store.serve(KEY, IDS, IDS, 1, 3600, strict=True)
    refused = await store.serve(KEY, IDS, IDS, 1, 3600, strict=True)
    assert refused.item_id is None and refused.under == 0
    # a new item joins the pool: it is the one served next, and counted
    wider = [*IDS, "f"]
    assert (await store.serve(KEY, wider, wider, 1, 3600, strict=True)).item_id == "f"
    assert (await store.serve(KEY, wider, wider, 1, 3600, strict=True)).item_id is None


async def test_only_the_candidates_are_served_and_all_of_the_pool_is_counted(store):
    """A session that has seen a, b and c gets d or e, the least served of those."""
    for item in ("d", "d", "e"):
        await store.serve(KEY, [item], IDS, 5, 3600, strict=False)
    picked = await store.serve(KEY, ["d", "e"], IDS, 2, 3600, strict=False)
    assert picked.item_id == "e"
    assert picked.under == 3  # a, b and c were never served; d and e twice


async def test_concurrent_students_on_two_clients_never_share_an_item(redis):
    """Ten students at once through two connections (two instances): ten different items."""
    settings = load_settings({"REDIS_URL": redis.url, "REDIS_TIMEOUT_SECONDS": "2"},
                             env_file=None)
    clients = [SharedRedis.open(settings), SharedRedis.open(settings)]
    stores = [RedisPoolStore(c) for c in clients]
    ids = [f"item-{n}" for n in range(10)]
    picks = await asyncio.gather(*(stores[n % 2].serve(KEY, ids, ids, 1, 3600, strict=True)
                                   for n in range(10)))
    assert sorted(p.item_id for p in picks) == sorted(ids)
    for client in clients:
        await client.close()


async def test_counts_expire_and_forget_items_the_pool_no_longer_holds(redis):
    client = SharedRedis.open(load_settings({"REDIS_URL": redis.url}, env_file=None))
    raw = aioredis.from_url(redis.url, decode_responses=True)
    store = RedisPoolStore(client)
    old = [f"old-{n}" for n in range(40)]
    for item in old:
        await store.serve(KEY, [item], old, 1, 600, strict=False)
    [name] = [k async for k in raw.scan_iter(match="ielts:v1:served:*")]
    assert "{" in name and name.split("{")[1] == KEY.split("{")[1]  # the pool's hash tag
    assert 0 < await raw.ttl(name) <= 600
    await store.serve(KEY, ["new"], ["new"], 1, 600, strict=False)  # a refill replaced them
    assert await raw.hkeys(name) == ["new"]
    await raw.aclose()
    await client.close()


async def test_a_redis_that_does_not_answer_still_serves_a_candidate(black_hole):
    client = SharedRedis.open(load_settings({"REDIS_URL": black_hole,
                                             "REDIS_TIMEOUT_SECONDS": "0.2"}, env_file=None))
    served = await RedisPoolStore(client).serve(KEY, ["a", "b"], IDS, 1, 60, strict=True)
    assert served.item_id == "a" and served.under == 5  # nothing counted, nothing widened
    await client.close()
