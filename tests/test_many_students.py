"""Many students at once: single-flight, stale pools refilled once, a shared budget."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from ielts_service.questions.prompts import load_prompts
from ielts_service.state.flight import lock_name
from ielts_service.state.pools import Pool, pool_key
from tests.conftest import azure_env
from tests.support import fake_model as fm
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parent.parent
URL = "/generate-question"


async def ask(client, **payload):
    response = await client.post(URL, json=payload)
    return response.status_code, (await response.get_json())


@pytest.fixture
async def two_instances(make_client, make_settings, fake_model, redis):
    """Two app instances sharing one Redis, as two servers behind a load balancer would.
    VARIETY_SERVES_PER_ITEM=0: a storm served the pool's items many times over would
    otherwise (rightly) widen it; these tests count the single flight alone
    (tests/test_class_variety.py counts the widenings)."""
    env = azure_env(fake_model, REDIS_URL=redis.url, VARIETY_SERVES_PER_ITEM="0")
    return [await make_client(make_settings(env)) for _ in range(2)]


async def test_a_cold_storm_on_two_instances_costs_one_model_call(two_instances, fake_model):
    fake_model.set_default(fm.slow(0.5))
    results = await asyncio.gather(*(ask(two_instances[i % 2], topic="volcanoes", part=2)
                                     for i in range(40)))
    assert {status for status, _ in results} == {200}
    assert len(fake_model.requests) == 1
    assert sorted(body["data"]["source"] for _, body in results).count("ai") == 1


async def redis_client(url: str) -> aioredis.Redis:
    return aioredis.from_url(url, decode_responses=True)


async def hold_lease(url: str, topic: str, lease_ms: int) -> None:
    """Take a Part 2 pool's single-flight lease as another process would, and walk away."""
    key = pool_key(2, topic, load_prompts(ROOT / "prompts")[2].version, "gpt-4o-test")
    r = await redis_client(url)
    try:
        await r.set(lock_name(key), "another-holder", px=lease_ms)
    finally:
        await r.aclose()


async def test_a_dead_holders_lease_runs_out_and_a_waiter_takes_over(
    make_client, make_settings, fake_model, redis
):
    client = await make_client(make_settings(azure_env(fake_model, REDIS_URL=redis.url)))
    started = time.monotonic()  # before the lease is taken: it cannot run out sooner than 1 s
    # A holder that died: its lease is there, nobody renews it, nobody will publish.
    await hold_lease(redis.url, "volcanoes", lease_ms=1000)
    status, body = await ask(client, topic="volcanoes", part=2)
    waited = time.monotonic() - started
    assert status == 200 and body["data"]["source"] == "ai"  # taken over within the deadline
    assert len(fake_model.requests) == 1 and waited >= 1.0


async def test_a_waiter_never_waits_past_its_deadline(make_client, make_settings, fake_model,
                                                      redis):
    client = await make_client(make_settings(azure_env(
        fake_model, REDIS_URL=redis.url, REQUEST_TIMEOUT_SECONDS="1")))
    await hold_lease(redis.url, "quantum chromodynamics", lease_ms=60000)
    started = time.monotonic()
    response = await client.post(URL, json={"topic": "quantum chromodynamics"})
    elapsed = time.monotonic() - started
    # Waiting out the 60 s lease instead would take over and answer 200 after a minute.
    assert response.status_code == 504 and elapsed < 30
    assert fake_model.requests == []


async def test_a_stale_pool_is_served_while_exactly_one_refill_runs(two_instances, fake_model,
                                                                    redis):
    prompt = load_prompts(ROOT / "prompts")[2]
    key = pool_key(2, "volcanoes", prompt.version, "gpt-4o-test")
    old = fm.valid_items(2, 3)
    r = await redis_client(redis.url)
    try:
        await r.set(key, Pool(old, time.time() - 10).dumps(), ex=3600)
        fake_model.set_default(fm.slow(0.3))
        results = await asyncio.gather(*(ask(two_instances[i % 2], topic="volcanoes")
                                         for i in range(20)))
        assert {body["data"]["source"] for _, body in results} == {"cache"}
        assert {body["data"]["cue_card"]["title"] for _, body in results} <= {
            i["title"] for i in old}

        async def refilled() -> Pool | None:
            pool = Pool.loads(await r.get(key))
            return pool if pool.items[0] != old[0] else None

        pool = await eventually(refilled)
    finally:
        await r.aclose()
    assert not pool.stale and len(fake_model.requests) == 1


async def test_the_model_budget_holds_across_two_instances(make_client, make_settings,
                                                           fake_model, redis):
    # At 2 a minute the next request is 30 s away: further than the 10 s deadline.
    env = azure_env(fake_model, REDIS_URL=redis.url, AI_BUDGET_RPM="2",
                    REQUEST_TIMEOUT_SECONDS="10")
    a, b = [await make_client(make_settings(env)) for _ in range(2)]
    answers = [await ask(client, topic=topic) for client, topic in
               ((a, "volcanoes"), (b, "glaciers"), (a, "a memorable trip"), (b, "deserts"))]
    assert len(fake_model.requests) == 2
    assert [body["data"]["source"] for _, body in answers[:2]] == ["ai", "ai"]
    assert answers[2][1]["data"]["source"] == "bank" and answers[2][1]["data"]["degraded"]
    assert answers[3][0] == 503 and answers[3][1]["code"] == "upstream_unavailable"
    metrics = await (await a.get("/metrics")).get_data(as_text=True)
    assert 'ielts_ai_budget_remaining{kind="requests"}' in metrics


@pytest.mark.e2e
def test_a_cold_storm_across_two_workers_costs_one_model_call(serve, fake_model, redis):
    server = serve("--workers", "2", **azure_env(fake_model, REDIS_URL=redis.url,
                                                 RATE_LIMIT_PER_MINUTE="0",
                                                 VARIETY_SERVES_PER_ITEM="0"))  # see above
    fake_model.set_default(fm.slow(1.0))

    async def storm() -> list[int]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            replies = await asyncio.gather(*(client.post(server.url + URL,
                                                         json={"topic": "volcanoes"})
                                             for _ in range(100)))
        return [reply.status_code for reply in replies]

    assert set(asyncio.run(storm())) == {200}
    assert len(fake_model.requests) == 1
