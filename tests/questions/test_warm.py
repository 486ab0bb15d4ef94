"""Warming ahead: after `ielts-service warm` (or WARM_ON_START), students on catalogue
topics never wait for a model; a second warm, or a second instance, costs no call."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx
import pytest

from ielts_service.questions.bank import Bank
from tests.conftest import ROOT, azure_env
from tests.support.process import base_env
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
PARTS = (1, 2, 3)
POOLS = len(Bank.load().topics) * len(PARTS)


def run_warm(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ielts_service", "warm"], cwd=ROOT,
                          env=base_env(**env), capture_output=True, text=True, timeout=600,
                          check=False)


def sources(url: str) -> set[str]:
    """The `source` of a request for every catalogue topic and part."""
    found = set()
    with httpx.Client(base_url=url, timeout=60) as client:
        for area in client.get("/v1/topics").json()["data"]["topics"]:
            for part in PARTS:
                answer = client.post("/generate-question", json={"topic": area["topic"],
                                                                 "part": part})
                found.add(answer.json()["data"]["source"])
    return found


def test_after_warm_every_catalogue_topic_and_part_is_a_cache_hit(serve, fake_model, redis):
    env = azure_env(fake_model, REDIS_URL=redis.url, RATE_LIMIT_PER_MINUTE="0")
    first = run_warm(env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"{POOLS}/{POOLS} pools: {POOLS} filled, 0 already cached, 0 failed" in first.stdout
    assert len(fake_model.requests) == POOLS
    again = run_warm(env)
    assert f"0 filled, {POOLS} already cached" in again.stdout
    assert sources(serve(**env).url) == {"cache"}
    assert len(fake_model.requests) == POOLS  # neither the second warm nor students called


def test_warm_on_start_runs_once_across_two_instances(serve, fake_model, redis):
    env = azure_env(fake_model, REDIS_URL=redis.url, RATE_LIMIT_PER_MINUTE="0",
                    WARM_ON_START="1")
    servers = [serve(**env), serve(**env)]

    def lines() -> list[str]:
        return [line for server in servers for line in server._lines]

    def settled() -> bool:  # one instance warmed, the other stood aside
        text = "\n".join(lines())
        return '"warm_done"' in text and '"warm_skipped"' in text

    asyncio.run(eventually(settled, timeout=300))
    assert sum('"warm_started"' in line for line in lines()) == 1
    assert sum('"warm_skipped"' in line for line in lines()) == 1
    assert len(fake_model.requests) == POOLS
    assert sources(servers[1].url) == {"cache"}


def test_warm_without_a_model_says_there_is_nothing_to_warm():
    result = run_warm({})
    assert result.returncode == 0 and "nothing to warm" in result.stdout
