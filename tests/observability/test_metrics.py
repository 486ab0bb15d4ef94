"""Metrics with the contract's names, bounded labels and values that match what happened."""

from __future__ import annotations

import re

import pytest

from ielts_service.observability.multiprocess import MetricsDirInUse, instance_metrics_dir
from tests.support import fake_model as fm
from tests.support.waiting import generations_settled


async def scrape(client) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return await response.get_data(as_text=True)


def value(text: str, name: str, **labels: str) -> float:
    """The sample of `name` whose labels include `labels` (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"{name}(?:\{{(.*)\}})? (\S+)$", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


async def test_http_requests_are_counted_by_route_template_and_status(bank_client):
    for _ in range(3):
        await bank_client.post("/generate-question", json={})
    await bank_client.post("/generate-question", json={"part": 7})
    await bank_client.get("/students/12345/secret-path")
    await bank_client.open("/generate-question", method="BREW")
    text = await scrape(bank_client)
    assert value(text, "ielts_http_requests_total", route="/generate-question", status="200",
                 method="POST") == 3
    assert value(text, "ielts_http_requests_total", route="/generate-question",
                 status="422") == 1
    assert value(text, "ielts_http_requests_total", route="unmatched", status="404") == 1
    assert "secret-path" not in text and 'method="BREW"' not in text
    assert value(text, "ielts_http_requests_total", method="OTHER", status="405") == 1
    assert value(text, "ielts_http_request_duration_seconds_count",
                 route="/generate-question") == 4
    assert value(text, "ielts_inflight_requests") == 1  # the scrape itself


async def test_model_calls_retries_tokens_and_cache_are_counted(azure_client, fake_model):
    fake_model.enqueue(fm.status(429, headers={"retry-after-ms": "10"}), fm.status(503),
                       fm.ok(usage=(40, 60)))
    await azure_client.post("/generate-question", json={"topic": "gardens", "part": 1})
    await generations_settled(azure_client)  # the pool lands when the stream ends
    await azure_client.post("/generate-question", json={"topic": "gardens", "part": 1})
    text = await scrape(azure_client)
    labels = {"provider": "azure", "model": "gpt-4o-test", "part": "1"}
    assert value(text, "ielts_ai_requests_total", outcome="rate_limited", **labels) == 1
    assert value(text, "ielts_ai_requests_total", outcome="server_error", **labels) == 1
    assert value(text, "ielts_ai_requests_total", outcome="success", **labels) == 1
    assert value(text, "ielts_ai_request_duration_seconds_count", outcome="success",
                 **labels) == 1
    assert value(text, "ielts_ai_retries_total", reason="rate_limited") == 1
    assert value(text, "ielts_ai_retries_total", reason="server_error") == 1
    assert value(text, "ielts_ai_tokens_total", kind="prompt", model="gpt-4o-test") == 40
    assert value(text, "ielts_ai_tokens_total", kind="completion", model="gpt-4o-test") == 60
    assert value(text, "ielts_cache_requests_total", result="miss") == 1
    assert value(text, "ielts_cache_requests_total", result="hit") == 1


async def test_a_cache_outage_is_counted_as_errors(azure_client, redis):
    redis.stop()
    await azure_client.post("/generate-question", json={"topic": "gardens"})
    text = await scrape(azure_client)
    assert value(text, "ielts_cache_requests_total", result="error") == 1


def test_a_metrics_directory_is_emptied_at_start_and_never_shared(tmp_path):
    stale = tmp_path / "counter_999.db"
    stale.write_bytes(b"old")
    with instance_metrics_dir(tmp_path) as path:
        assert path == tmp_path and not stale.exists()
        with pytest.raises(MetricsDirInUse), instance_metrics_dir(tmp_path):
            pass
    with instance_metrics_dir(None) as fresh:
        assert fresh.is_dir()
    assert not fresh.exists()
