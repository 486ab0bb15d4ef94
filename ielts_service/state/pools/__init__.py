"""Pools: the valid items of one model call, stored under a key so later requests reuse them.

`RedisPoolStore` (redis_store) is shared by every worker and instance; `MemoryPoolStore`
(memory) serves one process when `REDIS_URL` is unset. The stores absorb their own
failures: a write that fails is logged and dropped, a failed `seen` is empty, a failed
`claim` claims everything, a failed `serve` counts nothing and picks the first candidate.
Only `get` (a miss the caller counts as `error`), `purge` and `ping` raise `StoreError`,
so a cache outage costs model calls, never a failed question.

Everything is bounded: every key expires; a session's seen items expire `ttl` seconds after
its first visit to a pool, however often it comes back; the fingerprints of a prompt scope
keep only the newest `PRINTS_MAX`; a pool's served counts expire with the pool and keep
only the items it holds. What a store hands back is data, not trusted items: the questions
room validates pools again before serving them.
"""

from ielts_service.state.pools.base import PRINTS_MAX, Pool, PoolStore, Served, pool_key
from ielts_service.state.pools.memory import LocalPools, MemoryPoolStore
from ielts_service.state.pools.redis_store import RedisPoolStore
from ielts_service.state.pools.scripts import CLAIM, MARK_SEEN, SERVE
from ielts_service.state.redis import StoreError

__all__ = ["CLAIM", "MARK_SEEN", "PRINTS_MAX", "SERVE", "LocalPools", "MemoryPoolStore", "Pool",
           "PoolStore", "RedisPoolStore", "Served", "StoreError", "pool_key"]
