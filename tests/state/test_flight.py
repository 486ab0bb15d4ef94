"""Single-flight when Redis refuses: the work still happens, once, and nothing spins."""

from __future__ import annotations

import asyncio

from redis.exceptions import MaxConnectionsError

from ielts_service.deadline import Deadline
from ielts_service.state.flight import SingleFlight
from ielts_service.state.redis import SharedRedis


class FullPool:
    """A Redis client whose pool is exhausted: every command fails without awaiting."""

    def __init__(self) -> None:
        self.calls = 0

    async def set(self, *args: object, **kwargs: object) -> bool:
        self.calls += 1
        raise MaxConnectionsError("Too many connections")


async def test_a_lease_that_cannot_be_had_falls_back_to_local_sharing():
    redis = FullPool()
    flight = SingleFlight(SharedRedis(redis), lease=5)  # type: ignore[arg-type]
    produced = 0

    async def produce() -> str:
        nonlocal produced
        produced += 1
        await asyncio.sleep(0)
        return "pool"

    async def load() -> None:
        return None

    results = await asyncio.wait_for(asyncio.gather(
        *(flight.run("key", load, produce, Deadline.after(30)) for _ in range(10))), timeout=30)
    assert [value for value, _ in results] == ["pool"] * 10
    assert produced == 1 and redis.calls == 1
