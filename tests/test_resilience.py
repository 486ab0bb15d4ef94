"""Outages degrade instead of failing: Redis down or silent, the model failing, clients
leaving, and a SIGTERM with requests in flight."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from tests.conftest import azure_env
from tests.support import fake_model as fm
from tests.support.waiting import eventually

URL = "/generate-question"
TOPICS = ["volcanoes", "glaciers", "a memorable journey", "rivers", "deserts", "forests"]


async def ask(client, **payload):
    response = await client.post(URL, json=payload)
    return response.status_code, await response.get_json()


async def test_redis_stopped_and_restarted_under_load_gives_no_5xx(make_client, make_settings,
                                                                   fake_model, redis):
    client = await make_client(make_settings(azure_env(
        fake_model, REDIS_URL=redis.url, RATE_LIMIT_PER_MINUTE="0")))

    async def wave(n: int) -> set[int]:
        results = await asyncio.gather(*(ask(client, topic=TOPICS[i % len(TOPICS)],
                                             session_id=f"s{i % 7}") for i in range(n)))
        return {status for status, _ in results}

    before = await wave(60)
    redis.stop()
    during = await wave(60)
    down = await client.get("/health/ready")
    redis.start()
    started = time.monotonic()
    await eventually(lambda: _ready(client), timeout=5.0)
    recovered_in = time.monotonic() - started
    after = await wave(60)
    assert before == during == after == {200}
    assert down.status_code == 503 and recovered_in < 5.0


async def _ready(client) -> bool:
    return (await client.get("/health/ready")).status_code == 200


async def test_a_silent_redis_costs_one_short_timeout_not_the_deadline(
    make_client, make_settings, fake_model, black_hole
):
    client = await make_client(make_settings(azure_env(
        fake_model, REDIS_URL=black_hole, REDIS_TIMEOUT_SECONDS="0.3")))
    timings = []
    for topic in ("volcanoes", "glaciers", "rivers"):
        started = time.monotonic()
        status, body = await ask(client, topic=topic)
        timings.append(time.monotonic() - started)
        assert status == 200 and body["data"]["source"] == "ai"
    assert timings[0] < 1.0  # one Redis timeout (0.3 s), then the gate skips Redis
    assert max(timings[1:]) < 0.3


async def test_the_circuit_opens_on_failures_serves_the_bank_and_closes_after_a_probe(
    make_client, make_settings, fake_model
):
    client = await make_client(make_settings(azure_env(
        fake_model, AI_MAX_ATTEMPTS="1", CIRCUIT_MIN_CALLS="3", CIRCUIT_COOLDOWN_SECONDS="0.5")))
    fake_model.set_default(fm.status(503))
    for topic in ("volcanoes", "glaciers", "rivers"):
        await ask(client, topic=topic)
    assert len(fake_model.requests) == 3
    status, body = await ask(client, topic="a memorable journey")
    ready = await (await client.get("/health/ready")).get_json()
    assert status == 200 and body["data"]["degraded"] and body["data"]["source"] == "bank"
    assert len(fake_model.requests) == 3  # open: no call went out
    assert ready["data"]["checks"]["model"]["circuit"] == "open"
    status, body = await ask(client, topic="quantum chromodynamics")
    assert status == 503 and body["code"] == "upstream_unavailable"

    fake_model.set_default(None)  # the model is back
    await eventually(lambda: _served_by_model(client), timeout=5.0)
    ready = await (await client.get("/health/ready")).get_json()
    assert ready["data"]["checks"]["model"]["circuit"] == "closed"


async def _served_by_model(client) -> bool:
    status, body = await ask(client, topic="deserts")
    return status == 200 and body["data"]["source"] == "ai"


async def test_a_429_storm_gives_no_5xx_and_bounded_calls(make_client, make_settings, fake_model):
    client = await make_client(make_settings(azure_env(
        fake_model, AI_MAX_ATTEMPTS="3", RATE_LIMIT_PER_MINUTE="0", CIRCUIT_MIN_CALLS="1000")))
    fake_model.set_default(fm.status(429, headers={"retry-after-ms": "20"}))
    results = await asyncio.gather(*(ask(client, topic=f"storm topic {i}") for i in range(30)))
    assert all(status < 500 or status == 503 for status, _ in results)
    assert {body.get("code") for status, body in results if status == 503} <= {
        "upstream_unavailable"}
    assert len(fake_model.requests) <= 30 * 3


@pytest.mark.e2e
def test_a_client_that_leaves_cancels_the_model_call_it_alone_was_waiting_for(serve, fake_model):
    server = serve(**azure_env(fake_model, LOG_FORMAT="json"))
    fake_model.set_default(fm.slow(5))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server.url + URL, json={"topic": "volcanoes"}, timeout=0.5,
                   headers={"X-Request-ID": "leaver-1"})
    fake_model.wait_for_requests(1)
    lines = [json.loads(line) for line in server.stop() if line.strip()]
    calls = [e for e in lines if e["event"] == "ai_call" and e.get("request_id") == "leaver-1"]
    assert [c["outcome"] for c in calls] == ["cancelled"]


@pytest.mark.e2e
def test_sigterm_with_requests_in_flight_loses_none(serve, fake_model):
    server = serve(**azure_env(fake_model, RATE_LIMIT_PER_MINUTE="0"))
    fake_model.set_default(fm.slow(1.5))

    async def in_flight() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            requests = [asyncio.create_task(client.post(server.url + URL,
                                                        json={"topic": f"topic {i}"}))
                        for i in range(6)]
            await asyncio.to_thread(fake_model.wait_for_requests, 6)
            server.process.terminate()  # SIGTERM while all six wait on the model
            return [(await r).status_code for r in requests]

    assert asyncio.run(in_flight()) == [200] * 6
    server.stop()
    assert server.process.returncode == 0


@pytest.mark.e2e
def test_a_stalled_stdout_does_not_stall_the_service(tmp_path):
    """Nobody reads the server's stdout (a log driver pushing back): answers keep coming."""
    import os
    import signal
    import subprocess
    import sys

    from tests.support.process import ROOT, base_env, free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ielts_service", "serve", "--bind", f"127.0.0.1:{port}"],
        cwd=tmp_path, env=base_env(PROMPTS_DIR=str(ROOT / "prompts"), LOG_FORMAT="json",
                                   RATE_LIMIT_PER_MINUTE="0"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,  # a pipe nobody drains
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url + "/health/live", timeout=0.5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not come up"
                time.sleep(0.05)  # polling a condition with a deadline
        padding = "x" * 2000  # long user agents: each access line is ~2.4 KB

        async def many() -> list[int]:
            async with httpx.AsyncClient(timeout=10) as client:
                replies = [await client.post(url + URL, json={"part": 1},
                                             headers={"User-Agent": padding}) for _ in range(200)]
            return [reply.status_code for reply in replies]

        assert set(asyncio.run(many())) == {200}  # ~480 KB of log lines: 7x a pipe's buffer
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the master and its workers hold the pipe
        process.communicate(timeout=15)
