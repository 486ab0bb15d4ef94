"""Pools: the valid items of one model call, stored under a key so later requests reuse them.

`RedisPoolStore` is shared by every worker and instance; `MemoryPoolStore` serves one
process when `REDIS_URL` is unset. The stores absorb their own failures: a write that
fails is logged and dropped, a failed `seen` is empty, a failed `claim` claims everything.
Only `get` (a miss the caller counts as `error`), `purge` and `ping` raise `StoreError`,
so a cache outage costs model calls, never a failed question.

Everything is bounded: every key expires; a session's seen items expire `ttl` seconds after
its first visit to a pool, however often it comes back; the fingerprints of a prompt scope
keep only the newest `PRINTS_MAX`. What a store hands back is data, not trusted items:
the questions room validates pools again before serving them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis

from ielts_service.state.redis import SharedRedis, StoreError

__all__ = ["LocalPools", "MemoryPoolStore", "Pool", "PoolStore", "RedisPoolStore",
           "StoreError", "pool_key"]
from ielts_service.state.ttl import TtlCache

KEY_PREFIX = "ielts:v1"
PRINTS_MAX = 20_000  # fingerprints kept per model and prompt version (~2 MB)
Item = dict[str, Any]  # a pool holds JSON objects; what they mean is the questions room's


@dataclass(frozen=True)
class Pool:
    """A pool's items and the wall-clock time until which they count as fresh."""

    items: list[Item]
    fresh_until: float

    @property
    def stale(self) -> bool:
        return time.time() > self.fresh_until

    def dumps(self) -> str:
        return json.dumps({"items": self.items, "fresh_until": self.fresh_until},
                          ensure_ascii=False)

    @classmethod
    def loads(cls, raw: str) -> Pool:
        data = json.loads(raw)
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            raise ValueError("not a pool")
        return cls(data["items"], float(data.get("fresh_until", 0)))


def pool_key(part: int, topic: str, prompt_version: str, model: str) -> str:
    """One pool per part, normalised topic, prompt version and model."""
    digest = hashlib.sha256(topic.encode()).hexdigest()[:20]
    return f"{KEY_PREFIX}:pool:{model}:{prompt_version}:p{part}:{digest}"


def _prints_key(scope: str) -> str:
    # A sorted set by claim time (it was a plain set, which nothing bounded: a new name).
    return f"{KEY_PREFIX}:fp:{hashlib.sha256(scope.encode()).hexdigest()[:20]}"


# KEYS[1]: a session's seen set. ARGV: item id, TTL (s). The TTL is set once, on creation.
_MARK_SEEN = """
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
"""
# KEYS[1]: a scope's fingerprints. ARGV: now, most kept, TTL (s), the fingerprints.
# Returns the fingerprints that were new; the oldest beyond the most kept are dropped.
_CLAIM = """
local new = {}
for i = 4, #ARGV do
  if redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[i]) == 1 then new[#new + 1] = ARGV[i] end
end
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
if over > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return new
"""


def _seen_key(session_id: str, key: str) -> str:
    return f"{KEY_PREFIX}:seen:{session_id}:{hashlib.sha256(key.encode()).hexdigest()[:20]}"


def _text(value: bytes | str) -> str:
    """The client decodes replies (decode_responses), but its types cannot say so."""
    return value.decode() if isinstance(value, bytes) else value


class PoolStore(Protocol):
    backend: str  # "redis" or "memory", for readiness
    async def get(self, key: str) -> Pool | None: ...
    async def put(self, key: str, pool: Pool, ttl: int) -> None: ...
    async def seen(self, session_id: str, key: str) -> set[str]: ...
    async def mark_seen(self, session_id: str, key: str, item_id: str, ttl: int) -> None: ...
    async def claim(self, scope: str, prints: list[str], ttl: int) -> set[str]: ...
    async def purge(self) -> int: ...
    async def once(self, name: str, ttl: int) -> bool: ...
    async def ping(self) -> None: ...
    async def close(self) -> None: ...


class RedisPoolStore:
    """Pools as JSON strings with a TTL; a session's seen items as a set beside them."""

    backend = "redis"

    def __init__(self, redis: SharedRedis) -> None:
        self._redis = redis

    def __repr__(self) -> str:
        return f"RedisPoolStore({self._redis!r})"

    async def get(self, key: str) -> Pool | None:
        raw = await self._redis.run(lambda r: r.get(key), event="cache_error", op="get")
        try:
            return Pool.loads(_text(raw)) if raw else None
        except (ValueError, TypeError):
            raise StoreError("corrupt pool") from None

    async def put(self, key: str, pool: Pool, ttl: int) -> None:
        with contextlib.suppress(StoreError):  # logged; this worker's local copy still serves
            await self._redis.run(lambda r: r.set(key, pool.dumps(), ex=ttl),
                                  event="cache_error", op="put")

    async def seen(self, session_id: str, key: str) -> set[str]:
        try:
            members = await self._redis.run(lambda r: r.smembers(_seen_key(session_id, key)),
                                            event="cache_error", op="seen")
        except StoreError:
            return set()  # a repeat is possible; a failed question is not
        return {_text(member) for member in members}

    async def mark_seen(self, session_id: str, key: str, item_id: str, ttl: int) -> None:
        name = _seen_key(session_id, key)
        with contextlib.suppress(StoreError):  # logged; a repeat is possible later
            await self._redis.run(lambda r: r.eval(_MARK_SEEN, 1, name, item_id, ttl),
                                  event="cache_error", op="mark_seen")

    async def claim(self, scope: str, prints: list[str], ttl: int) -> set[str]:
        """The fingerprints no pool of `scope` held yet (now recorded), atomically each;
        all of them when Redis fails (a duplicate beats an empty pool)."""
        name = _prints_key(scope)
        try:
            new = await self._redis.run(
                lambda r: r.eval(_CLAIM, 1, name, time.time(), PRINTS_MAX, ttl, *prints),
                event="cache_error", op="claim")
        except StoreError:
            return set(prints)
        return {_text(p) for p in new}

    async def purge(self) -> int:
        async def unlink_all(r: Redis) -> int:
            purged = 0
            async for key in r.scan_iter(match=f"{KEY_PREFIX}:pool:*", count=500):
                purged += await r.unlink(key)
            async for key in r.scan_iter(match=f"{KEY_PREFIX}:fp:*", count=500):
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
        await self._redis.run(lambda r: r.ping(), event="cache_error", op="ping", gated=False)

    async def close(self) -> None:
        """Nothing: the shared client is closed by whoever opened it."""


class LocalPools:
    """A worker's short-lived copy of hot pools, in front of Redis.

    A popular topic is read thousands of times a second; for `ttl` seconds this worker
    serves its pool without a round trip. Pools change only on refill, widening and
    purge, so the price is that another worker's change shows here up to `ttl` late."""

    def __init__(self, ttl: float, max_entries: int = 2048) -> None:
        self.ttl = ttl
        self._cache: TtlCache[Pool] = TtlCache(max_entries)

    def get(self, key: str) -> Pool | None:
        return self._cache.get(key)

    def put(self, key: str, pool: Pool) -> None:
        if self.ttl > 0:
            self._cache.put(key, pool, self.ttl)

    def clear(self) -> None:
        self._cache.clear()


class MemoryPoolStore:
    """The same behaviour in one process, bounded so it cannot grow without limit: pools,
    sessions and fingerprints in caches of their own, so a flood of new session ids can
    push out other sessions, never a pool."""

    backend = "memory"

    def __init__(self, max_pools: int = 2_000, max_sessions: int = 50_000) -> None:
        self._pools: TtlCache[Pool] = TtlCache(max_pools)
        self._seen: TtlCache[tuple[float, set[str]]] = TtlCache(max_sessions)
        self._prints: TtlCache[dict[str, None]] = TtlCache(64)  # one per model and prompt
        self._once: TtlCache[bool] = TtlCache(64)

    def __repr__(self) -> str:
        return f"MemoryPoolStore(pools={len(self._pools)}, sessions={len(self._seen)})"

    async def get(self, key: str) -> Pool | None:
        return self._pools.get(key)

    async def put(self, key: str, pool: Pool, ttl: int) -> None:
        self._pools.put(key, pool, ttl)

    async def seen(self, session_id: str, key: str) -> set[str]:
        entry = self._seen.get(_seen_key(session_id, key))
        return set(entry[1]) if entry else set()

    async def mark_seen(self, session_id: str, key: str, item_id: str, ttl: int) -> None:
        name, now = _seen_key(session_id, key), time.monotonic()
        until, seen = self._seen.get(name) or (now + ttl, set())
        self._seen.put(name, (until, seen | {item_id}), until - now)  # the first visit's TTL

    async def claim(self, scope: str, prints: list[str], ttl: int) -> set[str]:
        held = self._prints.get(_prints_key(scope)) or {}
        new = {p for p in prints if p not in held}
        held.update(dict.fromkeys(p for p in prints if p in new))
        for oldest in list(held)[:max(0, len(held) - PRINTS_MAX)]:
            del held[oldest]
        self._prints.put(_prints_key(scope), held, ttl)
        return new

    async def purge(self) -> int:
        purged = len(self._pools)
        self._pools.clear()
        self._prints.clear()
        return purged

    async def once(self, name: str, ttl: int) -> bool:
        key = f"{KEY_PREFIX}:once:{name}"
        if self._once.get(key) is not None:
            return False
        self._once.put(key, True, ttl)
        return True

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        for cache in (self._pools, self._seen, self._prints, self._once):
            cache.clear()
