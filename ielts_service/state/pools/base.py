"""What every pool store shares: the pool, its keys, and the store's protocol."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

from ielts_service.state.redis import hash_tag

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


@dataclass(frozen=True)
class Served:
    """What `serve` chose (None: every candidate was served `target` times already and the
    pick was `strict`) and how many of the pool's items are still under `target`."""

    item_id: str | None
    under: int


def pool_key(part: int, topic: str, prompt_version: str, model: str) -> str:
    """One pool per part, normalised topic, prompt version and model. Its hash tag is the
    tag of everything of this pool (its served counts, single-flight lease and ready
    channel too)."""
    tag = hash_tag("pool", model, prompt_version, str(part), topic)
    return f"{KEY_PREFIX}:pool:{tag}:{model}:{prompt_version}:p{part}"


def served_key(key: str) -> str:
    """How often each item of pool `key` was served, across every session and instance."""
    return key.replace(":pool:", ":served:", 1)


def prints_key(scope: str) -> str:
    # A sorted set by claim time (it was a plain set, which nothing bounded: a new name).
    return f"{KEY_PREFIX}:fp:{hash_tag('prints', scope)}"


def seen_key(session_id: str, key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return f"{KEY_PREFIX}:seen:{hash_tag('seen', session_id)}:{digest}"


def text(value: bytes | str) -> str:
    """The client decodes replies (decode_responses), but its types cannot say so."""
    return value.decode() if isinstance(value, bytes) else value


class PoolStore(Protocol):
    backend: str  # "redis" or "memory", for readiness
    async def get(self, key: str) -> Pool | None: ...
    async def put(self, key: str, pool: Pool, ttl: int) -> None: ...
    async def seen(self, session_id: str, key: str) -> set[str]: ...
    async def mark_seen(self, session_id: str, key: str, item_id: str, ttl: int) -> None: ...
    async def serve(self, key: str, candidates: list[str], held: list[str], target: int,
                    ttl: int, *, strict: bool) -> Served: ...
    async def claim(self, scope: str, prints: list[str], ttl: int) -> set[str]: ...
    async def purge(self) -> int: ...
    async def once(self, name: str, ttl: int) -> bool: ...
    async def ping(self) -> None: ...
    async def close(self) -> None: ...
