"""A class on one topic, over real sockets: real `serve` processes (two workers), a real
Redis, the real openai SDK against the fake Azure server, and the defaults.

Variety is counted across sessions in Redis: every item of a pool is served once before
any is served twice, and the pool grows by one call (single-flight) rather than repeat,
while it may (POOL_MAX_ITEMS, the client's and the deployment's limits)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import azure_env
from tests.support import fake_model as fm
from tests.support.fake_stream import Paced
from tests.support.process import Server

URL = "/generate-question"
TOPIC = "a skill you are proud of"
pytestmark = pytest.mark.e2e


def student(server: Server, n: int, **extra: object) -> httpx.Response:
    return httpx.post(server.url + URL, timeout=60, json={
        "topic": TOPIC, "part": 2, "session_id": f"student-{n}", **extra})


def cards(responses: list[httpx.Response]) -> list[str]:
    assert [r.status_code for r in responses] == [200] * len(responses), [
        r.text for r in responses if r.status_code != 200]
    return [r.json()["data"]["cue_card"]["title"] for r in responses]


def test_a_class_of_30_on_one_topic_sees_at_least_25_cards_for_at_most_6_calls(
        serve, fake_model, redis, tmp_path):
    """Thirty students open the same Part 2 topic one after another, as a class does when
    the teacher names it: each gets a card none of the others got, for six model calls."""
    server = serve("--workers", "2", **azure_env(fake_model, REDIS_URL=redis.url))
    titles = cards([student(server, n) for n in range(30)])
    assert len(set(titles)) >= 25, titles
    assert len(fake_model.requests) <= 6
    # The pool now holds POOL_MAX_ITEMS (30): the next class repeats it and costs nothing.
    more = cards([student(server, 100 + n) for n in range(10)])
    assert len(set(more)) == 10  # the least served first, still no two alike
    assert len(fake_model.requests) <= 6


def test_a_class_arriving_while_the_model_writes_is_spread_over_its_cards(
        serve, fake_model, redis):
    """A slow model (each card takes a while to write): students who arrive while the
    first call streams are handed the cards nobody got yet, as each is written."""
    fake_model.set_default(fm.ok(pace=Paced(chunk_chars=40, per_second=40)))  # ~1 s a pool
    server = serve(**azure_env(fake_model, REDIS_URL=redis.url))
    titles = cards([student(server, n) for n in range(10)])
    assert len(set(titles)) == 10, titles
    # the first pool, one widening, and the next started ahead of need (one card left)
    assert len(fake_model.requests) <= 3


def test_a_whole_class_at_once_is_answered_from_the_first_call(serve, fake_model, redis):
    """Thirty students in the same second, on a topic nobody asked for yet: every one is
    answered from the one call they all waited for, spread over its cards; nobody waits
    for a second call. Widenings here are held until the test ends: a student waiting for
    one would still be waiting when the client gives up (100 s), where the first call's
    cards come after 15 s."""
    fake_model.enqueue(fm.slow(15.0, fm.ok()))  # all thirty are waiting when it writes
    fake_model.set_default(fm.slow(600.0))  # held until the fake is reset or stopped
    server = serve("--workers", "2", **azure_env(fake_model, REDIS_URL=redis.url,
                                                 REQUEST_TIMEOUT_SECONDS="300"))

    async def at_once() -> list[httpx.Response]:
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, timeout=100) as client:
            return list(await asyncio.gather(*(client.post(server.url + URL, json={
                "topic": TOPIC, "part": 2, "session_id": f"student-{n}"}) for n in range(30))))

    answers = asyncio.run(at_once())
    titles = cards(answers)
    assert {a.json()["data"]["source"] for a in answers} <= {"ai", "cache"}
    assert len(set(titles)) == 5  # the first call's five cards, every one of them served
    counts = sorted(titles.count(t) for t in set(titles))
    assert counts[-1] - counts[0] <= 2  # spread: least served first


def test_a_client_past_its_generation_limit_widens_nothing(serve, fake_model, redis):
    """Widening is charged like any call: a client allowed two calls an hour gets the pool
    and one widening, then the least-served cards of what exists, never a 429."""
    server = serve(**azure_env(fake_model, REDIS_URL=redis.url,
                               GENERATIONS_PER_CLIENT_PER_HOUR="2"))
    titles = cards([student(server, n) for n in range(20)])
    assert len(fake_model.requests) == 2
    assert len(set(titles)) == 10
    counts = {title: titles.count(title) for title in titles}
    assert set(counts.values()) == {2}  # least served first: each card twice, none thrice
