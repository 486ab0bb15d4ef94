"""Rate limits answer 429 in the envelope; admin routes need the bearer token."""

from __future__ import annotations

import pytest

from tests.conftest import azure_env
from tests.support.waiting import generations_settled

TOKEN = "admin-token-for-tests-8c2e-0123456"


async def test_rate_limit_is_a_429_envelope_with_one_retry_after(make_client, make_settings):
    client = await make_client(make_settings(RATE_LIMIT_PER_MINUTE=2))
    statuses = [(await client.post("/generate-question", json={})).status_code for _ in range(2)]
    limited = await client.post("/generate-question", json={})
    body = await limited.get_json()
    assert statuses == [200, 200] and limited.status_code == 429
    assert body["code"] == "rate_limited"
    assert limited.headers.getlist("Retry-After") == [limited.headers["Retry-After"]]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60


async def test_health_is_not_rate_limited(make_client, make_settings):
    client = await make_client(make_settings(RATE_LIMIT_PER_MINUTE=1))
    statuses = {(await client.get("/health/live")).status_code for _ in range(5)}
    assert statuses == {200}


@pytest.fixture
async def admin_client(make_client, make_settings, fake_model, redis):
    return await make_client(make_settings(azure_env(fake_model, REDIS_URL=redis.url,
                                                     ADMIN_TOKEN=TOKEN)))


@pytest.mark.parametrize(("method", "path"), [("GET", "/admin/prompts"),
                                              ("POST", "/admin/prompts/reload"),
                                              ("POST", "/admin/cache/purge")])
async def test_admin_routes_need_a_bearer_token(admin_client, method, path):
    missing = await admin_client.open(path, method=method)
    wrong = await admin_client.open(path, method=method,
                                    headers={"Authorization": "Bearer nope"})
    assert missing.status_code == 401 and (await missing.get_json())["code"] == "unauthorized"
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert wrong.status_code == 403 and (await wrong.get_json())["code"] == "forbidden"


async def test_admin_routes_are_closed_without_an_admin_token(bank_client):
    response = await bank_client.get("/admin/prompts",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 403


async def test_cache_purge_makes_the_next_request_call_the_model(admin_client, fake_model):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    await admin_client.post("/generate-question", json={"topic": "gardens"})
    await generations_settled(admin_client)  # the pool lands when the stream ends
    purge = await admin_client.post("/admin/cache/purge", headers=auth)
    again = await admin_client.post("/generate-question", json={"topic": "gardens"})
    assert (await purge.get_json())["data"] == {"purged_pools": 1}
    assert (await again.get_json())["data"]["source"] == "ai"
    assert len(fake_model.requests) == 2


async def test_admin_lists_prompt_versions(admin_client):
    response = await admin_client.get("/admin/prompts",
                                      headers={"Authorization": f"Bearer {TOKEN}"})
    versions = (await response.get_json())["data"]["prompts"]
    assert sorted(versions) == ["part1", "part2", "part3"]


async def test_prompt_reload_takes_effect_without_a_restart(
    make_client, make_settings, fake_model, tmp_path
):
    import shutil
    from pathlib import Path

    prompts = tmp_path / "prompts"
    shutil.copytree(Path(__file__).resolve().parents[2] / "prompts", prompts)
    client = await make_client(make_settings(azure_env(
        fake_model, ADMIN_TOKEN=TOKEN, PROMPTS_DIR=str(prompts), PROMPTS_RELOAD_SECONDS="0")))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    before = (await (await client.post("/generate-question", json={"topic": "gardens"}))
              .get_json())["data"]
    (prompts / "part2.txt").write_text("---\ndescription: short\n---\n"
                                       "Cards about {{ topic }}, {{ count }} of them.")
    reload = await client.post("/admin/prompts/reload", headers=auth)
    after = (await (await client.post("/generate-question", json={"topic": "gardens"}))
             .get_json())["data"]
    assert reload.status_code == 200
    assert after["prompt_version"] != before["prompt_version"] and after["source"] == "ai"
    assert fake_model.requests[-1].body["messages"][1]["content"].startswith("Cards about")

    (prompts / "part2.txt").write_text("---\ndescription: broken\n---\nno placeholder")
    broken = await client.post("/admin/prompts/reload", headers=auth)
    still = (await (await client.post("/generate-question", json={"topic": "gardens"}))
             .get_json())["data"]
    assert broken.status_code == 422 and (await broken.get_json())["code"] == "invalid_prompts"
    assert still["prompt_version"] == after["prompt_version"]
