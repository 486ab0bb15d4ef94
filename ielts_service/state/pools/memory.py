"""In one process: `MemoryPoolStore` (no Redis configured) and `LocalPools`, a worker's
short-lived copy of hot pools in front of any store."""

from __future__ import annotations

import time

from ielts_service.state.pools import base
from ielts_service.state.pools.base import KEY_PREFIX, Pool, Served, prints_key, seen_key
from ielts_service.state.ttl import TtlCache


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
        self._served: TtlCache[dict[str, int]] = TtlCache(max_pools)
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
        entry = self._seen.get(seen_key(session_id, key))
        return set(entry[1]) if entry else set()

    async def mark_seen(self, session_id: str, key: str, item_id: str, ttl: int) -> None:
        name, now = seen_key(session_id, key), time.monotonic()
        until, seen = self._seen.get(name) or (now + ttl, set())
        self._seen.put(name, (until, seen | {item_id}), until - now)  # the first visit's TTL

    async def serve(self, key: str, candidates: list[str], held: list[str], target: int,
                    ttl: int, *, strict: bool) -> Served:
        ids = list(dict.fromkeys([*candidates, *held]))
        counts = {i: n for i, n in (self._served.get(key) or {}).items() if i in set(ids)}
        chosen = min(dict.fromkeys(candidates), key=lambda i: counts.get(i, 0), default=None)
        if chosen is not None and strict and counts.get(chosen, 0) >= target:
            chosen = None
        if chosen is not None:
            counts[chosen] = counts.get(chosen, 0) + 1
        self._served.put(key, counts, ttl)
        return Served(chosen, sum(1 for i in ids if counts.get(i, 0) < target))

    async def claim(self, scope: str, prints: list[str], ttl: int) -> set[str]:
        held = self._prints.get(prints_key(scope)) or {}
        new = {p for p in prints if p not in held}
        held.update(dict.fromkeys(p for p in prints if p in new))
        for oldest in list(held)[:max(0, len(held) - base.PRINTS_MAX)]:
            del held[oldest]
        self._prints.put(prints_key(scope), held, ttl)
        return new

    async def purge(self) -> int:
        purged = len(self._pools)
        for cache in (self._pools, self._served, self._prints):
            cache.clear()
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
        for cache in (self._pools, self._served, self._seen, self._prints, self._once):
            cache.clear()
