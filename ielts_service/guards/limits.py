"""Per-client rate limits on the question routes, with quart-rate-limiter.

Key: `guards.clients.client_key()` (the API key's name, else the address, IPv6 by /64),
one limit per client across every limited route, not one per route. Store: with
REDIS_URL, one Lua script per request decides and records every limit (shared by all
workers and instances; see `rate_store`); without, or while Redis fails, an in-process GCRA.

Headers: the library's `after_request` reads the store a second time for the
`RateLimit-*` headers; here the one atomic call returns what they need, so they are set
without a second round trip, and only on requests that were limited (not on /health).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import timedelta

from quart import Quart, Response, g, request
from quart_rate_limiter import RateLimit, RateLimiter, RateLimitExceeded

from ielts_service.config import Settings
from ielts_service.guards.clients import client_key
from ielts_service.services import services
from ielts_service.state.rate_store import GcraStore

LIMITED_BLUEPRINTS = frozenset({"questions"})


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
        decision = await self.gcra.hit(keys, spans)
        g.rate_limit_decision = (rate_limits, decision)
        if decision.retry_after_ms:
            raise RateLimitExceeded(math.ceil(decision.retry_after_ms / 1000))

    async def _create_key(self, endpoint: str, rate_limit: RateLimit) -> str:
        """One key per client and limit, whatever the route: the library's own key names
        the endpoint, which gave a client a fresh minute on every route. The `{c:...}` hash
        tag keeps a client's limits and quotas in one cluster slot."""
        period = int(rate_limit.period.total_seconds())
        return f"{{c:{await client_key()}}}:{rate_limit.count}:{period}"

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
    enabled = per_minute > 0 or bool(own)
    gcra = GcraStore()
    minute = timedelta(minutes=1)
    limits = [RateLimit(n, minute, skip_function=_skip_unless(n)) for n in own]
    if per_minute > 0:
        limits.append(RateLimit(per_minute, minute, skip_function=_skip_unless(None)))
    AtomicRateLimiter(app, gcra, key_function=client_key, default_limits=limits,
                      enabled=enabled)
