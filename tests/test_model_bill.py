"""Nobody runs up the model bill, over real sockets: real `serve` processes, a real Redis,
the real openai SDK against the fake Azure server."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
import redis as redis_sync

from ielts_service.questions.bank import Bank
from ielts_service.questions.prompts import load_prompts
from ielts_service.state.pools import pool_key
from tests.conftest import azure_env
from tests.support import fake_model as fm
from tests.support.process import Server
from tests.support.worker_metrics import per_worker

ROOT = Path(__file__).resolve().parent.parent
URL = "/generate-question"
pytestmark = pytest.mark.e2e


def nonsense(n: int) -> str:
    """A new topic no bank area covers: past the quota there is nothing to fall back on."""
    topic = f"zorblaxian quidnunc {n}"
    assert all(Bank.load().items_for(topic, part) is None for part in (1, 2, 3))
    return topic


def post(server: Server, topic: str, *, forwarded: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return httpx.post(server.url + URL, json={"topic": topic}, headers=headers, timeout=60)


def check_limited(response: httpx.Response) -> None:
    """A refusal of the quota: the envelope's 429 with one whole-seconds Retry-After."""
    assert response.json()["code"] == "generation_limited"
    assert len(response.headers.get_list("Retry-After")) == 1
    assert int(response.headers["Retry-After"]) >= 1


async def _concurrently(server: Server, topics: list[str]) -> list[httpx.Response]:
    # No keep-alive: every request is a new connection, which either worker may accept.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        return list(await asyncio.gather(*(client.post(server.url + URL, json={"topic": t})
                                           for t in topics)))


def test_a_client_past_its_quota_costs_no_model_call_on_either_of_two_workers(
    serve, fake_model, redis, tmp_path
):
    metrics_dir = tmp_path / "metrics"
    server = serve("--workers", "2", **azure_env(
        fake_model, REDIS_URL=redis.url, GENERATIONS_PER_CLIENT_PER_HOUR="10",
        RATE_LIMIT_PER_MINUTE="0", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)))
    responses: list[httpx.Response] = []
    while True:  # 30 new topics at least, until both workers have answered some
        answered = per_worker(metrics_dir, "ielts_http_requests_total", route=URL)
        if len(responses) >= 30 and len(answered) == 2 and min(answered.values()) >= 5:
            break
        assert len(responses) < 300, f"workers answered {answered}"
        responses += asyncio.run(_concurrently(
            server, [nonsense(len(responses) + i) for i in range(10)]))
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 429}, codes  # no 5xx
    assert len(fake_model.requests) == 10 and codes.count(200) == 10
    for response in responses:
        if response.status_code == 429:
            check_limited(response)
    # Answers from pools cost nothing and are never limited: a topic already written is served.
    served = [r.json()["data"]["topic"] for r in responses if r.status_code == 200]
    again = post(server, served[0])
    assert again.status_code == 200 and again.json()["data"]["source"] == "cache"
    assert len(fake_model.requests) == 10


def test_an_ipv6_client_counts_by_its_64_through_a_trusted_proxy(serve, fake_model, redis):
    server = serve(**azure_env(fake_model, REDIS_URL=redis.url, TRUSTED_PROXIES="127.0.0.1/32",
                               GENERATIONS_PER_CLIENT_PER_HOUR="10", RATE_LIMIT_PER_MINUTE="0"))
    # Thirty addresses of one /64, as a client rotating through its own subnet would send.
    rotated = [post(server, nonsense(n), forwarded=f"2001:db8:7:7:{n:x}:{n * 7:x}::{n + 1:x}")
               for n in range(30)]
    assert [r.status_code for r in rotated].count(200) == 10
    assert len(fake_model.requests) == 10
    for response in rotated[10:]:
        check_limited(response)
    # Another /64 is another client, with a quota of its own.
    other = post(server, nonsense(99), forwarded="2001:db8:7:8::1")
    assert other.status_code == 200 and other.json()["data"]["source"] == "ai"
    assert len(fake_model.requests) == 11


def test_get_with_new_topics_never_calls_the_model(serve, fake_model, redis):
    server = serve(**azure_env(fake_model, REDIS_URL=redis.url, RATE_LIMIT_PER_MINUTE="0"))
    # Ten topics the bank has nothing on, ten it has (no pool holds any of them yet).
    known = ["travel", "music", "Cooking", "sports", "books", "weather", "shopping", "friends",
             "films", "parks"]
    topics = [nonsense(n) for n in range(10)] + known
    answers = [httpx.get(server.url + URL, params={"topic": t, "part": 2}, timeout=60)
               for t in topics]
    assert fake_model.requests == []
    for answer in answers[:10]:
        assert answer.status_code == 404 and answer.json()["code"] == "not_cached"
    for answer in answers[10:]:
        data = answer.json()["data"]
        assert answer.status_code == 200 and data["source"] == "bank"
    # What a POST wrote, a GET serves.
    assert post(server, topics[0]).json()["data"]["source"] == "ai"
    cached = httpx.get(server.url + URL, params={"topic": topics[0], "part": 2}, timeout=60)
    assert cached.json()["data"]["source"] == "cache" and len(fake_model.requests) == 1


def test_the_breaker_stays_closed_through_invalid_output(serve, fake_model, redis):
    server = serve(**azure_env(fake_model, REDIS_URL=redis.url, RATE_LIMIT_PER_MINUTE="0"))
    fake_model.enqueue(*[fm.ok(fm.invalid_items(2)) for _ in range(16)])
    failed = [post(server, nonsense(n)) for n in range(4)]  # 4 attempts each
    assert len(fake_model.requests) == 16
    assert {r.json()["code"] for r in failed} == {"upstream_unavailable"}
    fresh = post(server, nonsense(4))
    ready = httpx.get(server.url + "/health/ready", timeout=30).json()
    assert fresh.status_code == 200 and fresh.json()["data"]["source"] == "ai"
    assert ready["data"]["checks"]["model"]["circuit"] == "closed"


def plant(url: str, topic: str, items: list[object]) -> None:
    """Write a pool into Redis as another writer (or an attacker with its password) could."""
    key = pool_key(2, topic, load_prompts(ROOT / "prompts")[2].version, "gpt-4o-test")
    client = redis_sync.Redis.from_url(url)
    try:
        client.set(key, json.dumps({"items": items, "fresh_until": time.time() + 3600}), ex=3600)
    finally:
        client.close()


def test_a_planted_malformed_pool_item_costs_a_fresh_call_not_a_500(serve, fake_model, redis):
    # VARIETY_SERVES_PER_ITEM=0: the mixed pool's one valid card served thrice would widen it
    server = serve(**azure_env(fake_model, REDIS_URL=redis.url, RATE_LIMIT_PER_MINUTE="0",
                               VARIETY_SERVES_PER_ITEM="0"))
    good = fm.valid_items(2, 1)[0]
    plant(redis.url, nonsense(1), [{"title": 5}, "text", {**good, "bullets": "what it is"}, None])
    plant(redis.url, nonsense(2), [{"questions": ["Who?"]}, good])
    malformed = post(server, nonsense(1))
    mixed = [post(server, nonsense(2)) for _ in range(3)]
    assert malformed.status_code == 200 and malformed.json()["data"]["source"] == "ai"
    assert len(fake_model.requests) == 1  # the malformed pool was a miss, and is replaced
    for answer in mixed:  # the valid item of a mixed pool is served, the rest never
        data = answer.json()["data"]
        assert data["source"] == "cache" and data["cue_card"]["title"] == good["title"]
    assert post(server, nonsense(1)).json()["data"]["source"] == "cache"
    assert len(fake_model.requests) == 1


def test_no_key_is_left_without_an_expiry(serve, fake_model, redis):
    """Every kind of key a day of traffic writes expires, sessions within SESSION_TTL_SECONDS."""
    server = serve(**azure_env(fake_model, REDIS_URL=redis.url, SESSION_TTL_SECONDS="600",
                               ADMIN_TOKEN="an-admin-token-of-forty-characters-long",
                               GENERATIONS_PER_CLIENT_PER_HOUR="4", AI_CALLS_PER_DAY="100"))
    for n in range(6):  # pools, fingerprints, leases, quotas, the day's count, rate limits
        post(server, nonsense(n))
    httpx.post(server.url + URL, json={"topic": "gardens", "session_id": "s-1"}, timeout=60)
    httpx.get(server.url + URL, params={"topic": "music", "session_id": "s-1"}, timeout=60)
    httpx.post(server.url + "/v1/mock-test", json={"session_id": "s-1"}, timeout=60)
    httpx.get(server.url + "/admin/prompts", headers={"Authorization": "Bearer wrong"})
    client = redis_sync.Redis.from_url(redis.url, decode_responses=True)
    try:
        ttls = {key: client.ttl(key) for key in client.scan_iter(count=1000)}
    finally:
        client.close()
    kinds = {kind for kind in (":pool:", ":fp:", ":seen:", ":gen", ":authfail", ":rl:",
                               ":calls:") if any(kind in key for key in ttls)}
    assert kinds == {":pool:", ":fp:", ":seen:", ":gen", ":authfail", ":rl:", ":calls:"}
    assert [key for key, ttl in ttls.items() if ttl < 0] == []
    assert all(0 < ttl <= 600 for key, ttl in ttls.items() if ":seen:" in key)
