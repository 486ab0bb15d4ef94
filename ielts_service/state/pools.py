"""Pools: the valid items of one model call, stored under a key so later requests reuse them.

`RedisPoolStore` is shared by every worker and instance; `MemoryPoolStore` serves one
process when `REDIS_URL` is unset. A store that fails raises `CacheError`: the caller
treats it as a miss, so a cache outage costs model calls, never a failed request.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ielts_service.llm.breaker import RedisGate
from ielts_service.questions.items import Item
from ielts_service.state.redis import connect, disconnect

T = TypeVar("T")

KEY_PREFIX = "ielts:v1"


class CacheError(Exception):
    """The pool store could not answer."""


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
    return f"{KEY_PREFIX}:prints:{hashlib.sha256(scope.encode()).hexdigest()[:20]}"


def _seen_key(session_id: str, key: str) -> str:
    return f"{KEY_PREFIX}:seen:{session_id}:{hashlib.sha256(key.encode()).hexdigest()[:20]}"


class PoolStore(Protocol):
    @property
    def redis(self) -> aioredis.Redis | None: ...
    async def get(self, key: str) -> Pool | None: ...
    async def put(self, key: str, pool: Pool, ttl: int) -> None: ...
    async def seen(self, session_id: str, key: str) -> set[str]: ...
    async def mark_seen(self, session_id: str, key: str, item_id: str, ttl: int) -> None: ...
    async def claim(self, scope: str, prints: list[str], ttl: int) -> set[str]: ...
    async def purge(self) -> int: ...
    async def ping(self) -> None: ...
    async def close(self) -> None: ...


class RedisPoolStore:
    """Pools as JSON strings with a TTL; a session's seen items as a set beside them."""

    def __init__(self, client: aioredis.Redis, gate: RedisGate | None = None) -> None:
        self._redis = client
        self.gate = gate or RedisGate()

    @classmethod
    def from_url(cls, url: str, timeout: float) -> RedisPoolStore:
        # One short timeout and no client-side retries: a dead Redis costs a request
        # `timeout` once, not several backoffs; the gate then skips Redis for a moment.
        return cls(connect(url, timeout, decode_responses=True))

    def __repr__(self) -> str:
        return f"RedisPoolStore({self.gate!r})"

    @property
    def redis(self) -> aioredis.Redis:
        return self._redis

    async def _call(self, operation: Callable[[], Awaitable[T]], *, gated: bool = True) -> T:
        """Run one Redis operation; failures become CacheError and close the gate briefly."""
        if gated and not self.gate.open:
            raise CacheError("skipped: Redis failed moments ago")
        try:
            result = await operation()
        except (RedisError, OSError) as exc:
            self.gate.failed(exc)
            raise CacheError(type(exc).__name__) from None
        self.gate.succeeded()
        return result

    async def get(self, key: str) -> Pool | None:
        raw = await self._call(lambda: self._redis.get(key))
        try:
            return Pool.loads(raw) if raw else None
        except (ValueError, TypeError):
            raise CacheError("corrupt pool") from None

    async def put(self, key: str, pool: Pool, ttl: int) -> None:
        await self._call(lambda: self._redis.set(key, pool.dumps(), ex=ttl))

    async def seen(self, session_id: str, key: str) -> set[str]:
        return set(await self._call(lambda: self._redis.smembers(_seen_key(session_id, key))))

    async def mark_seen(self, session_id: str, key: str, item_id: str, ttl: int) -> None:
        name = _seen_key(session_id, key)
        pipe = self._redis.pipeline(transaction=True).sadd(name, item_id).expire(name, ttl)
        await self._call(pipe.execute)

    async def claim(self, scope: str, prints: list[str], ttl: int) -> set[str]:
        """The fingerprints no pool of `scope` held yet (now recorded), atomically each."""
        name = _prints_key(scope)
        pipe = self._redis.pipeline(transaction=True)
        for p in prints:
            pipe.sadd(name, p)
        pipe.expire(name, ttl)
        added = await self._call(pipe.execute)
        return {p for p, new in zip(prints, added, strict=False) if new}

    async def purge(self) -> int:
        async def unlink_all() -> int:
            purged = 0
            async for key in self._redis.scan_iter(match=f"{KEY_PREFIX}:pool:*", count=500):
                purged += await self._redis.unlink(key)
            async for key in self._redis.scan_iter(match=f"{KEY_PREFIX}:prints:*", count=500):
                await self._redis.unlink(key)
            return purged

        return await self._call(unlink_all)

    async def ping(self) -> None:
        """A real round trip even while the gate is closed: readiness sees recovery."""
        await self._call(self._redis.ping, gated=False)

    async def close(self) -> None:
        await disconnect(self._redis)


class LocalPools:
    """A worker's short-lived copy of hot pools, in front of Redis.

    A popular topic is read thousands of times a second; for `ttl` seconds this worker
    serves its pool without a round trip. Pools change only on refill, widening and
    purge, so the price is that another worker's change shows here up to `ttl` late."""

    def __init__(self, ttl: float, max_entries: int = 2048) -> None:
        self.ttl = ttl
        self._entries: OrderedDict[str, tuple[float, Pool]] = OrderedDict()
        self._max = max_entries

    def get(self, key: str) -> Pool | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: str, pool: Pool) -> None:
        if self.ttl <= 0:
            return
        self._entries[key] = (time.monotonic() + self.ttl, pool)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


class MemoryPoolStore:
    """The same behaviour in one process, bounded so it cannot grow without limit."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: OrderedDict[str, tuple[float, object]] = OrderedDict()
        self._max = max_entries

    def __repr__(self) -> str:
        return f"MemoryPoolStore(entries={len(self._entries)})"

    def _get(self, key: str) -> object | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            self._entries.pop(key, None)
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def _set(self, key: str, value: object, ttl: int) -> None:
        self._entries[key] = (time.monotonic() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    @property
    def redis(self) -> None:
        return None

    async def get(self, key: str) -> Pool | None:
        value = self._get(key)
        return value if isinstance(value, Pool) else None

    async def put(self, key: str, pool: Pool, ttl: int) -> None:
        self._set(key, pool, ttl)

    async def seen(self, session_id: str, key: str) -> set[str]:
        value = self._get(_seen_key(session_id, key))
        return set(value) if isinstance(value, set) else set()

    async def mark_seen(self, session_id: str, key: str, item_id: str, ttl: int) -> None:
        seen = await self.seen(session_id, key)
        self._set(_seen_key(session_id, key), seen | {item_id}, ttl)

    async def claim(self, scope: str, prints: list[str], ttl: int) -> set[str]:
        held = self._get(_prints_key(scope))
        held = set(held) if isinstance(held, set) else set()
        new = {p for p in prints if p not in held}
        self._set(_prints_key(scope), held | new, ttl)
        return new

    async def purge(self) -> int:
        pools = [key for key in self._entries if key.startswith(f"{KEY_PREFIX}:pool:")]
        for key in [*pools, *(k for k in self._entries if k.startswith(f"{KEY_PREFIX}:prints:"))]:
            del self._entries[key]
        return len(pools)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._entries.clear()
