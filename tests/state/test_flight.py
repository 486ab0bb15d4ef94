"""Single-flight when Redis refuses (the work still happens, once, and nothing spins), and
when every waiter has left (a late failure is not reported as unretrieved)."""

from __future__ import annotations

import asyncio
import gc

import pytest
from redis.exceptions import MaxConnectionsError

from ielts_service.deadline import Deadline, DeadlineExceeded
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


async def test_a_call_that_fails_after_its_waiters_left_is_not_an_unretrieved_error(caplog):
    """The report of an unretrieved task exception comes from the garbage collector, at any
    allocation; CPython 3.11 formats it with ast.parse, which broke an ast.parse it
    interrupted (a SystemError in an unrelated test's setup)."""
    flight = SingleFlight(None, lease=5)

    async def produce() -> str:
        await asyncio.sleep(0.2)
        raise RuntimeError("the model failed after every waiter had left")

    async def load() -> None:
        return None

    with pytest.raises(DeadlineExceeded):
        await flight.run("key", load, produce, Deadline.after(0.05))
    await asyncio.sleep(0.5)  # the call fails, with no one waiting for it
    gc.collect()
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
