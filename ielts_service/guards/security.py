"""Who may call what: bearer tokens, client API keys, CORS, and security headers.

Wrong credentials are counted per client (`AUTH_FAILURES_PER_HOUR`): past the limit every
attempt of that client, right or wrong, is 429 before its credential is even compared, so
a guesser cannot tell a hit from a miss.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from pydantic import SecretStr
from quart import Quart, Response, g, request
from quart_cors import cors

from ielts_service.config import ApiKey, Settings
from ielts_service.errors import APIError
from ielts_service.guards.clients import client_key
from ielts_service.services import services

T = TypeVar("T")

PROTECTED_BLUEPRINTS = frozenset({"questions"})  # what client API keys guard, when configured
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


_DEFAULTS = (*HEADERS.items(), ("Cache-Control", "no-store"))


async def counting_failures(verify: Callable[[], T | None], wrong: str) -> T:
    """`verify()`'s result; None means the credential was wrong: 403 `wrong`, counted.
    A client past its failures gets 429 without `verify` running."""
    failures, client = services().auth_failures, await client_key()
    if wait := await failures.check(client):
        raise APIError.of("rate_limited", "too many failed attempts; try again later",
                          headers={"Retry-After": str(max(1, math.ceil(wait)))})
    if (found := verify()) is None:
        await failures.take(client)
        raise APIError.of("forbidden", wrong)
    return found


async def require_bearer(secret: SecretStr | None, name: str) -> None:
    """401 without `Authorization: Bearer`, 403 with a wrong token or when `name` is unset.

    The comparison takes the same time whatever the token's content."""
    if secret is None:
        raise APIError.of("forbidden", f"this route is disabled: {name} is not set")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise APIError.of("unauthorized", f"send Authorization: Bearer <{name}>",
                          headers={"WWW-Authenticate": "Bearer"})
    expected = secret.get_secret_value().encode()
    await counting_failures(lambda: hmac.compare_digest(given.encode(), expected) or None,
                            f"wrong {name}")


def find_api_key(keys: tuple[ApiKey, ...], given: str) -> ApiKey | None:
    """The configured key whose SHA-256 matches `given` (every entry compared, in full)."""
    digest = hashlib.sha256(given.encode()).hexdigest()
    found = None
    for key in keys:
        if hmac.compare_digest(key.sha256, digest):
            found = key
    return found


def init_security(app: Quart, settings: Settings) -> None:
    """Register API-key checks, CORS and security headers on the app."""
    keys = settings.client_api_keys

    @app.before_request
    async def _require_api_key() -> None:
        if not keys or request.blueprint not in PROTECTED_BLUEPRINTS:
            return
        if request.method == "OPTIONS":  # a CORS preflight carries no credentials
            return
        given = request.headers.get("X-API-Key", "")
        if not given:
            raise APIError.of("unauthorized", "send your API key in the X-API-Key header")
        g.api_key = await counting_failures(lambda: find_api_key(keys, given), "unknown API key")

    @app.after_request
    async def _security_headers(response: Response) -> Response:
        headers = response.headers
        # One pass instead of a setdefault per header (each scans the list, and werkzeug's
        # `in` raises and catches an exception per absent header): only a route with a page
        # of its own (/docs) sets a Content-Security-Policy first.
        present = {key.lower() for key, _ in headers.items()}
        headers.extend((k, v) for k, v in _DEFAULTS if k.lower() not in present)
        return response

    if settings.cors_origins:
        cors(app, allow_origin=list(settings.cors_origins),
             allow_methods=["GET", "POST", "OPTIONS"],
             allow_headers=["Content-Type", "X-Request-ID", "X-API-Key", "Authorization"],
             expose_headers=["X-Request-ID", "Retry-After", "RateLimit-Limit",
                             "RateLimit-Remaining", "RateLimit-Reset"],
             max_age=timedelta(minutes=10))
