"""With no keys at all the service answers from the offline bank (what `make run` shows)."""

from __future__ import annotations

import pytest

from ielts_service.questions.bank import Bank
from ielts_service.questions.validators import check_item


async def ask(client, **payload):
    response = await client.post("/generate-question", json=payload)
    return response, await response.get_json()


async def test_a_memorable_trip_gets_the_banks_card_on_it(bank_client):
    response, body = await ask(bank_client, topic="a memorable trip", part=2)
    data = body["data"]
    assert response.status_code == 200 and body["status"] == "success"
    assert data["source"] == "bank" and data["degraded"] is False
    assert data["topic"] == "memorable trip"
    card = data["cue_card"]
    assert card["title"] == "Describe a memorable trip you have taken"
    assert card["title"].startswith("Describe") and 3 <= len(card["bullets"]) <= 4
    assert card["explain"].startswith("and explain") and 1 <= len(card["follow_ups"]) <= 2
    assert data["question"].splitlines()[1] == "You should say:"
    assert data["question"].splitlines()[0] == card["title"] + "."
    assert data["prompt_version"].startswith("bank-")


@pytest.mark.parametrize("part", [1, 3])
async def test_parts_1_and_3_are_question_lists(bank_client, part):
    _, body = await ask(bank_client, topic="music", part=part)
    data = body["data"]
    assert data["part"] == part and "cue_card" not in data
    assert check_item(part, {"questions": data["questions"]}) == []
    assert data["question"] == "\n".join(data["questions"])


async def test_part_defaults_to_2_and_topic_to_the_catalogue(bank_client):
    _, body = await ask(bank_client)
    assert body["data"]["part"] == 2 and body["data"]["topic"]


async def test_same_item_has_the_same_id(bank_client):
    ids = {}
    for _ in range(12):
        _, body = await ask(bank_client, topic="travel and holidays", part=2)
        ids.setdefault(body["data"]["cue_card"]["title"], set()).add(body["data"]["id"])
    assert all(len(v) == 1 for v in ids.values())
    assert len({i for v in ids.values() for i in v}) == len(ids)


async def test_a_session_is_not_served_the_same_item_twice_while_unseen_ones_remain(bank_client):
    titles = []
    for _ in range(2):
        _, body = await ask(bank_client, topic="travel", part=2, session_id="student-1")
        titles.append(body["data"]["cue_card"]["title"])
    assert len(set(titles)) == 2


@pytest.mark.parametrize("topic", ["Politics in my country", "religion", "the war",
                                   "drugs and alcohol", "SELF-HARM"])
async def test_avoided_topics_are_rejected(bank_client, topic):
    response, body = await ask(bank_client, topic=topic)
    assert response.status_code == 422
    assert body["code"] == "topic_rejected"


@pytest.mark.parametrize("part", [1, 2, 3])
async def test_a_topic_the_bank_has_nothing_on_is_unavailable_with_suggestions(bank_client, part):
    catalogue = (await (await bank_client.get("/v1/topics")).get_json())["data"]["topics"]
    response, body = await ask(bank_client, topic="a skill you want to learn", part=part)
    assert response.status_code == 422 and body["code"] == "topic_unavailable"
    assert "data" not in body and body["message"]
    suggested = [d["suggestion"] for d in body["details"]]
    assert 1 <= len(suggested) <= 5 and all(d["field"] == "topic" for d in body["details"])
    assert set(suggested) <= {t["topic"] for t in catalogue}
    # each suggestion is served when asked for
    for topic in suggested:
        response, body = await ask(bank_client, topic=topic, part=part)
        assert response.status_code == 200 and body["data"]["topic"] == topic


async def test_travel_and_its_phrasings_still_answer_from_the_bank(bank_client):
    for typed in ("travel", "Travelling", "TRIPS!"):
        response, body = await ask(bank_client, topic=typed, part=2)
        assert response.status_code == 200 and body["data"]["source"] == "bank"
        assert body["data"]["topic"] == "travel and holidays"


async def test_in_bank_mode_a_session_sees_every_item_of_an_area_before_a_repeat(
        make_client, make_settings):
    """One student practising offline, four times on the same topic and part: four
    different items, for every part of every topic area."""
    client = await make_client(make_settings(RATE_LIMIT_PER_MINUTE=0))
    for area in Bank.load().topics:
        for part in (1, 2, 3):
            session = f"student-{part}-{area.name.replace(' ', '-')}"[:64]
            ids = []
            for _ in range(4):
                response, body = await ask(client, topic=area.name, part=part,
                                           session_id=session)
                assert response.status_code == 200, body
                ids.append(body["data"]["id"])
            assert len(set(ids)) == 4, (area.name, part, ids)
