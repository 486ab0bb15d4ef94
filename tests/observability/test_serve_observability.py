"""Observability over a running server: exact counters across workers, promtool, no secrets."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import httpx
import pytest

from tests.conftest import AZURE_KEY, azure_env
from tests.observability.test_metrics import value
from tests.support import fake_model as fm
from tests.support.process import base_env
from tests.support.worker_metrics import per_worker, spread

pytestmark = pytest.mark.e2e
ADMIN = "admin-secret-5b7e19d0-for-serve-tests"


def test_counters_are_exact_across_two_workers(serve, tmp_path):
    metrics_dir = tmp_path / "metrics"
    server = serve("--workers", "2", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
                   RATE_LIMIT_PER_MINUTE="0")
    url = server.url + "/generate-question"
    responses = spread(url, metrics_dir, workers=2, each=5)  # both workers answer some
    n = len(responses)
    assert {r.status_code for r in responses} == {200}
    by_worker = per_worker(metrics_dir, "ielts_http_requests_total", route="/generate-question")
    assert len(by_worker) == 2 and sum(by_worker.values()) == n
    scrapes = spread(server.url + "/metrics", metrics_dir, method="GET", each=2)
    for scrape in scrapes:  # each worker answers scrapes, and counts both workers' requests
        assert value(scrape.text, "ielts_http_requests_total", route="/generate-question",
                     status="200") == n
        assert value(scrape.text, "ielts_http_request_duration_seconds_count",
                     route="/generate-question") == n
    assert server.stop() is not None and server.process.returncode == 0


# Stands in for a worker that dies: the service's own Metrics on the instance's directory,
# three requests in flight, then SIGKILL. (A real worker cannot be killed for this test:
# Hypercorn's master then stops the whole instance; see the README's "Container" notes.)
DYING_WORKER = """
import sys
from pathlib import Path
from ielts_service.observability.metrics import Metrics
metrics = Metrics(Path(sys.argv[1]))
for _ in range(3):
    metrics.inflight.inc()
print("in flight", flush=True)
sys.stdin.read()
"""


def test_a_dead_workers_requests_in_flight_leave_the_gauge(serve, tmp_path):
    metrics_dir = tmp_path / "metrics"
    server = serve("--workers", "2", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))

    def inflight_seen_by_every_worker() -> set[float]:
        """`ielts_inflight_requests` in one-at-a-time scrapes, until both workers answered
        one since the last call (each scrape counts itself: 1 is nobody else)."""
        before = per_worker(metrics_dir, "ielts_http_requests_total", route="/metrics")
        scrapes = []
        while True:
            answered = per_worker(metrics_dir, "ielts_http_requests_total", route="/metrics")
            if len(answered) == 2 and all(n > before.get(pid, 0) for pid, n in answered.items()):
                return {value(s.text, "ielts_inflight_requests") for s in scrapes}
            assert len(scrapes) < 500, answered
            scrapes.append(httpx.get(server.url + "/metrics", timeout=10,
                                     headers={"Connection": "close"}))

    assert inflight_seen_by_every_worker() == {1}
    with subprocess.Popen([sys.executable, "-c", DYING_WORKER, str(metrics_dir)],
                          env=base_env(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)),
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE) as dying:
        try:
            assert dying.stdout is not None and dying.stdout.readline() == b"in flight\n"
            assert inflight_seen_by_every_worker() == {4}  # a live worker's requests count
        finally:
            dying.kill()
            dying.wait(timeout=10)
    assert inflight_seen_by_every_worker() == {1}  # a dead one's do not


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
