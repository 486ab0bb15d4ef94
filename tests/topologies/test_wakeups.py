"""Single-flight wake-ups on every topology: a waiter in another process (here, another
SingleFlight on its own client) is woken by the holder's message, not by its poll: pattern
pub/sub on one node, sharded pub/sub on a cluster, broadcast pub/sub on a cluster without it."""

from __future__ import annotations

import asyncio
import time

import pytest

from ielts_service.config import load_settings
from ielts_service.deadline import Deadline
from ielts_service.state.flight import SingleFlight
from ielts_service.state.pools import pool_key
from ielts_service.state.redis import SharedRedis

POLL = 60.0  # a waiter that missed the message would wait this long


async def holder_and_waiter(env: dict[str, str], sharded: bool | None) -> tuple[float, str]:
    """Seconds from the holder's pool landing to the waiter having it, and the waiter's value."""
    settings = load_settings({**env, "REDIS_TIMEOUT_SECONDS": "5"}, env_file=None)
    redis_a, redis_b = SharedRedis.open(settings), SharedRedis.open(settings)
    holder, waiter = SingleFlight(redis_a, lease=30, poll=POLL), SingleFlight(redis_b, 30, POLL)
    for flight in (holder, waiter):
        flight._wakeups.sharded_supported = sharded  # None: ask the servers (Redis 7: yes)
    key, landed = pool_key(2, f"wake-up {time.time()}", "v", "m"), asyncio.Event()
    pool: list[str] = []

    async def produce() -> str:
        await asyncio.sleep(1.0)  # the waiter subscribes meanwhile
        pool.append("the pool")
        landed.set()
        return "the pool"

    async def load() -> str | None:
        return pool[0] if pool else None

    try:
        first = asyncio.create_task(holder.run(key, load, produce, Deadline.after(120)))
        await asyncio.sleep(0.3)  # the holder has the lease
        second = asyncio.create_task(waiter.run(key, load, produce, Deadline.after(120)))
        await landed.wait()
        at = time.monotonic()
        value, produced = await second
        assert (await first)[1] and not produced
        return time.monotonic() - at, value
    finally:
        for flight in (holder, waiter):
            await flight.close()
        for redis in (redis_a, redis_b):
            await redis.close()


@pytest.mark.topologies
@pytest.mark.parametrize(("store", "sharded"), [
    ("standalone", None), ("cluster", None), ("cluster", False), ("cluster-tls", None),
    ("sentinel", None), ("sentinel-tls", None), ("tls", None)], indirect=["store"])
async def test_a_waiter_is_woken_by_the_holders_message_not_its_poll(store, sharded):
    waited, value = await holder_and_waiter(store, sharded)
    assert value == "the pool" and waited < POLL / 2
