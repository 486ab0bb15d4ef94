"""The breaker judges the deployment, not the prompt: only the deployment failing opens it."""

from __future__ import annotations

import pytest

from ielts_service.llm.breaker import CircuitBreaker
from ielts_service.llm.client import breaker_verdict
from tests.conftest import azure_env
from tests.support import fake_model as fm


@pytest.mark.parametrize(("outcome", "full_time", "broken_body", "verdict"), [
    ("success", True, False, True),
    ("server_error", True, False, False),
    ("connection_error", False, False, False),
    ("http_404", True, False, False),           # no such deployment
    ("invalid_output", True, False, None),      # the model answered; the prompt was unusable
    ("invalid_output", True, True, False),      # a 200 whose body is not JSON: the transport
    ("rate_limited", True, False, None),        # 429: the budget and Retry-After handle it
    ("content_filtered", True, False, None),
    ("cancelled", True, False, None),
    ("timeout", True, False, False),            # the deployment took its whole timeout
    ("timeout", False, False, None),            # cut short by the request's own deadline
    ("deadline", False, False, None),
])
def test_what_an_attempt_says_about_the_deployment(outcome, full_time, broken_body, verdict):
    assert breaker_verdict(outcome, full_time=full_time, broken_body=broken_body) is verdict


def test_a_probe_that_says_nothing_frees_the_half_open_slot():
    breaker = CircuitBreaker(window=30, min_calls=1, failure_ratio=0.5, cooldown=0.0)
    breaker.record(False)
    assert breaker.state == "half_open" and breaker.ready()
    assert breaker.allow() and not breaker.ready() and not breaker.allow()  # one probe
    breaker.record(None)  # say, the probe's answer was unusable
    assert breaker.ready() and breaker.allow()


async def ask(client, topic):
    response = await client.post("/generate-question", json={"topic": topic})
    return response.status_code, await response.get_json()


async def circuit(client) -> str:
    ready = await (await client.get("/health/ready")).get_json()
    return str(ready["data"]["checks"]["model"]["circuit"])


async def test_a_429_storm_does_not_open_the_circuit(make_client, make_settings, fake_model):
    client = await make_client(make_settings(azure_env(
        fake_model, AI_MAX_ATTEMPTS="1", CIRCUIT_MIN_CALLS="3")))
    fake_model.set_default(fm.status(429, headers={"retry-after-ms": "10"}))
    for n in range(6):
        await ask(client, f"volcano {n}")
    assert len(fake_model.requests) == 6  # every request still reached the model
    assert await circuit(client) == "closed"
    fake_model.set_default(None)
    assert (await ask(client, "glaciers"))[1]["data"]["source"] == "ai"


async def test_calls_cut_short_by_the_request_deadline_do_not_open_it(make_client, make_settings,
                                                                      fake_model):
    client = await make_client(make_settings(azure_env(
        fake_model, AI_MAX_ATTEMPTS="1", CIRCUIT_MIN_CALLS="2", REQUEST_TIMEOUT_SECONDS="1")))
    fake_model.set_default(fm.slow(60))
    for n in range(3):  # each waits out the request's 1 s, not the attempt's 20 s
        assert (await ask(client, f"volcano {n}"))[0] == 504
    assert len(fake_model.requests) == 3 and await circuit(client) == "closed"


async def test_attempts_that_time_out_on_their_own_do_open_it(make_client, make_settings,
                                                              fake_model):
    client = await make_client(make_settings(azure_env(
        fake_model, AI_MAX_ATTEMPTS="1", CIRCUIT_MIN_CALLS="2",
        AI_ATTEMPT_TIMEOUT_SECONDS="0.5", CIRCUIT_COOLDOWN_SECONDS="60")))
    fake_model.set_default(fm.slow(60))
    for n in range(2):
        await ask(client, f"volcano {n}")
    assert await circuit(client) == "open"
    assert (await ask(client, "glaciers"))[0] == 503 and len(fake_model.requests) == 2
