"""The one Redis client of a worker, the one failure policy everything that uses it shares,
and the key scheme that lets every one of its operations run on a Redis Cluster.

`SharedRedis.open(settings)` is the only place the service connects to Redis, in one of
three topologies (`REDIS_MODE`): one node (`standalone`), a Redis Cluster (`cluster`,
redis-py's `RedisCluster`, discovered from the node `REDIS_URL` names) or a master found
through Sentinel (`sentinel`). Every store (pools, single-flight, the rate-limit store, the
model budget) receives the same `SharedRedis` and runs its commands through `run()`: a
failure closes the `RedisGate` for a moment, so a dead or silent Redis (or a master that
died and whose replica is not promoted yet) costs a request at most one short timeout, and
is logged at most once per `WARN_EVERY` seconds per event, not once per request.

Keys and slots. Every key starts with `ielts:v1:`. A cluster places a key by its hash tag
(the text between its first `{` and the next `}`) when it has one. Every script, pipeline
and transaction touches keys of one tag only, so none can fail with CROSSSLOT, and no
command lists the keyspace except the operator's purge (a SCAN of every master):

| what | keys | tag |
| --- | --- | --- |
| one pool | `pool:{P}:<model>:<version>:p<part>`, its served counts `served:{P}:...`, its lease `flight:lock:{P}`, its ready channel `flight:ready:{P}` (sharded pub/sub on a cluster) | `hash_tag` of its model, prompt version, part and topic (`pools.pool_key`) |
| one client's limits and quotas (and anything else per client) | `rl:{c:<client>}:<count>:<period>`, `{c:<client>}:<quota>` | `client_tag(client)` |
| the model budget | `{budget}:requests`, `{budget}:tokens` (one script takes both), `{budget}:calls:<date>` | `{budget}` |
| one prompt version's item fingerprints | `fp:{F}` | `hash_tag(scope)` |
| one session's seen items | `seen:{S}:<pool>` | `hash_tag(session)` |
| a one-off claim (pools.once) | `once:<name>`: one key, one command | none needed |

A new kind of key takes the tag of what it belongs to (a per-client quota: `client_tag`),
so a script over it and its neighbours stays on one node.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import redis.asyncio as aioredis
import structlog
from redis.asyncio import BlockingConnectionPool, RedisCluster
from redis.asyncio.connection import RedisSSLContext, SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedSSLConnection
from redis.backoff import NoBackoff
from redis.driver_info import DriverInfo
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError, RedisClusterException, RedisError

from ielts_service.config import Settings

log = structlog.get_logger("ielts_service.state")
T = TypeVar("T")
Client = aioredis.Redis | RedisCluster
# What a failing Redis raises: redis-py's errors, a cluster client's own (not RedisErrors:
# "no reachable node", "slots not covered") and the socket's.
FAILURES: tuple[type[BaseException], ...] = (RedisError, RedisClusterException, OSError)
# A cluster client whose topology changes under it (a master failing over) also raises
# AttributeError from inside redis-py (redis/redis-py#3835; seen here when CLUSTERDOWN
# made it close every connection while other commands were using them).
CLUSTER_FAILURES: tuple[type[BaseException], ...] = (*FAILURES, AttributeError)

# Per worker (on a cluster: per node). A burst of hundreds of requests holds about one
# connection each for a moment. Past MAX_CONNECTIONS a request queues for a free one for up
# to POOL_WAIT seconds: on a busy event loop that wait is CPU, not Redis, so it is longer
# than the socket timeout and a full pool is not counted as an outage (see RedisGate).
MAX_CONNECTIONS = 256
POOL_WAIT = 5.0
GATE_PAUSE = 2.0  # seconds Redis is skipped after a failure
WARN_EVERY = 10.0  # seconds between two warnings of the same event


def hash_tag(*parts: str) -> str:
    """`{<16 hex digits>}`: keys that carry it live in one cluster slot."""
    return "{" + hashlib.sha256(":".join(parts).encode()).hexdigest()[:16] + "}"


def tag_of(key: str) -> str:
    """The hash tag `key` carries, or one made from the whole key."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start:end + 1] if start >= 0 and end > start + 1 else hash_tag(key)


def client_tag(client: str) -> str:
    """`{c:<client>}`: the tag of every key of one client (its limits, its quotas), readable
    in the key; hashed when the client's name holds a brace (none does today)."""
    return "{c:" + client + "}" if "{" not in client and "}" not in client else hash_tag(client)


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


class _SentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool (asks the sentinels where the master is), waiting for a free
    connection like the standalone pool instead of failing at once when all are busy."""


class _SharedTlsContext:
    """One SSL context per worker, not one per connection. redis-py builds each
    connection's context from scratch, the system's CA bundle included: ~20 ms of event
    loop per new connection here, over 2 s for a burst that opened 40."""

    _contexts: ClassVar[dict[tuple[object, ...], RedisSSLContext]] = {}
    ssl_context: RedisSSLContext

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        own = self.ssl_context
        key = (own.keyfile, own.certfile, own.password, own.cert_reqs, own.ca_certs,
               own.ca_data, own.ca_path, own.check_hostname, own.min_version, own.ciphers,
               tuple(own.include_verify_flags or ()), tuple(own.exclude_verify_flags or ()))
        self.ssl_context = self._contexts.setdefault(key, own)


class _TlsConnection(_SharedTlsContext, SSLConnection):
    pass


class _SentinelTlsConnection(_SharedTlsContext, SentinelManagedSSLConnection):
    pass


def _tls(settings: Settings) -> dict[str, Any]:
    files = {"ssl_ca_certs": settings.redis_ca_file, "ssl_certfile": settings.redis_cert_file,
             "ssl_keyfile": settings.redis_key_file}
    return {name: str(path) for name, path in files.items() if path is not None}


def _connect(settings: Settings) -> tuple[Client, list[Callable[[], Awaitable[object]]]]:
    """The client for the configured topology, and what closes it (in order)."""
    assert settings.redis_url is not None
    url, timeout = settings.redis_url.get_secret_value(), settings.redis_timeout_seconds
    tls = url.startswith("rediss://")
    # Short timeouts and no client-side retries: the gate, not backoff, absorbs outages.
    # Without a DriverInfo, redis-py builds one per new connection and reads its own
    # version from the package metadata (~0.4 ms) on the event loop each time: a burst
    # that grew the pool by a hundred connections stalled the loop for ~40 ms.
    common: dict[str, Any] = {
        "socket_timeout": timeout, "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0), "decode_responses": True, "driver_info": DriverInfo(),
        **_tls(settings)}
    if settings.redis_mode == "cluster":
        # reinitialize_steps=0: a MOVED reply patches that slot's route. Otherwise every
        # fifth MOVED closes every connection, in use or not, and the concurrent first
        # commands of a fresh client (routed before it knows the slots) made that cascade.
        cluster = RedisCluster.from_url(url, max_connections=MAX_CONNECTIONS,
                                        reinitialize_steps=0, **common)
        if tls:  # the constructor takes no connection class: set it where nodes are made
            cluster.nodes_manager.connection_kwargs["connection_class"] = _TlsConnection
            for node in cluster.nodes_manager.startup_nodes.values():
                node.connection_class = _TlsConnection
        return cluster, [cluster.aclose]
    pool_options: dict[str, Any] = {"max_connections": MAX_CONNECTIONS,
                                    "timeout": max(POOL_WAIT, timeout)}
    if settings.redis_mode == "sentinel":
        assert settings.redis_sentinel_master is not None  # Settings requires it here
        parsed = parse_url(url)  # the master's credentials and database; the host is unused
        ssl = {"ssl": True, **_tls(settings)} if tls else {}
        sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            list(settings.redis_sentinels),
            sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout,
                             "retry": Retry(NoBackoff(), 0), "driver_info": DriverInfo(),
                             **ssl})
        if tls:  # every new master connection asks a sentinel first: both share contexts
            pool_options["connection_class"] = _SentinelTlsConnection
            for asked in sentinel.sentinels:
                asked.connection_pool.connection_class = _TlsConnection
        master = sentinel.master_for(
            settings.redis_sentinel_master, connection_pool_class=_SentinelPool,
            username=parsed.get("username"), password=parsed.get("password"),
            db=parsed.get("db", 0), **pool_options, **{**common, **ssl})
        return master, [master.aclose, master.connection_pool.disconnect, sentinel.aclose]
    options = {**parse_url(url), **pool_options, **common}  # a URL would pick the class
    if tls:
        options["connection_class"] = _TlsConnection
    pool = BlockingConnectionPool(**options)
    client = aioredis.Redis(connection_pool=pool)
    return client, [client.aclose, pool.disconnect]  # a pool built here is not closed by aclose


class SharedRedis:
    """A worker's Redis client with its gate; hand the same one to every store."""

    def __init__(self, client: Client, gate: RedisGate | None = None, *,
                 mode: str = "standalone",
                 closers: list[Callable[[], Awaitable[object]]] | None = None) -> None:
        self.client = client
        self.gate = gate or RedisGate()
        self.mode = mode
        self.failures: tuple[type[BaseException], ...] = (
            CLUSTER_FAILURES if mode == "cluster" else FAILURES)
        self._closers = closers if closers is not None else [lambda: client.aclose()]
        self._warned: dict[str, float] = {}

    @property
    def cluster(self) -> bool:
        return self.mode == "cluster"

    @classmethod
    def open(cls, settings: Settings) -> SharedRedis:
        """A client whose every call fails within the timeout when Redis is dead or silent."""
        client, closers = _connect(settings)
        return cls(client, mode=settings.redis_mode, closers=closers)

    def __repr__(self) -> str:
        return f"SharedRedis({self.mode}, {self.gate!r})"  # never the URL: it may carry a password

    async def run(self, operation: Callable[[Any], Awaitable[T]], *, event: str,
                  op: str | None = None, gated: bool = True) -> T:
        """Run one operation; a failure closes the gate, is logged as `event` (at most once
        per WARN_EVERY seconds) and raises StoreError. While the gate is closed the
        operation is skipped (StoreError at once) unless `gated` is False."""
        if gated and not self.gate.open:
            raise StoreError("skipped: Redis failed moments ago")
        try:
            result = await operation(self.client)
        except self.failures as exc:
            self.gate.failed(exc)
            self.warn(event, exc, op)
            raise StoreError(type(exc).__name__) from None
        self.gate.succeeded()
        return result

    async def warm(self) -> None:
        """On a cluster, learn the slots before the first request: until then the client
        sends every command to one node and follows the redirects, which a burst of
        first requests pays for. A failure is logged; the stores' fallbacks take over."""
        if self.cluster:
            with contextlib.suppress(StoreError):
                await self.run(lambda r: r.initialize(), event="redis_unavailable",
                               op="connect", gated=False)

    async def ping(self, event: str) -> None:
        """A real round trip even while the gate is closed, so readiness sees recovery; on
        a cluster every master must answer (a dead one's slots are unusable until its
        replica is promoted)."""
        if self.cluster:
            await self.run(lambda r: r.ping(target_nodes=RedisCluster.PRIMARIES),
                           event=event, op="ping", gated=False)
        else:
            await self.run(lambda r: r.ping(), event=event, op="ping", gated=False)

    def warn(self, event: str, exc: BaseException, op: str | None = None) -> None:
        """Log `event` unless the same event (and op) was logged less than WARN_EVERY ago."""
        now, key = time.monotonic(), f"{event}:{op}"
        if now - self._warned.get(key, -WARN_EVERY) >= WARN_EVERY:
            self._warned[key] = now
            log.warning(event, op=op, error=type(exc).__name__, topology=self.mode)

    async def close(self) -> None:
        for close in self._closers:
            await close()
