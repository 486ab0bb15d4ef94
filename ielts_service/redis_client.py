"""The one way this service opens Redis: short timeouts, no client-side retries, and a
bounded pool large enough for a burst."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

# Per worker. A burst of hundreds of requests holds about one connection each for a
# moment; waiting for a free one on a busy event loop takes longer than Redis itself, so
# the pool is sized for the burst (Redis takes 10,000 clients by default) and fails fast
# past it, without counting that as an outage (see RedisGate).
MAX_CONNECTIONS = 512


def connect(url: str, timeout: float, *, decode_responses: bool = False) -> aioredis.Redis:
    """A client whose every call fails within `timeout` when Redis is dead or silent."""
    pool = ConnectionPool.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0),
        decode_responses=decode_responses, max_connections=MAX_CONNECTIONS)
    return aioredis.Redis(connection_pool=pool)


async def disconnect(client: aioredis.Redis) -> None:
    await client.aclose()
    await client.connection_pool.disconnect()  # built here, so not closed by aclose()
