"""The deployment's model budget, shared by all instances: a daily ceiling on model calls,
and optionally requests and tokens per minute.

The ceiling (`AI_CALLS_PER_DAY`, on by default) counts every attempt that would reach the
model, per UTC day, in one Redis counter: once it is reached no call goes out until the
next day, the caller falls back (the bank, `degraded`), and `ielts_generations_refused_total
{reason="ceiling"}` and an `ai_ceiling_reached` line say so. It bounds the bill whatever
the traffic; per-client quotas (questions room) bound what one client can take of it.

The per-minute budget is two token buckets, taken together or not at all, in one Lua
script on Redis time, so every worker and instance draws from the same quota. A call that
would overdraw waits for the refill when that fits in its deadline, else the caller falls
back instead of provoking 429s. Without Redis (or while it is down) the same counters
live in the process.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from ielts_service.config import Settings
from ielts_service.deadline import Deadline
from ielts_service.llm.errors import BudgetExhausted
from ielts_service.observability.metrics import Metrics
from ielts_service.state.redis import SharedRedis, StoreError

log = structlog.get_logger("ielts_service.budget")
KEY = "ielts:v1:budget"
DAY_KEY = "ielts:v1:{budget}:calls:"  # + the UTC date; kept two days
UNLIMITED = 10**12
LOG_EVERY = 60.0  # seconds between two `ai_ceiling_reached` lines of one worker

# KEYS[1]: today's counter. ARGV: the ceiling, the key's TTL (s). Returns {granted, count}.
_COUNT_CALL = """
local n = tonumber(redis.call('GET', KEYS[1]) or 0)
if n >= tonumber(ARGV[1]) then return {0, n} end
n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {1, n}
"""

# KEYS: requests bucket, tokens bucket. ARGV: rpm, tpm, request cost, token cost.
# Returns {granted, wait_ms, requests_left, tokens_left}.
_TAKE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local function level(key, capacity)
  local v = redis.call('HMGET', key, 'level', 'at')
  local lv, at = tonumber(v[1]) or capacity, tonumber(v[2]) or now
  return math.min(capacity, lv + (now - at) * capacity / 60000)
end
local rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])
local rc, tc = tonumber(ARGV[3]), tonumber(ARGV[4])
local r, k = level(KEYS[1], rpm), level(KEYS[2], tpm)
local wait = 0
if r < rc then wait = math.max(wait, (rc - r) * 60000 / rpm) end
if k < tc then wait = math.max(wait, (tc - k) * 60000 / tpm) end
if wait == 0 then r = r - rc; k = k - tc end
redis.call('HSET', KEYS[1], 'level', r, 'at', now)
redis.call('HSET', KEYS[2], 'level', k, 'at', now)
redis.call('PEXPIRE', KEYS[1], 120000)
redis.call('PEXPIRE', KEYS[2], 120000)
return {wait == 0 and 1 or 0, math.ceil(wait), tostring(r), tostring(k)}
"""


@dataclass
class _Bucket:
    level: float
    at: float


class Budget:
    """`take(tokens, deadline)` before each model attempt; waits or raises BudgetExhausted."""

    def __init__(self, redis: SharedRedis | None, rpm: int, tpm: int, metrics: Metrics,
                 min_attempt_seconds: float, calls_per_day: int = UNLIMITED) -> None:
        self._redis, self.rpm, self.tpm = redis, rpm, tpm
        self.calls_per_day = calls_per_day
        self._metrics = metrics
        self._min_attempt = min_attempt_seconds
        self._per_minute = rpm < UNLIMITED or tpm < UNLIMITED
        now = time.monotonic()
        self._local = (_Bucket(float(rpm), now), _Bucket(float(tpm), now))
        self._local_days: dict[str, int] = {}
        self._logged_at = -LOG_EVERY

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics, redis: SharedRedis | None,
                      min_attempt_seconds: float) -> Budget:
        """The shared budget: the daily ceiling, and the per-minute quota when one is
        configured (0 means no limit on that kind)."""
        return cls(redis, settings.ai_budget_rpm or UNLIMITED, settings.ai_budget_tpm or UNLIMITED,
                   metrics, min_attempt_seconds, settings.ai_calls_per_day)

    def __repr__(self) -> str:
        return (f"Budget(calls_per_day={self.calls_per_day}, rpm={self.rpm}, tpm={self.tpm}, "
                f"shared={self._redis is not None})")

    async def take(self, tokens: int, deadline: Deadline) -> None:
        if self._per_minute:
            await self._take_minute(tokens, deadline)
        await self._count_call()

    async def _take_minute(self, tokens: int, deadline: Deadline) -> None:
        tokens = min(tokens, self.tpm)  # a call larger than the whole quota could never run
        while True:
            wait = await self._try(tokens)
            if wait == 0:
                return
            if wait > deadline.remaining() - self._min_attempt:
                raise BudgetExhausted(wait)
            await asyncio.sleep(wait)

    async def _count_call(self) -> None:
        """Count one call against today's ceiling, or raise BudgetExhausted until tomorrow."""
        now = datetime.now(UTC)
        day = now.strftime("%Y-%m-%d")
        granted, count = await self._count_shared(day) if self._redis else (None, 0)
        if granted is None:  # no Redis, or it failed: this process's own count
            count = self._local_days.get(day, 0)
            granted = count < self.calls_per_day
            count += 1 if granted else 0
            self._local_days = {day: count}
        self._metrics.budget_remaining.labels("calls_today").set(
            max(0, self.calls_per_day - count))
        if granted:
            return
        tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        self._metrics.generations_refused.labels("ceiling").inc()
        if (clock := time.monotonic()) - self._logged_at >= LOG_EVERY:
            self._logged_at = clock
            log.warning("ai_ceiling_reached", calls_per_day=self.calls_per_day, day=day)
        raise BudgetExhausted((tomorrow - now).total_seconds())

    async def _count_shared(self, day: str) -> tuple[bool | None, int]:
        assert self._redis is not None
        try:
            granted, count = await self._redis.run(
                lambda r: r.eval(_COUNT_CALL, 1, DAY_KEY + day, self.calls_per_day, 2 * 86400),
                event="budget_store_error")
        except StoreError:
            return None, 0
        return bool(int(granted)), int(count)

    async def _try(self, tokens: int) -> float:
        if self._redis is None:
            return self._try_local(tokens)
        try:
            granted, wait_ms, left_r, left_t = await self._redis.run(
                lambda r: r.eval(_TAKE, 2, f"{KEY}:requests", f"{KEY}:tokens",
                                 self.rpm, self.tpm, 1, tokens),
                event="budget_store_error")
        except StoreError:
            return self._try_local(tokens)  # Redis is down: this process's own buckets
        self._export(float(left_r), float(left_t))
        return 0.0 if int(granted) else int(wait_ms) / 1000

    def _try_local(self, tokens: int) -> float:
        now = time.monotonic()
        levels = []
        for bucket, capacity in zip(self._local, (self.rpm, self.tpm), strict=True):
            levels.append(min(capacity, bucket.level + (now - bucket.at) * capacity / 60))
            bucket.at = now
        waits = [(cost - level) * 60 / capacity
                 for cost, level, capacity in zip((1, tokens), levels, (self.rpm, self.tpm),
                                                  strict=True) if level < cost]
        if not waits:
            levels = [levels[0] - 1, levels[1] - tokens]
        for bucket, level in zip(self._local, levels, strict=True):
            bucket.level = level
        self._export(*levels)
        return max(waits, default=0.0)

    def _export(self, requests: float, tokens: float) -> None:
        self._metrics.budget_remaining.labels("requests").set(max(0.0, requests))
        self._metrics.budget_remaining.labels("tokens").set(max(0.0, tokens))
