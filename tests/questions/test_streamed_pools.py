"""Cold topics at the model's own pace: the first student gets the pool's first card while
the model is still writing the rest, and the pool still costs one call."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.conftest import azure_env
from tests.support import fake_model as fm
from tests.support.fake_stream import Paced
from tests.support.waiting import eventually

URL = "/generate-question"
# About 6 s for a pool of five cards: 0.5 s to the first token, then 10 chunks a second.
REALISTIC = Paced(first_token=0.5, per_second=10, chunk_chars=24)


async def ask(client, **payload):
    response = await client.post(URL, json=payload)
    return response.status_code, (await response.get_json())


@pytest.fixture
async def client_with(make_client, make_settings, fake_model, redis):
    async def start(**env):
        return await make_client(make_settings(azure_env(fake_model, REDIS_URL=redis.url, **env)))

    return start


async def test_the_first_cold_answer_comes_while_the_model_is_still_writing(azure_client,
                                                                             fake_model):
    fake_model.set_default(fm.ok(pace=REALISTIC))
    status, body = await ask(azure_client, topic="volcanoes", part=2)
    still_writing = fake_model.open_streams  # read the moment the answer is back
    assert status == 200 and body["data"]["source"] == "ai"
    assert still_writing == 1, "the answer waited for the whole pool"
    later = await asyncio.gather(*(ask(azure_client, topic="volcanoes", part=2)
                                   for _ in range(4)))
    assert [b["data"]["source"] for _, b in later] == ["cache"] * 4
    assert len(fake_model.requests) == 1
    assert fake_model.requests[0].body["stream"] is True


async def test_the_pool_lands_whole_once_and_serves_after_the_stream(make_client, make_settings,
                                                                    fake_model, redis):
    # VARIETY_SERVES_PER_ITEM=0: a second session reading the whole pool must not widen it
    azure_client = await make_client(make_settings(azure_env(fake_model, REDIS_URL=redis.url),
                                                   VARIETY_SERVES_PER_ITEM=0))
    items = fm.valid_items(2, 5)
    fake_model.set_default(fm.ok(items, pace=Paced(per_second=200)))
    await ask(azure_client, topic="glaciers", part=2, session_id="s1")
    titles = {i["title"] for i in items}

    async def landed_whole() -> bool:  # every card of the one call, for one session in turn
        served = {(await ask(azure_client, topic="glaciers", part=2, session_id="s2"))[1]
                  ["data"]["cue_card"]["title"] for _ in range(5)}
        return served == titles

    assert await eventually(landed_whole)
    assert len(fake_model.requests) == 1


async def test_a_stream_that_breaks_keeps_what_it_delivered(azure_client, fake_model,
                                                           log_events):
    items = fm.valid_items(2, 5)
    fake_model.enqueue(fm.ok(items, pace=Paced(break_after_items=2)))
    status, body = await ask(azure_client, topic="deserts", part=2, session_id="a")
    assert status == 200 and body["data"]["cue_card"]["title"] in {i["title"] for i in items[:2]}
    second = await ask(azure_client, topic="deserts", part=2, session_id="a")
    assert second[1]["data"]["cue_card"]["title"] in {i["title"] for i in items[:2]}
    assert second[1]["data"]["id"] != body["data"]["id"]  # the other delivered card
    calls = [e for e in log_events() if e.get("event") == "ai_call"]
    assert len(calls) == 1 and calls[0]["outcome"] != "success" and calls[0]["streamed"]
    assert calls[0]["first_item_ms"] is not None
    assert len(fake_model.requests) == 1  # a broken stream with items is not retried


async def test_a_stream_with_no_valid_item_is_retried(client_with, fake_model):
    client = await client_with(AI_MAX_ATTEMPTS="2")
    fake_model.enqueue(fm.ok(fm.invalid_items(2)), fm.ok(fm.valid_items(2, 3)))
    status, body = await ask(client, topic="canyons", part=2)
    assert status == 200 and body["data"]["source"] == "ai"
    assert len(fake_model.requests) == 2


async def test_a_filtered_stream_is_a_422(azure_client, fake_model):
    """Azure stops a filtered answer with finish_reason content_filter before any item."""
    fake_model.enqueue(fm.ok(content='{"items": [{"title": "Des', finish_reason="content_filter"))
    status, body = await ask(azure_client, topic="quantum chromodynamics", part=2)
    assert status == 422 and body["code"] == "content_filtered"


async def test_an_instance_that_follows_gets_items_before_the_pool_lands(client_with,
                                                                         fake_model):
    a, b = await client_with(), await client_with()
    fake_model.set_default(fm.ok(pace=REALISTIC))
    first = asyncio.create_task(ask(a, topic="rainforests", part=3))
    await asyncio.to_thread(fake_model.wait_for_requests, 1, 30)
    status, body = await ask(b, topic="rainforests", part=3)
    still_writing = fake_model.open_streams
    assert status == 200 and body["data"]["source"] == "cache"
    assert still_writing == 1, "the follower waited for the whole pool to land"
    assert (await first)[0] == 200 and len(fake_model.requests) == 1


async def test_without_streaming_the_whole_answer_is_asked_for(client_with, fake_model):
    client = await client_with(AI_STREAM="false")
    started = time.monotonic()
    status, body = await ask(client, topic="tundra", part=1)
    assert status == 200 and body["data"]["source"] == "ai" and time.monotonic() >= started
    assert "stream" not in fake_model.requests[0].body
