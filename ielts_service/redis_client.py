"""The one way this service opens Redis: short timeouts, no client-side retries, and a
bounded pool that waits briefly for a free connection."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

MAX_CONNECTIONS = 64  # per worker; a burst queues for up to `timeout` instead of failing


def connect(url: str, timeout: float, *, decode_responses: bool = False) -> aioredis.Redis:
    """A client whose every call fails within `timeout` when Redis is dead or silent."""
    pool = BlockingConnectionPool.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0),
        decode_responses=decode_responses, max_connections=MAX_CONNECTIONS, timeout=timeout)
    return aioredis.Redis(connection_pool=pool)


async def disconnect(client: aioredis.Redis) -> None:
    await client.aclose()
    await client.connection_pool.disconnect()  # built here, so not closed by aclose()
