"""The quality gate end to end: what the model writes wrong never reaches a student, Part 3
is written for the card just served, and the model is shown what a pool already holds."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ielts_service.questions.bank import Bank
from ielts_service.questions.items import item_id
from ielts_service.questions.prompts import load_prompts
from ielts_service.state.pools import Pool, pool_key
from tests.conftest import azure_env
from tests.support import fake_model as fm
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parent.parent
BANK = Bank.load()


async def ask(client, **payload):
    response = await client.post("/generate-question", json=payload)
    return response, await response.get_json()


async def rejected(client, part: int, reason: str) -> float:
    """`ielts_items_rejected_total` for (part, reason), from the service's own /metrics."""
    text = await (await client.get("/metrics")).get_data(as_text=True)
    line = f'ielts_items_rejected_total{{part="{part}",reason="{reason}"}} '
    return next((float(row[len(line):]) for row in text.splitlines() if row.startswith(line)),
                0.0)


def replace_line(item: dict, field: str, line: str) -> dict:
    """`item` with its first line of `field` (or `field` itself) replaced by `line`."""
    value = item[field]
    return {**item, field: [line, *value[1:]] if isinstance(value, list) else line}


# Each line the review found accepted, inside an otherwise valid item, and its reason.
BAD = [
    (2, "bullets", "what is it", "word_order"),
    (2, "bullets", "where did you buy it", "word_order"),
    (2, "explain", "and explain why do you like it", "word_order"),
    (2, "title", "Describe your views on immigration policy", "avoided_theme"),
    (3, "questions", "How often do you visit museums?", "personal"),
    (3, "questions", "What would you do if you found a wallet?", "personal"),
    (3, "questions", "Why do people read? What do they gain?", "one_question"),
    (3, "questions", "People read fewer books nowadays?", "question_form"),
    (1, "questions", "What are the long-term economic consequences of urbanisation for "
                     "developing nations?", "not_personal"),
    (1, "questions", "How did you feel when your dog died?", "avoided_theme"),
    (1, "questions", "How often do you go praying?", "avoided_theme"),
    (3, "questions", "Should politicians listen more to young people?", "avoided_theme"),
    (3, "questions", "Why do some people enjoy gambling?", "avoided_theme"),
]


@pytest.mark.parametrize(("part", "field", "line", "reason"), BAD,
                         ids=[f"{b[0]}-{b[3]}-{b[2][:24]}" for b in BAD])
async def test_a_bad_line_in_an_otherwise_valid_answer_is_never_served(
    azure_client, fake_model, log_events, part, field, line, reason
):
    bad_item, good = fm.valid_items(part, 2)
    bad = replace_line(bad_item, field, line)
    fake_model.enqueue(fm.ok([bad, good]))
    served = []
    for _ in range(6):  # the pool holds only what passed the gate (then what widened it)
        response, body = await ask(azure_client, topic="gardens", part=part)
        assert response.status_code == 200, body
        served.append(body["data"]["id"])
        assert line not in json.dumps(body["data"])
    assert served[0] == item_id(part, good) and item_id(part, bad) not in served
    assert await rejected(azure_client, part, reason) == 1
    logged = [e for e in log_events() if e["event"] == "ai_items_rejected"]
    assert [e["rejected"] for e in logged] == [1] and logged[0]["reasons"][0].startswith(reason)


async def test_authentic_part_3_lines_are_served(azure_client, fake_model):
    authentic = ["What kinds of jobs are popular in your country?",
                 "In your opinion, is tourism good?",
                 "Do you think people will travel more in the future?",
                 "Why do some cities attract more visitors than others?"]
    fake_model.enqueue(fm.ok([{"questions": authentic}]))
    response, body = await ask(azure_client, topic="tourism", part=3)
    assert response.status_code == 200 and body["data"]["questions"] == authentic
    assert body["data"]["source"] == "ai"


def part3_calls(fake_model) -> list[fm.Recorded]:
    return [r for r in fake_model.requests
            if r.body["response_format"]["json_schema"]["name"] == "ielts_part3"]


async def test_a_mock_tests_part_3_is_written_for_the_card_it_served(azure_client, fake_model):
    titles: list[str] = []
    for _ in range(30):  # until two different cards have been served
        response = await azure_client.post("/v1/mock-test", json={"topic": "gardens"})
        data = (await response.get_json())["data"]
        title = data["part2"]["cue_card"]["title"]
        assert data["part3"]["linked_to"] == data["part2"]["id"]
        assert data["part2"]["cue_card"]["type"] in {"person", "place", "object", "event",
                                                     "activity"}
        if title not in titles:
            titles.append(title)
            # This card's first mock test asked the model for Part 3 with the card in it.
            call = part3_calls(fake_model)[-1]
            assert json.dumps(title) in call.message("user")
            assert data["part3"]["source"] == "ai"
        if len(titles) == 2:
            break
    # One Part 3 pool per card: each card cost one Part 3 call, the same card none more.
    assert len(titles) == 2 and len(part3_calls(fake_model)) == 2
    # A Part 3 asked on its own has no card, and a pool of its own.
    _, body = await ask(azure_client, topic="gardens", part=3)
    assert body["data"]["source"] == "ai" and len(part3_calls(fake_model)) == 3
    assert not any(json.dumps(t) in part3_calls(fake_model)[-1].message("user") for t in titles)


def written_for(card: dict) -> list[dict]:
    """The bank's Part 3 sets written for `card`."""
    area = next(t for t in BANK.topics if card in t.items[2])
    return area.part3_by_card[item_id(2, card)]


@pytest.mark.parametrize("kind", ["bank", "model down"])
async def test_part_3_from_the_bank_is_the_set_written_for_the_card(
    bank_client, make_client, make_settings, fake_model, kind
):
    client = bank_client
    if kind == "model down":
        client = await make_client(make_settings(azure_env(fake_model, AI_MAX_ATTEMPTS="1")))
        fake_model.set_default(fm.status(503))
    for area in BANK.topics:  # each area has two cards; any other set would show
        response = await client.post("/v1/mock-test", json={"topic": area.name})
        data = (await response.get_json())["data"]
        assert data["part2"]["source"] == data["part3"]["source"] == "bank"
        card = data["part2"]["cue_card"]
        assert {"questions": data["part3"]["questions"]} in written_for(card), card["title"]


def held(call: fm.Recorded) -> list[str]:
    """The items a call told the model already exist (its quoted JSON list), if any."""
    user = call.message("user")
    marker = "(quoted data)."
    if marker not in user:
        return []
    rest = user.split(marker, 1)[1].split(": ", 1)[1]
    return json.loads(rest.split("\n", 1)[0])


async def test_a_widening_call_shows_the_model_the_pool_and_drops_near_duplicates(
    make_client, make_settings, fake_model, redis, log_events
):
    # One widening only (3 items, then 2 new ones fill the pool to its maximum of 5).
    client = await make_client(make_settings(azure_env(fake_model, REDIS_URL=redis.url,
                                                       POOL_MAX_ITEMS="5")))
    first = fm.valid_items(2, 3)
    copy = {**first[0], "title": first[0]["title"].replace(" you ", " that you ")}
    fresh = fm.valid_items(2, 2)
    fake_model.enqueue(fm.ok(first), fm.ok([copy, *fresh]))
    titles = {(await ask(client, topic="gardens", session_id="s-1"))[1]["data"]["cue_card"]
              ["title"]}
    key = pool_key(2, "gardens", load_prompts(ROOT / "prompts")[2].version, "gpt-4o-test")
    r = aioredis.from_url(redis.url)
    await eventually(lambda: r.exists(key))  # the first answer came while the model wrote
    await r.aclose()
    # the second answer leaves one card under one serve: the pool is widened ahead of need
    titles.add((await ask(client, topic="gardens", session_id="s-1"))[1]["data"]
               ["cue_card"]["title"])
    await eventually(lambda: any(e["event"] == "background_done" for e in log_events()))
    for _ in range(3):  # the session sees the rest of the widened pool
        titles.add((await ask(client, topic="gardens", session_id="s-1"))[1]["data"]
                   ["cue_card"]["title"])
    cold, widen = fake_model.requests
    assert held(cold) == []
    assert held(widen) == [item["title"] for item in first]
    assert titles == {item["title"] for item in first + fresh}  # never the near-copy
    assert await rejected(client, 2, "near_duplicate") == 1


async def test_a_refill_shows_the_model_the_stale_pool(azure_client, fake_model, redis):
    prompt = load_prompts(ROOT / "prompts")[1]
    key = pool_key(1, "volcanoes", prompt.version, "gpt-4o-test")
    old = fm.valid_items(1, 2)
    r = aioredis.from_url(redis.url, decode_responses=True)
    try:
        await r.set(key, Pool(old, time.time() - 10).dumps(), ex=3600)
        _, body = await ask(azure_client, topic="volcanoes", part=1)
        assert body["data"]["source"] == "cache"
        await eventually(lambda: fake_model.requests)
    finally:
        await r.aclose()
    assert held(fake_model.requests[0]) == [" / ".join(i["questions"]) for i in old]


@pytest.mark.parametrize("topic", ["ｐｏｌｉｔｉｃｓ today", "poli\u00adtics", "war_crimes",
                                   "when my dog died", "gambling"])
async def test_disguised_and_missed_avoided_topics_are_rejected(bank_client, topic):
    response, body = await ask(bank_client, topic=topic)
    assert response.status_code == 422 and body["code"] == "topic_rejected"


@pytest.mark.parametrize("topic", ["a running race", "killing time", "a drug store"])
async def test_ordinary_topics_that_look_avoided_are_not_rejected(bank_client, topic):
    _, body = await ask(bank_client, topic=topic)
    assert body.get("code") != "topic_rejected"
