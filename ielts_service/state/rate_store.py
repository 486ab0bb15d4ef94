"""GCRA stores that decide and record a request in one step.

`RedisGcra` runs the check-and-update for every limit of a request in one Lua script,
so workers and instances sharing Redis share each limit exactly, and each key expires
once its theoretical arrival time (TAT) has passed, when it no longer changes anything.
The clock is Redis's own `TIME`, one clock for every instance. If Redis fails, the
request is decided by an in-process `MemoryGcra` (per-instance limits); the next request
tries Redis again once the shared gate reopens.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from redis.commands.core import AsyncScript

from ielts_service.state.redis import SharedRedis, StoreError

# Then the limit's key, which starts with its client's hash tag (`state.redis.client_tag`):
# a request's limits are one client's, so its one script runs in one cluster slot.
KEY_PREFIX = "ielts:v1:rl:"

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

    async def hit(self, keys: list[str], limits: Limits) -> Decision:
        now = time.time() * 1000
        self._calls += 1
        if self._calls % 1024 == 0:
            self._tats = {k: tat for k, tat in self._tats.items() if tat > now}
        tats = [max(self._tats.get(key, now), now) for key in keys]
        retry = max((tat - (period - interval) - now
                     for tat, (interval, period) in zip(tats, limits, strict=True)),
                    default=0.0)
        if retry <= 0:
            retry = 0.0
            tats = [tat + interval for tat, (interval, _) in zip(tats, limits, strict=True)]
            self._tats.update(zip(keys, tats, strict=True))
        return Decision(math.ceil(retry), [math.ceil(tat - now) for tat in tats])


class GcraStore:
    """The Lua GCRA on the worker's shared Redis once attached; `MemoryGcra` before that,
    without Redis, and while Redis fails (the failure is logged by `SharedRedis`)."""

    def __init__(self) -> None:
        self.fallback = MemoryGcra()
        self._redis: SharedRedis | None = None
        self._script: AsyncScript | None = None

    def __repr__(self) -> str:
        return f"GcraStore(shared={self._redis is not None})"

    def attach(self, redis: SharedRedis | None) -> None:
        """Use `redis` from now on (None: this process only)."""
        self._redis = redis
        self._script = redis.client.register_script(_GCRA) if redis is not None else None

    async def hit(self, keys: list[str], limits: Limits) -> Decision:
        """Decide and record one request against each of its limits' `keys`."""
        if self._redis is None or self._script is None:
            return await self.fallback.hit(keys, limits)
        script, args = self._script, [str(value) for limit in limits for value in limit]
        try:
            reply = await self._redis.run(
                lambda _: script(keys=[KEY_PREFIX + k for k in keys], args=args),
                event="rate_limit_store_error")
        except StoreError:
            return await self.fallback.hit(keys, limits)
        return Decision(int(reply[0]), [int(s) for s in reply[1:]])
