"""Observability over a running server: exact counters across workers, promtool, no secrets."""

from __future__ import annotations

import json
import shutil
import subprocess

import httpx
import pytest

from tests.conftest import AZURE_KEY, azure_env
from tests.observability.test_metrics import value
from tests.support import fake_model as fm

pytestmark = pytest.mark.e2e
ADMIN = "admin-secret-5b7e19d0"


def test_counters_are_exact_across_two_workers(serve):
    server = serve("--workers", "2")
    n = 40
    for _ in range(n):  # a new connection each time, so both workers take requests
        assert httpx.post(server.url + "/generate-question", json={}).status_code == 200
    for _ in range(6):
        text = httpx.get(server.url + "/metrics").text
        assert value(text, "ielts_http_requests_total", route="/generate-question",
                     status="200") == n
        assert value(text, "ielts_http_request_duration_seconds_count",
                     route="/generate-question") == n
    assert server.stop() is not None and server.process.returncode == 0


def test_a_live_scrape_passes_promtool_check_metrics(serve, fake_model, redis):
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: run `make test`, which installs Debian's prometheus"
    server = serve("--workers", "2", **azure_env(fake_model, REDIS_URL=redis.url))
    fake_model.enqueue(fm.status(429, headers={"retry-after-ms": "10"}))
    for topic in ("gardens", "gardens", "rivers"):
        httpx.post(server.url + "/generate-question", json={"topic": topic}, timeout=10)
    httpx.post(server.url + "/generate-question", json={"part": 9})
    scrape = httpx.get(server.url + "/metrics").text
    for family in ("ielts_http_requests_total", "ielts_http_request_duration_seconds",
                   "ielts_ai_request_duration_seconds", "ielts_ai_requests_total",
                   "ielts_ai_retries_total", "ielts_ai_tokens_total",
                   "ielts_cache_requests_total", "ielts_inflight_requests"):
        assert f"# TYPE {family.removesuffix('_total')} " in scrape or f"# TYPE {family} " in scrape
    result = subprocess.run([promtool, "check", "metrics"], input=scrape, text=True,
                            capture_output=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_secret_reaches_the_output_on_any_path(serve, fake_model, redis):
    server = serve(**azure_env(fake_model, REDIS_URL=redis.url, ADMIN_TOKEN=ADMIN,
                               LOG_LEVEL="debug", LOG_FORMAT="json"))
    auth = {"Authorization": f"Bearer {ADMIN}"}
    fake_model.enqueue(fm.status(429, headers={"retry-after-ms": "10"}), fm.ok(),
                       fm.status(401), fm.content_filter_400())
    url = server.url
    replies = [
        httpx.post(url + "/generate-question", json={"topic": "gardens"}),     # retry, success
        httpx.post(url + "/generate-question", json={"topic": "quantum x"}),   # 401 upstream
        httpx.post(url + "/generate-question", json={"topic": "rivers"}),      # content filter
        httpx.post(url + "/generate-question", json={"topic": 5}),             # validation
        httpx.get(url + "/admin/prompts", headers=auth),
        httpx.get(url + "/admin/prompts", headers={"Authorization": "Bearer wrong"}),
        httpx.get(url + "/health/ready", headers={"User-Agent": f"probe {ADMIN} {AZURE_KEY}"}),
    ]
    assert [r.status_code for r in replies] == [200, 503, 422, 422, 200, 403, 200]
    output = "\n".join(server.stop())
    events = [json.loads(line)["event"] for line in output.splitlines() if line.strip()]
    assert {"services_opened", "ai_call", "request"} <= set(events)
    assert AZURE_KEY not in output and ADMIN not in output
    assert "[REDACTED]" in output  # the user agent carried both, and was scrubbed
    assert all(AZURE_KEY not in r.text and ADMIN not in r.text for r in replies)


def test_a_request_is_followed_through_every_line_it_logs(serve, fake_model):
    server = serve(**azure_env(fake_model, LOG_FORMAT="json"))
    fake_model.enqueue(fm.status(503), fm.ok(usage=(11, 22)))
    reply = httpx.post(server.url + "/generate-question", json={"topic": "gardens"},
                       headers={"X-Request-ID": "follow-me-1", "User-Agent": "e2e"}, timeout=10)
    lines = [json.loads(line) for line in server.stop() if line.strip()]
    mine = [e for e in lines if e.get("request_id") == "follow-me-1"]
    assert reply.status_code == 200
    assert fake_model.requests[0].headers["x-request-id"] == "follow-me-1"
    calls = [e for e in mine if e["event"] == "ai_call"]
    assert [(c["attempt"], c["outcome"]) for c in calls] == [(1, "server_error"), (2, "success")]
    assert calls[1]["prompt_tokens"] == 11 and calls[1]["completion_tokens"] == 22
    access = [e for e in mine if e["event"] == "request"]
    assert len(access) == 1 and access[0]["user_agent"] == "e2e" and access[0]["status"] == 200
    request_events = {"ai_call", "request", "ai_fallback", "cache_error", "ai_items_rejected"}
    assert all("request_id" in e for e in lines if e["event"] in request_events)
