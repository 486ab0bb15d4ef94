"""`RedisPoolStore`: pools, sessions, served counts and fingerprints in Redis, shared by
every worker and instance (one node, a cluster or a Sentinel set)."""

from __future__ import annotations

import contextlib
import time

from ielts_service.state.pools import base
from ielts_service.state.pools.base import (
    KEY_PREFIX,
    Pool,
    Served,
    prints_key,
    seen_key,
    served_key,
    text,
)
from ielts_service.state.pools.scripts import CLAIM, MARK_SEEN, SERVE
from ielts_service.state.redis import Client, SharedRedis, StoreError


class RedisPoolStore:
    """Pools as JSON strings with a TTL; a session's seen items as a set beside them."""

    backend = "redis"

    def __init__(self, redis: SharedRedis) -> None:
        self._redis = redis
        self._mark = redis.client.register_script(MARK_SEEN)  # EVALSHA: the text once
        self._claim = redis.client.register_script(CLAIM)
        self._serve = redis.client.register_script(SERVE)

    def __repr__(self) -> str:
        return f"RedisPoolStore({self._redis!r})"

    async def get(self, key: str) -> Pool | None:
        raw = await self._redis.run(lambda r: r.get(key), event="cache_error", op="get")
        try:
            return Pool.loads(text(raw)) if raw else None
        except (ValueError, TypeError):
            raise StoreError("corrupt pool") from None

    async def put(self, key: str, pool: Pool, ttl: int) -> None:
        with contextlib.suppress(StoreError):  # logged; this worker's local copy still serves
            await self._redis.run(lambda r: r.set(key, pool.dumps(), ex=ttl),
                                  event="cache_error", op="put")

    async def seen(self, session_id: str, key: str) -> set[str]:
        try:
            members = await self._redis.run(lambda r: r.smembers(seen_key(session_id, key)),
                                            event="cache_error", op="seen")
        except StoreError:
            return set()  # a repeat is possible; a failed question is not
        return {text(member) for member in members}

    async def mark_seen(self, session_id: str, key: str, item_id: str, ttl: int) -> None:
        mark, name = self._mark, seen_key(session_id, key)
        with contextlib.suppress(StoreError):  # logged; a repeat is possible later
            await self._redis.run(lambda _: mark(keys=[name], args=[item_id, ttl]),
                                  event="cache_error", op="mark_seen")

    async def serve(self, key: str, candidates: list[str], held: list[str], target: int,
                    ttl: int, *, strict: bool) -> Served:
        """The least-served of `candidates` (first on a tie), counted as served once more,
        in one atomic step across every instance; `held` are the pool's other items."""
        others = [i for i in dict.fromkeys(held) if i not in set(candidates)]
        ids = list(dict.fromkeys(candidates))
        args: list[str | int] = [ttl, target, int(strict), len(ids), *ids, *others]
        serve, name = self._serve, served_key(key)
        try:
            chosen, under = await self._redis.run(lambda _: serve(keys=[name], args=args),
                                                  event="cache_error", op="serve")
        except StoreError:  # nothing counted: any candidate, and no widening on our account
            return Served(ids[0] if ids else None, len(ids) + len(others))
        return Served(text(chosen) if chosen else None, int(under))

    async def claim(self, scope: str, prints: list[str], ttl: int) -> set[str]:
        """The fingerprints no pool of `scope` held yet (now recorded), atomically each;
        all of them when Redis fails (a duplicate beats an empty pool)."""
        claim, name = self._claim, prints_key(scope)
        try:
            new = await self._redis.run(
                lambda _: claim(keys=[name], args=[time.time(), base.PRINTS_MAX, ttl, *prints]),
                event="cache_error", op="claim")
        except StoreError:
            return set(prints)
        return {text(p) for p in new}

    async def purge(self) -> int:
        """Every pool, its served counts and the fingerprints: a SCAN of the one node, or of
        every master of a cluster (redis-py's cluster `scan_iter` walks each master's
        cursor in turn)."""

        async def unlink_all(r: Client) -> int:
            purged = 0
            async for key in r.scan_iter(match=f"{KEY_PREFIX}:pool:*", count=500):
                purged += await r.unlink(key)
            for kind in ("served", "fp"):
                async for key in r.scan_iter(match=f"{KEY_PREFIX}:{kind}:*", count=500):
                    await r.unlink(key)
            return purged

        return await self._redis.run(unlink_all, event="cache_error", op="purge")

    async def once(self, name: str, ttl: int) -> bool:
        """True for the first caller of `name` within `ttl` seconds, across every instance;
        False to the others, and when Redis cannot say."""
        try:
            won = await self._redis.run(
                lambda r: r.set(f"{KEY_PREFIX}:once:{name}", "1", nx=True, ex=ttl),
                event="cache_error", op="once")
        except StoreError:
            return False
        return bool(won)

    async def ping(self) -> None:
        """A real round trip even while the gate is closed: readiness sees recovery."""
        await self._redis.ping("cache_error")

    async def close(self) -> None:
        """Nothing: the shared client is closed by whoever opened it."""
