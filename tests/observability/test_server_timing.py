"""Where the time went: every question answer says how long it waited for the model and the
cache (`Server-Timing`), and `ielts_overhead_seconds` counts only the service's own time."""

from __future__ import annotations

import re

from tests.observability.test_metrics import scrape, value
from tests.support import fake_model as fm

URL = "/generate-question"
MODEL_SECONDS = 0.5


def timings(response) -> dict[str, float]:
    """`Server-Timing` as {name: milliseconds}."""
    header = response.headers["Server-Timing"]
    return {name: float(dur) for name, dur in re.findall(r"(\w+);dur=([\d.]+)", header)}


async def test_a_cold_answer_shows_the_model_wait_and_a_cached_one_does_not(azure_client,
                                                                             fake_model):
    fake_model.set_default(fm.slow(MODEL_SECONDS))
    cold = await azure_client.post(URL, json={"topic": "volcanoes", "part": 2})
    warm = await azure_client.post(URL, json={"topic": "volcanoes", "part": 2})
    assert (await cold.get_json())["data"]["source"] == "ai"
    assert (await warm.get_json())["data"]["source"] == "cache"
    cold_ms, warm_ms = timings(cold), timings(warm)
    # The model took at least MODEL_SECONDS, so the wait can be no shorter (a lower bound).
    assert cold_ms["model"] >= MODEL_SECONDS * 1000
    assert cold_ms["total"] >= cold_ms["model"] and "cache" in cold_ms
    assert "model" not in warm_ms and {"cache", "total"} <= set(warm_ms)


async def test_concurrent_model_waits_of_one_request_count_once(azure_client, fake_model):
    """A mock test waits on five model calls at once: its model time is not their sum."""
    fake_model.set_default(fm.slow(MODEL_SECONDS))
    response = await azure_client.post("/v1/mock-test", json={"topic": "gardens"})
    assert response.status_code == 200 and len(fake_model.requests) == 5
    spent = timings(response)
    assert MODEL_SECONDS * 1000 <= spent["model"] <= spent["total"]


async def test_overhead_leaves_out_the_time_spent_waiting_for_the_model(azure_client,
                                                                        fake_model):
    fake_model.set_default(fm.slow(MODEL_SECONDS))
    response = await azure_client.post(URL, json={"topic": "glaciers"})
    assert response.status_code == 200
    text = await scrape(azure_client)
    labels = {"route": URL}
    overhead = value(text, "ielts_overhead_seconds_sum", **labels)
    total = value(text, "ielts_http_request_duration_seconds_sum", method="POST", route=URL)
    assert value(text, "ielts_overhead_seconds_count", **labels) == 1
    # Whatever the machine's speed: the model wait (>= MODEL_SECONDS) is not overhead.
    assert 0 <= overhead <= total - MODEL_SECONDS


async def test_only_question_answers_carry_server_timing(bank_client):
    question = await bank_client.post(URL, json={"topic": "travel"})
    topics = await bank_client.get("/v1/topics")
    assert set(timings(question)) == {"cache", "total"}
    assert "Server-Timing" not in topics.headers
