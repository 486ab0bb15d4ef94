"""Outages degrade instead of failing: Redis down or silent, the model failing, clients
leaving, and a SIGTERM with requests in flight."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable

import httpx
import pytest
import redis.asyncio as aioredis

from tests.conftest import azure_env
from tests.support import fake_model as fm
from tests.support.waiting import eventually

URL = "/generate-question"
GATE_SECONDS = 2.0  # after a Redis failure, Redis is skipped this long (RedisGate)
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
    redis.start()  # empty: it keeps nothing on disk
    await eventually(lambda: _ready(client), timeout=20.0)  # a deadline, not a speed target
    after = await wave(60)
    assert before == during == after == {200}
    assert down.status_code == 503
    assert await _keys_in(redis.url) > 0  # the service writes to Redis again


async def _keys_in(url: str) -> int:
    client = aioredis.from_url(url)
    try:
        return int(await client.dbsize())
    finally:
        await client.aclose()


async def _ready(client) -> bool:
    return (await client.get("/health/ready")).status_code == 200


def _accept_all(listener: socket.socket) -> list[socket.socket]:
    """Every connection waiting in `listener`'s backlog, accepted (and left unanswered)."""
    listener.setblocking(False)
    accepted = []
    while True:
        try:
            accepted.append(listener.accept()[0])
        except BlockingIOError:
            return accepted


async def test_a_silent_redis_costs_one_short_timeout_not_the_deadline(
    make_client, make_settings, fake_model
):
    """Redis accepts connections and never answers. The first request waits out one short
    Redis timeout; the next ones skip Redis instead of trying, and waiting, again. Counted
    in connections (a timed-out one is dropped, so every try is a new one), not seconds."""
    with socket.create_server(("127.0.0.1", 0), backlog=128) as silent:
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        client = await make_client(make_settings(azure_env(
            fake_model, REDIS_URL=url, REDIS_TIMEOUT_SECONDS="0.3",
            REQUEST_TIMEOUT_SECONDS="20")))
        started = time.monotonic()
        # A service that waited on Redis without a timeout would hang here: fail instead.
        first = await asyncio.wait_for(ask(client, topic="volcanoes"), timeout=30)
        first_took = time.monotonic() - started
        connections = _accept_all(silent)
        later = [await ask(client, topic=topic) for topic in ("glaciers", "rivers", "deserts")]
        windows = int((time.monotonic() - started) // GATE_SECONDS)  # 0 unless very slow
        later_connections = _accept_all(silent)
        for conn in connections + later_connections:
            conn.close()
    for status, body in [first, *later]:
        assert status == 200 and body["data"]["source"] == "ai"
    assert len(connections) == 1 and first_took >= 0.3  # Redis was tried once, and waited for
    assert first_took < 20  # short timeouts, not the request's 20 s deadline
    # No new try while Redis is skipped; at most one each time the skipping ends.
    assert len(later_connections) <= windows, (len(later_connections), windows)


async def test_the_circuit_opens_on_failures_serves_the_bank_and_closes_after_a_probe(
    make_client, make_settings, fake_model
):
    client = await make_client(make_settings(azure_env(
        fake_model, AI_MAX_ATTEMPTS="1", CIRCUIT_MIN_CALLS="3", CIRCUIT_COOLDOWN_SECONDS="0.5")))
    fake_model.set_default(fm.status(503))
    for topic in ("volcanoes", "glaciers", "rivers"):
        await ask(client, topic=topic)
    assert len(fake_model.requests) == 3
    status, body = await ask(client, topic="a memorable trip")
    ready = await (await client.get("/health/ready")).get_json()
    assert status == 200 and body["data"]["degraded"] and body["data"]["source"] == "bank"
    assert len(fake_model.requests) == 3  # open: no call went out
    assert ready["data"]["checks"]["model"]["circuit"] == "open"
    status, body = await ask(client, topic="quantum chromodynamics")
    assert status == 503 and body["code"] == "upstream_unavailable"

    fake_model.set_default(None)  # the model is back
    await eventually(lambda: _served_by_model(client), timeout=15.0)  # cool-down is 0.5 s
    ready = await (await client.get("/health/ready")).get_json()
    assert ready["data"]["checks"]["model"]["circuit"] == "closed"


async def _served_by_model(client) -> bool:
    status, body = await ask(client, topic="deserts")
    return status == 200 and body["data"]["source"] == "ai"


def calls_by_request(fake_model) -> dict[str, list[fm.Recorded]]:
    """The model calls each request made, by the X-Request-ID the service forwarded."""
    calls: dict[str, list[fm.Recorded]] = {}
    for call in fake_model.requests:
        calls.setdefault(call.headers.get("x-request-id", ""), []).append(call)
    return calls


def storm(fake_model, throttled_calls: Callable[[str], int], headers: dict[str, str]) -> fm.Reply:
    """429 for a request's first `throttled_calls(request_id)` model calls, then valid items."""

    def reply(call: fm.Recorded) -> fm.Reply:
        rid = call.headers.get("x-request-id", "")
        earlier = calls_by_request(fake_model)[rid]
        return fm.status(429, headers=headers) if len(earlier) <= throttled_calls(rid) else fm.ok()

    return fm.respond(reply)


async def ask_as(client, request_id: str, **payload):
    response = await client.post(URL, json=payload, headers={"X-Request-ID": request_id})
    return request_id, response, await response.get_json()


async def test_a_429_storm_is_waited_out_as_told_and_answered_by_the_model(
    make_client, make_settings, fake_model
):
    """30 requests at once, three attempts each. For 24 the model throttles twice
    (retry-after-ms 400) and then answers; for 6 it never stops throttling."""
    client = await make_client(make_settings(azure_env(
        fake_model, AI_MAX_ATTEMPTS="3", RATE_LIMIT_PER_MINUTE="0", CIRCUIT_MIN_CALLS="1000")))
    fake_model.set_default(storm(fake_model, lambda rid: 99 if rid.startswith("endless") else 2,
                                 {"retry-after-ms": "400"}))
    passing = [ask_as(client, f"storm-{i}", topic=f"storm topic {i}") for i in range(24)]
    endless = [ask_as(client, f"endless-{i}", topic=f"quantum chromodynamics {i}")
               for i in range(6)]
    results = await asyncio.gather(*passing, *endless)
    calls = calls_by_request(fake_model)
    assert sorted(calls) == sorted(rid for rid, _, _ in results)  # each one asked the model
    for rid, response, body in results:
        if rid.startswith("storm"):
            assert response.status_code == 200, body
            assert body["data"]["source"] == "ai" and body["data"]["degraded"] is False
        else:  # no bank area for this topic: nothing to fall back on
            assert response.status_code == 503 and body["code"] == "upstream_unavailable"
            assert int(response.headers["Retry-After"]) >= 1
        made = calls[rid]
        assert len(made) == 3, rid  # the attempts bound the calls, and none is skipped
        gaps = [b.received_at - a.received_at for a, b in zip(made, made[1:], strict=False)]
        assert min(gaps) >= 0.4 * 0.9, (rid, gaps)  # the advertised wait, not a 10 ms backoff


async def test_a_429_storm_that_outlasts_the_deadline_answers_503_with_retry_after(
    make_client, make_settings, fake_model
):
    """Always throttled (Retry-After: 1), a 2.5 s deadline, ten attempts allowed: the
    deadline, not the attempts, bounds the calls; no bank area, so 503."""
    client = await make_client(make_settings(azure_env(
        fake_model, AI_MAX_ATTEMPTS="10", RATE_LIMIT_PER_MINUTE="0", CIRCUIT_MIN_CALLS="1000",
        REQUEST_TIMEOUT_SECONDS="2.5")))
    fake_model.set_default(fm.status(429, headers={"Retry-After": "1"}))
    results = await asyncio.gather(*(ask_as(client, f"long-{i}",
                                            topic=f"quantum chromodynamics {i}")
                                     for i in range(4)))
    calls = calls_by_request(fake_model)
    for rid, response, body in results:
        assert response.status_code == 503 and body["code"] == "upstream_unavailable"
        assert int(response.headers["Retry-After"]) >= 1
        made = calls[rid]
        assert 2 <= len(made) <= 3, (rid, len(made))  # retried, within 2.5 s of 1 s waits
        gaps = [b.received_at - a.received_at for a, b in zip(made, made[1:], strict=False)]
        assert min(gaps) >= 0.9, (rid, gaps)


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

    from tests.support.process import ROOT, base_env, free_port, wait_live

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ielts_service", "serve", "--bind", f"127.0.0.1:{port}"],
        cwd=tmp_path, env=base_env(PROMPTS_DIR=str(ROOT / "prompts"), LOG_FORMAT="json",
                                   RATE_LIMIT_PER_MINUTE="0"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,  # a pipe nobody drains
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_live(url, process), "server did not come up"
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
