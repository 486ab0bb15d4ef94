"""Per-client rate limits on the question routes, with quart-rate-limiter.

Key: `client_key()`, the address the socket saw, or, when that peer is a trusted proxy,
the first address from the right of X-Forwarded-For that is not one; anyone else's
X-Forwarded-For is ignored. Store: with REDIS_URL, one Lua script per request decides
and records every limit (shared by all workers and instances; see `rate_store`); without,
or while Redis fails, an in-process GCRA.

Headers: the library's `after_request` reads the store a second time for the
`RateLimit-*` headers; here the one atomic call returns what they need, so they are set
without a second round trip, and only on requests that were limited (not on /health).
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from quart import Quart, Response, current_app, g, request
from quart_rate_limiter import RateLimit, RateLimiter, RateLimitExceeded

from ielts_service.config import Settings
from ielts_service.services import services
from ielts_service.state.rate_store import GcraStore

LIMITED_BLUEPRINTS = frozenset({"questions"})
EXTENSION = "ielts_service.rate_limits"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse(entry: str) -> Address | None:
    """An address from "ip", "ipv4:port" or "[ipv6]:port"; None when malformed."""
    entry = entry.strip()
    if entry.startswith("[") and "]" in entry:
        entry = entry[1 : entry.index("]")]
    elif entry.count(":") == 1:
        entry = entry.partition(":")[0]
    try:
        address = ipaddress.ip_address(entry)
    except ValueError:
        return None
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return mapped or address


def _trusted(address: Address | None, proxies: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in proxies)


def client_address(
    peer: Sequence[object] | None, forwarded: Sequence[str], proxies: Sequence[Network]
) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then walk
    X-Forwarded-For from the right past trusted proxies (a malformed entry stops the walk
    at the last good address)."""
    host = str(peer[0]) if peer and peer[0] else ""
    address = _parse(host)
    if address is None or not _trusted(address, proxies):
        return str(address or host or "unknown")
    for entry in reversed([e for header in forwarded for e in header.split(",")]):
        hop = _parse(entry)
        if hop is None:
            break
        address = hop
        if not _trusted(hop, proxies):
            break
    return str(address)


async def client_key() -> str:
    """Whom a request counts against: its API key's name when it sent one, else its address."""
    if (key := g.get("api_key")) is not None:
        return f"key:{key.name}"
    return client_address(request.scope.get("client"),
                          request.headers.getlist("X-Forwarded-For"),
                          current_app.extensions[EXTENSION])


def _skip_unless(per_minute: int | None) -> Callable[[], Awaitable[bool]]:
    """A skip function: the limit applies to limited routes whose client's own limit is
    `per_minute` (None: clients without a limit of their own)."""

    async def skip() -> bool:
        if request.blueprint not in LIMITED_BLUEPRINTS or request.method == "OPTIONS":
            return True
        key = g.get("api_key")
        return (key.per_minute if key is not None else None) != per_minute

    return skip


class AtomicRateLimiter(RateLimiter):
    """The library's limiter (per-view limits, skips, keys, 429), except that one store
    call decides and records all of a request's limits: the library's get-then-set pair
    would let concurrent requests through together."""

    def __init__(self, app: Quart, gcra: GcraStore, **kwargs: object) -> None:
        self.gcra = gcra
        super().__init__(app, **kwargs)  # type: ignore[arg-type]

    async def _before_serving(self) -> None:
        # The app's services opened first (registered before this limiter): share their Redis.
        self.gcra.attach(services().redis)

    async def _after_serving(self) -> None:
        self.gcra.attach(None)

    async def _raise_on_rejection(self, endpoint: str, rate_limits: list[RateLimit]) -> None:
        if not rate_limits:
            return
        keys = [await self._create_key(endpoint, limit) for limit in rate_limits]
        spans = [(limit.inverse * 1000, limit.period.total_seconds() * 1000)
                 for limit in rate_limits]
        decision = await self.gcra.hit(await self.key_function(), keys, spans)
        g.rate_limit_decision = (rate_limits, decision)
        if decision.retry_after_ms:
            raise RateLimitExceeded(math.ceil(decision.retry_after_ms / 1000))

    async def _update_limits(self, endpoint: str, rate_limits: list[RateLimit]) -> None:
        """Nothing: `_raise_on_rejection` recorded an allowed request in the same call."""

    async def _after_request(self, response: Response) -> Response:
        state = g.get("rate_limit_decision")
        if state is None:
            return response
        rate_limits, decision = state
        i = min(range(len(rate_limits)), key=lambda n: rate_limits[n].period)
        limit, separation = rate_limits[i], decision.separations_ms[i] / 1000
        remaining = int((limit.period.total_seconds() - separation) / limit.inverse)
        response.headers["RateLimit-Limit"] = str(limit.count)
        response.headers["RateLimit-Remaining"] = str(max(0, remaining))
        response.headers["RateLimit-Reset"] = str(math.ceil(separation))
        return response


def init_rate_limits(app: Quart, settings: Settings) -> None:
    """RATE_LIMIT_PER_MINUTE per client on LIMITED_BLUEPRINTS; 0 turns limits off."""
    per_minute = settings.rate_limit_per_minute
    own = sorted({k.per_minute for k in settings.client_api_keys if k.per_minute})
    app.extensions[EXTENSION] = tuple(
        ipaddress.ip_network(n, strict=False) for n in settings.trusted_proxies)
    enabled = per_minute > 0 or bool(own)
    gcra = GcraStore()
    minute = timedelta(minutes=1)
    limits = [RateLimit(n, minute, skip_function=_skip_unless(n)) for n in own]
    if per_minute > 0:
        limits.append(RateLimit(per_minute, minute, skip_function=_skip_unless(None)))
    AtomicRateLimiter(app, gcra, key_function=client_key, default_limits=limits,
                      enabled=enabled)
