"""Only the right people in: client API keys, the metrics token, CORS, security headers."""

from __future__ import annotations

import hashlib

import pytest

URL = "/generate-question"
KEY_A, KEY_B = "key-a-0f1e2d3c4b5a", "key-b-9a8b7c6d5e4f"
SCRAPE = "scrape-token-77aa-long-enough-to-start"
ADMIN = "admin-token-0123456789abcdef-0123456789"
GUESSER, OTHER = ("198.51.100.66", 4000), ("198.51.100.67", 4000)


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@pytest.fixture
async def keyed(make_client, make_settings):
    """A service with two client keys: `a` limited to 2 per minute, `b` on the default 60."""
    return await make_client(make_settings(
        CLIENT_API_KEYS=f"frontend-a:{sha(KEY_A)}:2, frontend-b:{sha(KEY_B)}"))


async def test_api_keys_are_required_when_configured(keyed):
    missing = await keyed.post(URL, json={})
    unknown = await keyed.post(URL, json={}, headers={"X-API-Key": "guess"})
    allowed = await keyed.post(URL, json={}, headers={"X-API-Key": KEY_B})
    assert missing.status_code == 401 and (await missing.get_json())["code"] == "unauthorized"
    assert unknown.status_code == 403 and (await unknown.get_json())["code"] == "forbidden"
    assert allowed.status_code == 200
    assert (await keyed.get("/health/live")).status_code == 200  # only question routes


async def test_each_api_key_has_its_own_rate_limit(keyed):
    a = [(await keyed.post(URL, json={}, headers={"X-API-Key": KEY_A})).status_code
         for _ in range(3)]
    b = [(await keyed.post(URL, json={}, headers={"X-API-Key": KEY_B})).status_code
         for _ in range(3)]
    assert a == [200, 200, 429] and b == [200, 200, 200]


def test_a_plain_key_in_configuration_is_refused(make_settings):
    from ielts_service.config import ConfigError

    with pytest.raises(ConfigError, match="CLIENT_API_KEYS"):
        make_settings(CLIENT_API_KEYS=f"frontend:{KEY_A}")


async def test_metrics_can_require_a_token(make_client, make_settings):
    client = await make_client(make_settings(METRICS_TOKEN=SCRAPE))
    missing = await client.get("/metrics")
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    right = await client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE}"})
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 403, 200)
    assert "ielts_http_requests_total" in await right.get_data(as_text=True)


async def test_guessing_the_admin_token_is_limited_per_client(make_client, make_settings):
    client = await make_client(make_settings(ADMIN_TOKEN=ADMIN, AUTH_FAILURES_PER_HOUR="3"))

    async def admin(token: str, peer=GUESSER):
        return await client.get("/admin/prompts", headers={"Authorization": f"Bearer {token}"},
                                scope_base={"client": peer})

    guesses = [(await admin(f"guess-{n}")).status_code for n in range(3)]
    blocked = await admin(ADMIN)  # even the right token: a guesser cannot tell a hit
    assert guesses == [403, 403, 403] and blocked.status_code == 429
    assert (await blocked.get_json())["code"] == "rate_limited"
    assert 1000 <= int(blocked.headers["Retry-After"]) <= 1200  # 3 an hour: one per 20 min
    assert (await admin(ADMIN, peer=OTHER)).status_code == 200  # another client is not


async def test_guessing_api_keys_is_limited_per_client(make_client, make_settings):
    client = await make_client(make_settings(CLIENT_API_KEYS=f"frontend-b:{sha(KEY_B)}",
                                             AUTH_FAILURES_PER_HOUR="2"))

    async def ask(key: str, peer=GUESSER):
        response = await client.post(URL, json={}, headers={"X-API-Key": key},
                                     scope_base={"client": peer})
        return response.status_code

    assert [await ask("guess-1"), await ask("guess-2"), await ask(KEY_B)] == [403, 403, 429]
    assert await ask(KEY_B, peer=OTHER) == 200
    # A missing key is not a guess: it costs nothing.
    assert [(await client.post(URL, json={}, scope_base={"client": OTHER})).status_code
            for _ in range(3)] == [401] * 3 and await ask(KEY_B, peer=OTHER) == 200


async def test_metrics_are_open_without_a_token(bank_client):
    assert (await bank_client.get("/metrics")).status_code == 200


@pytest.mark.parametrize(("method", "path"), [("GET", "/health/live"), ("POST", URL),
                                              ("GET", "/nope"), ("POST", "/admin/cache/purge")])
async def test_every_response_carries_security_headers(bank_client, method, path):
    response = await bank_client.open(path, method=method, json={})
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.fixture
async def cors_client(make_client, make_settings):
    return await make_client(make_settings(CORS_ORIGINS="https://practice.example"))


async def test_cors_allows_a_configured_origin(cors_client):
    response = await cors_client.post(URL, json={}, headers={"Origin": "https://practice.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://practice.example"
    assert "X-Request-ID" in response.headers["Access-Control-Expose-Headers"]


async def test_cors_refuses_another_origin(cors_client):
    response = await cors_client.post(URL, json={}, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_cors_preflight_both_ways(cors_client):
    headers = {"Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "content-type"}
    allowed = await cors_client.options(URL, headers={"Origin": "https://practice.example",
                                                      **headers})
    refused = await cors_client.options(URL, headers={"Origin": "https://evil.example",
                                                      **headers})
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://practice.example"
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    assert "content-type" in allowed.headers["Access-Control-Allow-Headers"].lower()
    assert "Access-Control-Allow-Origin" not in refused.headers


async def test_no_cors_without_configured_origins(bank_client):
    response = await bank_client.post(URL, json={}, headers={"Origin": "https://practice.example"})
    assert "Access-Control-Allow-Origin" not in response.headers
