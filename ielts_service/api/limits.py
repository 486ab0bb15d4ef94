"""Per-client rate limits on the question routes, with quart-rate-limiter.

The key is the client's address as the server saw it; forwarded-for headers are not
trusted. The store is the library's in-process one: limits hold per instance.
"""

from __future__ import annotations

from datetime import timedelta

from quart import Quart, request
from quart_rate_limiter import RateLimit, RateLimiter

LIMITED_BLUEPRINTS = frozenset({"questions"})


async def _client_key() -> str:
    return request.scope.get("client", ("unknown",))[0] or "unknown"  # type: ignore[index]


async def _not_limited() -> bool:
    return request.blueprint not in LIMITED_BLUEPRINTS


def init_rate_limits(app: Quart, per_minute: int) -> None:
    """`per_minute` requests per client on the question routes; 0 turns limits off."""
    limits = [RateLimit(max(per_minute, 1), timedelta(minutes=1), skip_function=_not_limited)]
    RateLimiter(app, key_function=_client_key, default_limits=limits, enabled=per_minute > 0)
