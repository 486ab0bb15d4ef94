"""The one way this service opens Redis: short timeouts, no client-side retries, and a
bounded pool that a burst queues on."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

# Per worker. A burst of hundreds of requests holds about one connection each for a
# moment. Past MAX_CONNECTIONS a request queues for a free one for up to POOL_WAIT
# seconds: on a busy event loop that wait is CPU, not Redis, so it is longer than the
# socket timeout and a full pool is not counted as an outage (see RedisGate).
MAX_CONNECTIONS = 256
POOL_WAIT = 5.0


def connect(url: str, timeout: float, *, decode_responses: bool = False) -> aioredis.Redis:
    """A client whose every call fails within `timeout` when Redis is dead or silent."""
    pool = BlockingConnectionPool.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0),
        decode_responses=decode_responses, max_connections=MAX_CONNECTIONS,
        timeout=max(POOL_WAIT, timeout))
    return aioredis.Redis(connection_pool=pool)


async def disconnect(client: aioredis.Redis) -> None:
    await client.aclose()
    await client.connection_pool.disconnect()  # built here, so not closed by aclose()
