"""Per-client allowances: at most `count` events per `period` for each client, shared by every
worker and instance through Redis.

The generation quota (fresh model calls per hour) and the failed-authentication limit are
both one `Allowance`; a `Payer` says whom a request's model calls are charged to. Each is a GCRA on one key per client, `ielts:v1:{c:<client>}:<name>`:
the hash tag keeps everything of one client in one cluster slot, and the key expires once
its theoretical arrival time has passed. A full allowance lets `count` through at once,
then one every `period / count` seconds. Without Redis, or while it fails, each process
keeps its own (bounded) table.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.commands.core import AsyncScript

from ielts_service.state.redis import SharedRedis, StoreError

# KEYS[1]: the client's key. ARGV: emission interval (ms), period (ms), 1 to record a hit.
# Returns 0 (allowed; recorded when asked) or the milliseconds until one would be.
_ALLOW = """
local t = redis.call('TIME')
local now = t[1] * 1000 + t[2] / 1000
local interval, period = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or 0), now)
local allow_at = tat - (period - interval)
if allow_at > now then return math.ceil(allow_at - now) end
if ARGV[3] == '1' then
  tat = tat + interval
  redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil(tat - now))
end
return 0
"""
MAX_LOCAL_CLIENTS = 100_000  # past this, a process forgets its oldest clients (fails open)


def client_key(client: str, name: str) -> str:
    """The Redis key of one client's allowance `name`."""
    return f"ielts:v1:{{c:{client}}}:{name}"


class QuotaExhausted(Exception):
    """A client has used its allowance; `retry_after` seconds until the next one."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(f"{name} used up for {retry_after:.0f} s")
        self.name, self.retry_after = name, retry_after


class Allowance:
    """`take(client)` counts one event (0.0) or says how long to wait; `check` only looks."""

    def __init__(self, name: str, count: int, period: float, redis: SharedRedis | None,
                 on_refused: Callable[[], None] | None = None) -> None:
        self.name, self.count, self.period = name, count, period
        self._on_refused = on_refused  # a metric, say
        self._interval_ms = period * 1000 / count if count else 0.0
        self._redis = redis
        self._script: AsyncScript | None = (
            redis.client.register_script(_ALLOW) if redis is not None and count else None)
        self._local: dict[str, float] = {}  # client -> TAT (ms, wall clock)
        self._calls = 0

    def __repr__(self) -> str:
        return (f"Allowance({self.name!r}, {self.count}/{self.period:g}s, "
                f"shared={self._redis is not None})")

    @property
    def enabled(self) -> bool:
        return self.count > 0

    async def take(self, client: str) -> float:
        return await self._decide(client, record=True)

    async def check(self, client: str) -> float:
        return await self._decide(client, record=False)

    async def spend(self, client: str) -> None:
        """Take one, or raise QuotaExhausted."""
        self._raise_if(await self.take(client))

    async def require(self, client: str) -> None:
        """Raise QuotaExhausted unless one is left (nothing is taken)."""
        self._raise_if(await self.check(client))

    def _raise_if(self, wait: float) -> None:
        if wait:
            if self._on_refused is not None:
                self._on_refused()
            raise QuotaExhausted(self.name, wait)

    async def _decide(self, client: str, *, record: bool) -> float:
        if not self.count:
            return 0.0
        if self._redis is None or self._script is None:
            return self._decide_local(client, record)
        script, key = self._script, client_key(client, self.name)
        args = [f"{self._interval_ms:.3f}", str(self.period * 1000), "1" if record else "0"]
        try:
            wait_ms = await self._redis.run(lambda _: script(keys=[key], args=args),
                                            event="quota_store_error", op=self.name)
        except StoreError:
            return self._decide_local(client, record)
        return int(wait_ms) / 1000

    def _decide_local(self, client: str, record: bool) -> float:
        now = time.time() * 1000
        self._calls += 1
        if self._calls % 1024 == 0 or len(self._local) > MAX_LOCAL_CLIENTS:
            self._local = {c: tat for c, tat in self._local.items() if tat > now}
            while len(self._local) > MAX_LOCAL_CLIENTS:
                del self._local[next(iter(self._local))]
        tat = max(self._local.get(client, now), now)
        allow_at = tat - (self.period * 1000 - self._interval_ms)
        if allow_at > now:
            return math.ceil(allow_at - now) / 1000
        if record:
            self._local[client] = tat + self._interval_ms
        return 0.0


@dataclass(frozen=True)
class Payer:
    """Whom a request's model calls are charged to: `client`, its key for the quota (None:
    the operator's own tools, which no quota limits); `fresh` False for a request that
    must not cause a model call at all (a GET: any web page can make a browser send one)."""

    client: str | None = None
    fresh: bool = True

    def admission(self, quota: Allowance | None, *,
                  spend: bool = True) -> Callable[[], Awaitable[None]] | None:
        """What runs before each model attempt: one from the client's quota (or, not
        spending, a check that one is left), raising QuotaExhausted; None: no quota."""
        if quota is None or self.client is None or not quota.enabled:
            return None
        return functools.partial(quota.spend if spend else quota.require, self.client)


OPERATOR = Payer()
