"""GCRA stores that decide and record a request in one step.

`RedisGcra` runs the check-and-update for every limit of a request in one Lua script,
so workers and instances sharing Redis share each limit exactly, and each key expires
once its theoretical arrival time (TAT) has passed, when it no longer changes anything.
The clock is Redis's own `TIME`, one clock for every instance. If Redis fails, the
request is decided by an in-process `MemoryGcra` (per-instance limits) and a warning is
logged at most once per 10 s; the next request tries Redis again.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from ielts_service.llm.breaker import RedisGate
from ielts_service.state.redis import connect, disconnect

log = structlog.get_logger("ielts_service.api")

KEY_PREFIX = "ielts:v1:rl:"
WARN_EVERY_SECONDS = 10.0

# KEYS[i]: one key per limit; ARGV[2i-1], ARGV[2i]: its emission interval and period, in ms.
# Returns {retry_after_ms (0: allowed, and every TAT recorded), separation_ms per key}.
_GCRA = """
local t = redis.call('TIME')
local now = t[1] * 1000 + t[2] / 1000
local tats, retry = {}, 0
for i, key in ipairs(KEYS) do
  local interval, period = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local tat = math.max(tonumber(redis.call('GET', key) or 0), now)
  tats[i] = tat
  local allow_at = tat - (period - interval)
  if allow_at > now then retry = math.max(retry, allow_at - now) end
end
if retry == 0 then
  for i, key in ipairs(KEYS) do
    tats[i] = tats[i] + tonumber(ARGV[2 * i - 1])
    redis.call('SET', key, string.format('%.3f', tats[i]), 'PX', math.ceil(tats[i] - now))
  end
end
local out = {math.ceil(retry)}
for i = 1, #KEYS do out[i + 1] = math.ceil(tats[i] - now) end
return out
"""


@dataclass(frozen=True)
class Decision:
    retry_after_ms: int  # 0: allowed (and recorded); otherwise the wait before a retry passes
    separations_ms: list[int]  # per limit: TAT minus now after the decision


Limits = list[tuple[float, float]]  # (emission interval ms, period ms) per key


class MemoryGcra:
    """The same GCRA in one process; expired TATs are dropped every 1024 calls."""

    def __init__(self) -> None:
        self._tats: dict[str, float] = {}
        self._calls = 0

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def hit(self, keys: list[str], limits: Limits) -> Decision:
        now = time.time() * 1000
        self._calls += 1
        if self._calls % 1024 == 0:
            self._tats = {k: tat for k, tat in self._tats.items() if tat > now}
        tats = [max(self._tats.get(key, now), now) for key in keys]
        retry = max((tat - (period - interval) - now
                     for tat, (interval, period) in zip(tats, limits)), default=0.0)
        if retry <= 0:
            retry = 0.0
            tats = [tat + interval for tat, (interval, _) in zip(tats, limits)]
            self._tats.update(zip(keys, tats))
        return Decision(math.ceil(retry), [math.ceil(tat - now) for tat in tats])


class RedisGcra:
    """The Lua GCRA on a client opened before serving; `MemoryGcra` while Redis fails."""

    def __init__(self, url: str, timeout: float) -> None:
        self._url, self._timeout = url, timeout
        self._redis: aioredis.Redis | None = None
        self._script: AsyncScript | None = None
        self.fallback = MemoryGcra()
        self.gate = RedisGate()  # after a failure, skip Redis briefly: one timeout, not one each
        self._warned_at: float | None = None

    def __repr__(self) -> str:
        return "RedisGcra()"  # never the URL: it may carry a password

    async def open(self) -> None:
        # Short timeouts and no client-side retries: a dead Redis costs a short wait, no backoffs.
        self._redis = connect(self._url, self._timeout)
        self._script = self._redis.register_script(_GCRA)  # EVALSHA, loads it on NOSCRIPT

    async def close(self) -> None:
        if self._redis is not None:
            await disconnect(self._redis)
            self._redis, self._script = None, None

    async def hit(self, keys: list[str], limits: Limits) -> Decision:
        args = [str(value) for limit in limits for value in limit]
        try:
            if self._script is None:  # not serving: as if Redis were down
                raise RedisError("not open")
            if not self.gate.open:
                return await self.fallback.hit(keys, limits)
            reply = await self._script(keys=[KEY_PREFIX + k for k in keys], args=args)
        except (RedisError, OSError) as exc:
            self.gate.failed(exc)
            self._warn(exc)
            return await self.fallback.hit(keys, limits)
        self.gate.succeeded()
        return Decision(int(reply[0]), [int(s) for s in reply[1:]])

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if self._warned_at is None or now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning("rate_limit_store_error", error=type(exc).__name__,
                        fallback="memory")
