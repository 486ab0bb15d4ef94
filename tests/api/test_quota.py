"""What one client, and the whole deployment, may spend on the model; what a client sees."""

from __future__ import annotations

import pytest

from ielts_service.questions.bank import Bank
from tests.conftest import azure_env
from tests.observability.test_metrics import value
from tests.support import fake_model as fm

URL = "/generate-question"
KNOWN = ("travel", "cooking", "books", "friends")  # the bank has items on each


def nonsense(n: int) -> str:
    topic = f"zorblaxian quidnunc {n}"
    # The bank has nothing on it: past the quota there is nothing to fall back on.
    assert all(Bank.load().items_for(topic, part) is None for part in (1, 2, 3))
    return topic


async def ask(client, topic, **payload):
    response = await client.post(URL, json={"topic": topic, **payload})
    return response, await response.get_json()


@pytest.fixture
def app_with(make_client, make_settings, fake_model, redis):
    async def start(**env):
        return await make_client(make_settings(azure_env(
            fake_model, REDIS_URL=redis.url, RATE_LIMIT_PER_MINUTE="0", **env)))

    return start


async def test_past_the_quota_the_bank_answers_when_it_knows_the_topic(app_with, fake_model):
    client = await app_with(GENERATIONS_PER_CLIENT_PER_HOUR="2")
    first = [await ask(client, nonsense(n)) for n in range(2)]
    known = [await ask(client, topic) for topic in KNOWN]
    assert [body["data"]["source"] for _, body in first] == ["ai", "ai"]
    for response, body in known:
        assert response.status_code == 200
        assert body["data"]["source"] == "bank" and body["data"]["degraded"] is True
    assert len(fake_model.requests) == 2


async def test_past_the_quota_a_topic_the_bank_lacks_is_a_429_with_retry_after(app_with,
                                                                               fake_model):
    client = await app_with(GENERATIONS_PER_CLIENT_PER_HOUR="4")
    answers = [await ask(client, nonsense(n)) for n in range(6)]
    metrics = await (await client.get("/metrics")).get_data(as_text=True)
    assert [r.status_code for r, _ in answers] == [200] * 4 + [429] * 2
    response, body = answers[-1]
    assert body["code"] == "generation_limited" and "try again later" in body["message"]
    # 4 an hour: one comes back every 15 minutes.
    assert response.headers.getlist("Retry-After") in (["900"], ["899"])
    assert value(metrics, "ielts_generations_refused_total", reason="client_quota") == 2
    assert len(fake_model.requests) == 4


async def test_every_attempt_that_reaches_the_model_counts(app_with, fake_model):
    client = await app_with(GENERATIONS_PER_CLIENT_PER_HOUR="3", AI_MAX_ATTEMPTS="4")
    fake_model.set_default(fm.ok(fm.invalid_items(2)))  # every answer unusable: retried
    response, body = await ask(client, nonsense(0))
    assert len(fake_model.requests) == 3  # the fourth attempt was refused before it went out
    assert response.status_code == 429 and body["code"] == "generation_limited"


async def test_the_quota_counts_across_routes(app_with, fake_model):
    client = await app_with(GENERATIONS_PER_CLIENT_PER_HOUR="6")
    test = await client.post("/v1/mock-test", json={"topic": nonsense(0)})
    assert test.status_code == 200 and (await test.get_json())["data"]["part2"]["source"] == "ai"
    calls = len(fake_model.requests)  # three Part 1 pools, Part 2 and Part 3: all new
    response, body = await ask(client, nonsense(1))
    assert calls == 5 and len(fake_model.requests) == 6 and response.status_code == 200
    second = await client.post("/v1/mock-test", json={"topic": nonsense(2)})
    assert second.status_code == 429 and (await second.get_json())["code"] == "generation_limited"
    assert len(fake_model.requests) == 6


async def test_clients_have_quotas_of_their_own(app_with, fake_model):
    client = await app_with(GENERATIONS_PER_CLIENT_PER_HOUR="1")

    async def from_(address, topic):
        response = await client.post(URL, json={"topic": topic},
                                     scope_base={"client": (address, 5000)})
        return response.status_code

    assert [await from_("203.0.113.1", nonsense(0)), await from_("203.0.113.1", nonsense(1)),
            await from_("203.0.113.2", nonsense(2))] == [200, 429, 200]
    assert len(fake_model.requests) == 2


async def test_zero_turns_the_quota_off(app_with, fake_model):
    client = await app_with(GENERATIONS_PER_CLIENT_PER_HOUR="0")
    assert {(await ask(client, nonsense(n)))[0].status_code for n in range(5)} == {200}
    assert len(fake_model.requests) == 5


async def test_the_daily_ceiling_holds_across_two_instances_and_says_so(
    app_with, fake_model, log_events
):
    a, b = await app_with(AI_CALLS_PER_DAY="2"), await app_with(AI_CALLS_PER_DAY="2")
    first = [await ask(client, nonsense(n)) for n, client in enumerate((a, b))]
    known, _ = await ask(a, KNOWN[0]), None
    unknown = await ask(b, nonsense(9))
    assert [body["data"]["source"] for _, body in first] == ["ai", "ai"]
    assert known[1]["data"]["source"] == "bank" and known[1]["data"]["degraded"] is True
    assert unknown[0].status_code == 503 and unknown[1]["code"] == "upstream_unavailable"
    assert 1 <= int(unknown[0].headers["Retry-After"]) <= 86400  # until midnight UTC
    assert len(fake_model.requests) == 2
    metrics = await (await a.get("/metrics")).get_data(as_text=True)
    assert value(metrics, "ielts_generations_refused_total", reason="ceiling") >= 1
    assert value(metrics, "ielts_ai_budget_remaining", kind="calls_today") == 0
    reached = [e for e in log_events() if e["event"] == "ai_ceiling_reached"]
    assert reached and reached[0]["level"] == "warning" and reached[0]["calls_per_day"] == 2


async def test_the_ceiling_without_redis_holds_in_the_process(make_client, make_settings,
                                                              fake_model):
    client = await make_client(make_settings(azure_env(fake_model, AI_CALLS_PER_DAY="1")))
    sources = [(await ask(client, topic))[1]["data"]["source"] for topic in KNOWN[:3]]
    assert sources == ["ai", "bank", "bank"] and len(fake_model.requests) == 1


async def test_the_per_minute_limit_counts_one_client_across_routes(make_client, make_settings):
    client = await make_client(make_settings(RATE_LIMIT_PER_MINUTE="3"))
    answers = [await client.post(URL, json={}), await client.post("/v1/mock-test", json={}),
               await client.get(URL), await client.post("/v1/mock-test", json={}),
               await client.get(URL)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429, 429]
