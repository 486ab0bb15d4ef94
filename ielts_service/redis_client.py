"""The one way this service opens Redis: short timeouts, no client-side retries, and a
bounded pool that a burst queues on."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

try:
    from redis.driver_info import DriverInfo
except ImportError:  # redis-py before DriverInfo reads its version once, at import
    DriverInfo = None  # type: ignore[assignment,misc]

# Per worker. A burst of hundreds of requests holds about one connection each for a
# moment. Past MAX_CONNECTIONS a request queues for a free one for up to POOL_WAIT
# seconds: on a busy event loop that wait is CPU, not Redis, so it is longer than the
# socket timeout and a full pool is not counted as an outage (see RedisGate).
MAX_CONNECTIONS = 256
POOL_WAIT = 5.0


def connect(url: str, timeout: float, *, decode_responses: bool = False) -> aioredis.Redis:
    """A client whose every call fails within `timeout` when Redis is dead or silent."""
    # Without a DriverInfo, redis-py builds one per new connection and reads its own version
    # from the package metadata (a walk of sys.path, ~0.4 ms) on the event loop each time: a
    # burst that grows the pool by a hundred connections spent ~40 ms of loop time on it.
    identity = {"driver_info": DriverInfo()} if DriverInfo is not None else {}
    pool = BlockingConnectionPool.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0),
        decode_responses=decode_responses, max_connections=MAX_CONNECTIONS,
        timeout=max(POOL_WAIT, timeout), **identity)
    return aioredis.Redis(connection_pool=pool)


async def disconnect(client: aioredis.Redis) -> None:
    await client.aclose()
    await client.connection_pool.disconnect()  # built here, so not closed by aclose()
