"""The one Redis client of a worker, and the one failure policy everything that uses it shares.

`SharedRedis.open(url, timeout)` is the only place the service connects to Redis. Every
store (pools, single-flight, the rate-limit store, the model budget) receives the same
`SharedRedis` and runs its commands through `run()`: a failure closes the `RedisGate`
for a moment, so a dead or silent Redis costs a request at most one short timeout, and
is logged at most once per `WARN_EVERY` seconds per event, not once per request.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
import structlog
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.driver_info import DriverInfo
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError, RedisError

log = structlog.get_logger("ielts_service.state")
T = TypeVar("T")

# Per worker. A burst of hundreds of requests holds about one connection each for a
# moment. Past MAX_CONNECTIONS a request queues for a free one for up to POOL_WAIT
# seconds: on a busy event loop that wait is CPU, not Redis, so it is longer than the
# socket timeout and a full pool is not counted as an outage (see RedisGate).
MAX_CONNECTIONS = 256
POOL_WAIT = 5.0
GATE_PAUSE = 2.0  # seconds Redis is skipped after a failure
WARN_EVERY = 10.0  # seconds between two warnings of the same event


class StoreError(Exception):
    """Redis could not answer (or was skipped because it failed moments ago)."""


class RedisGate:
    """After a Redis failure, skip Redis for `pause` seconds, then try again."""

    def __init__(self, pause: float = GATE_PAUSE) -> None:
        self.pause = pause
        self._down_until = 0.0

    def __repr__(self) -> str:
        return f"RedisGate(open={self.open})"

    @property
    def open(self) -> bool:
        return time.monotonic() >= self._down_until

    def failed(self, error: BaseException | None = None) -> None:
        """Close the gate, unless the error says only that this worker's pool was full:
        a burst is not an outage, and skipping Redis would turn it into cache misses."""
        if isinstance(error, MaxConnectionsError) or (
                isinstance(error, RedisConnectionError) and "No connection available" in str(error)):
            return  # the blocking pool's wait ran out: this worker is busy, Redis is fine
        self._down_until = time.monotonic() + self.pause

    def succeeded(self) -> None:
        self._down_until = 0.0


class SharedRedis:
    """A worker's Redis client with its gate; hand the same one to every store."""

    def __init__(self, client: aioredis.Redis, gate: RedisGate | None = None) -> None:
        self.client = client
        self.gate = gate or RedisGate()
        self._warned: dict[str, float] = {}

    @classmethod
    def open(cls, url: str, timeout: float) -> SharedRedis:
        """A client whose every call fails within `timeout` when Redis is dead or silent:
        short timeouts and no client-side retries (the gate, not backoff, absorbs outages)."""
        # Without a DriverInfo, redis-py builds one per new connection and reads its own
        # version from the package metadata (a walk of sys.path, ~0.4 ms) on the event loop
        # each time: a burst that grows the pool by a hundred connections stalled the loop
        # for ~40 ms.
        pool = BlockingConnectionPool.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0), decode_responses=True,
            max_connections=MAX_CONNECTIONS, timeout=max(POOL_WAIT, timeout),
            driver_info=DriverInfo())
        return cls(aioredis.Redis(connection_pool=pool))

    def __repr__(self) -> str:
        return f"SharedRedis({self.gate!r})"  # never the URL: it may carry a password

    async def run(self, operation: Callable[[aioredis.Redis], Awaitable[T]], *, event: str,
                  op: str | None = None, gated: bool = True) -> T:
        """Run one operation; a failure closes the gate, is logged as `event` (at most once
        per WARN_EVERY seconds) and raises StoreError. While the gate is closed the
        operation is skipped (StoreError at once) unless `gated` is False."""
        if gated and not self.gate.open:
            raise StoreError("skipped: Redis failed moments ago")
        try:
            result = await operation(self.client)
        except (RedisError, OSError) as exc:
            self.gate.failed(exc)
            self.warn(event, exc, op)
            raise StoreError(type(exc).__name__) from None
        self.gate.succeeded()
        return result

    def warn(self, event: str, exc: BaseException, op: str | None = None) -> None:
        """Log `event` unless the same event (and op) was logged less than WARN_EVERY ago."""
        now, key = time.monotonic(), f"{event}:{op}"
        if now - self._warned.get(key, -WARN_EVERY) >= WARN_EVERY:
            self._warned[key] = now
            log.warning(event, op=op, error=type(exc).__name__)

    async def close(self) -> None:
        await self.client.aclose()
        await self.client.connection_pool.disconnect()  # built here, so not closed by aclose()
