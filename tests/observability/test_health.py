"""Health endpoints an orchestrator can trust, bounded even when a dependency goes silent."""

from __future__ import annotations

import time

from tests.conftest import azure_env


async def test_live_checks_nothing_but_the_process(make_client, make_settings, black_hole):
    client = await make_client(make_settings(REDIS_URL=black_hole))
    started = time.monotonic()
    response = await client.get("/health/live")
    assert response.status_code == 200 and time.monotonic() - started < 0.2


async def test_ready_lists_each_check_with_state_and_latency(azure_client):
    response = await azure_client.get("/health/ready")
    body = await response.get_json()
    assert response.status_code == 200
    checks = body["data"]["checks"]
    assert set(checks) == {"cache", "prompts", "model"}
    assert all(c["state"] == "ok" and c["latency_ms"] >= 0 for c in checks.values())
    assert checks["cache"]["backend"] == "redis" and checks["prompts"]["parts"] == [1, 2, 3]


async def test_ready_answers_within_a_second_when_redis_never_replies(
    make_client, make_settings, fake_model, black_hole
):
    client = await make_client(make_settings(azure_env(fake_model, REDIS_URL=black_hole,
                                                       REDIS_TIMEOUT_SECONDS="5")))
    started = time.monotonic()
    response = await client.get("/health/ready")
    elapsed = time.monotonic() - started
    body = await response.get_json()
    assert response.status_code == 503 and elapsed < 1.0
    assert body["code"] == "not_ready" and body["checks"]["cache"]["state"] == "down"
    assert body["checks"]["model"]["state"] == "ok"


async def test_ready_is_503_when_redis_is_down_and_200_when_it_is_back(azure_client, redis):
    redis.stop()
    down = await azure_client.get("/health/ready")
    redis.start()
    up = await azure_client.get("/health/ready")
    assert down.status_code == 503 and up.status_code == 200
