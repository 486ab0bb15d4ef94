"""A whole linked Speaking test, and the catalogue the frontend offers."""

from __future__ import annotations

import pytest

from ielts_service.questions.validators import check_item
from tests.conftest import azure_env
from tests.support import fake_model as fm

# IELTS.md: Part 1 covers three familiar topics, "the first is always work/study or
# home/hometown"; these are those areas as the catalogue names them ("Everyday life").
OPENERS = {"work or study", "hometown", "home and accommodation"}


async def mock(client, **payload):
    response = await client.post("/v1/mock-test", json=payload)
    return response, await response.get_json()


async def test_a_mock_test_from_the_bank_is_linked_and_opens_with_work_or_home(bank_client):
    response, body = await mock(bank_client, topic="a memorable trip", session_id="s-1")
    data = body["data"]
    assert response.status_code == 200 and data["degraded"] is False
    topics = data["part1"]["topics"]
    assert len(topics) == 3 and topics[0]["topic"] in OPENERS
    assert len({t["topic"] for t in topics}) == 3
    assert all(check_item(1, {"questions": t["questions"]}) == [] for t in topics)
    assert data["part2"]["part"] == 2 and check_item(2, data["part2"]["cue_card"]) == []
    assert data["part3"]["part"] == 3 and data["part3"]["linked_to"] == data["part2"]["id"]
    assert data["part3"]["topic"] == data["part2"]["topic"] == "memorable trip"
    assert data["part2"]["cue_card"]["title"] == "Describe a memorable trip you have taken"
    assert "travel and holidays" not in {t["topic"] for t in topics}  # the card's own area
    assert data["id"].startswith("mt-")


async def test_a_bank_mock_test_on_a_topic_it_has_no_card_for_is_unavailable(bank_client):
    """Not a test on another subject, and not a 500: the same 422 as a single question,
    and a suggested topic makes a whole test."""
    response, body = await mock(bank_client, topic="a skill you want to learn", session_id="s-2")
    assert response.status_code == 422 and body["code"] == "topic_unavailable"
    suggested = [d["suggestion"] for d in body["details"]]
    assert 1 <= len(suggested) <= 5
    response, body = await mock(bank_client, topic=suggested[0], session_id="s-2")
    assert response.status_code == 200 and body["data"]["part2"]["topic"] == suggested[0]


async def test_a_mock_test_without_a_topic_draws_one(bank_client):
    _, body = await mock(bank_client)
    assert body["data"]["part3"]["topic"] == body["data"]["part2"]["topic"]


@pytest.mark.parametrize("card", [None, "hometown", "work or study", "a memorable trip"])
async def test_every_mock_test_opens_part1_with_work_study_or_home(bank_client, card):
    payload = {} if card is None else {"topic": card}
    for _ in range(8):  # the opener is drawn at random: each draw must be one of them
        _, body = await mock(bank_client, **payload)
        topics = [t["topic"] for t in body["data"]["part1"]["topics"]]
        assert topics[0] in OPENERS and len(set(topics)) == 3
        assert body["data"]["part2"]["topic"] not in topics  # the card is not a Part 1 topic


async def test_a_mock_test_rejects_avoided_topics_and_unknown_fields(bank_client):
    rejected, body = await mock(bank_client, topic="elections and politics")
    unknown, body2 = await mock(bank_client, part=2)
    assert rejected.status_code == 422 and body["code"] == "topic_rejected"
    assert unknown.status_code == 422 and body2["details"][0]["field"] == "part"


async def test_a_mock_test_from_the_model_uses_one_call_per_part_and_topic(azure_client,
                                                                          fake_model):
    _, body = await mock(azure_client, topic="gardens")
    data = body["data"]
    assert {data["part2"]["source"], data["part3"]["source"]} == {"ai"}
    assert len(fake_model.requests) == 5  # three Part 1 topics, the card, Part 3
    names = sorted(r.body["response_format"]["json_schema"]["name"] for r in fake_model.requests)
    assert names == ["ielts_part1"] * 3 + ["ielts_part2", "ielts_part3"]


async def test_each_part_falls_back_on_its_own_when_the_model_is_down(
    make_client, make_settings, fake_model
):
    client = await make_client(make_settings(azure_env(fake_model, AI_MAX_ATTEMPTS="1")))
    fake_model.set_default(fm.status(503))
    response, body = await mock(client, topic="public transport")
    data = body["data"]
    assert response.status_code == 200 and data["degraded"] is True
    assert {t["source"] for t in data["part1"]["topics"]} == {"bank"}
    assert data["part2"]["source"] == data["part3"]["source"] == "bank"
    assert data["part3"]["topic"] == data["part2"]["topic"] == "transport"


async def test_topics_lists_the_catalogue_with_categories_and_card_types(bank_client):
    response = await bank_client.get("/v1/topics")
    data = (await response.get_json())["data"]
    assert response.status_code == 200 and data["count"] >= 40
    categories = {t["category"] for t in data["topics"]}
    assert categories == {"everyday life", "leisure and media", "wider themes"}
    kinds = {"person", "place", "object", "event", "activity"}
    assert all(t["card_types"] and set(t["card_types"]) <= kinds for t in data["topics"])
    assert data["part1_openers"] and set(data["part1_openers"]) <= OPENERS
    assert OPENERS <= {t["topic"] for t in data["topics"]}
    by_name = {t["topic"]: t for t in data["topics"]}
    assert all(t["aliases"] and all(isinstance(a, str) for a in t["aliases"])
               for t in data["topics"])
    assert {"travel", "travelling", "trips", "holidays"} <= set(
        by_name["travel and holidays"]["aliases"])


async def test_every_alias_the_catalogue_lists_is_served_as_its_area(make_client, make_settings):
    client = await make_client(make_settings(RATE_LIMIT_PER_MINUTE=0))
    topics = (await (await client.get("/v1/topics")).get_json())["data"]["topics"]
    for area in topics:
        for alias in area["aliases"]:
            response = await client.post("/generate-question", json={"topic": alias, "part": 1})
            body = await response.get_json()
            assert response.status_code == 200 and body["data"]["topic"] == area["topic"], alias


@pytest.mark.parametrize("path", ["/v1/topics"])
async def test_topics_is_cheap_and_not_rate_limited(make_client, make_settings, path):
    client = await make_client(make_settings(RATE_LIMIT_PER_MINUTE=1))
    assert {(await client.get(path)).status_code for _ in range(3)} == {200}


async def test_the_catalogue_says_what_the_bank_holds_on_each_area(bank_client):
    """Per area, items per part and the cards by type: what a frontend offering the bank
    (offline practice) can promise; it matches what the topic is served."""
    topics = (await (await bank_client.get("/v1/topics")).get_json())["data"]["topics"]
    for area in topics:
        held = area["bank"]
        assert min(held["part1"], held["part2"], held["part3"]) >= 4, area["topic"]
        assert sum(held["cards"].values()) == held["part2"]
        assert sorted(held["cards"]) == area["card_types"]
    travel = next(a for a in topics if a["topic"] == "travel and holidays")
    served = set()
    for _ in range(3 * travel["bank"]["part2"]):
        body = await (await bank_client.post("/generate-question", json={
            "topic": "travel", "part": 2})).get_json()
        served.add((body["data"]["id"], body["data"]["cue_card"]["type"]))
    assert len(served) <= travel["bank"]["part2"]
    assert {kind for _, kind in served} <= set(travel["bank"]["cards"])
