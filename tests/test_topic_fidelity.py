"""Topic fidelity: the question is about what the student asked for, or the service says
plainly that it has none.

A set of subjects as students type them (specific cue-card subjects and Part 1/Part 3
themes, and broad phrasings of catalogue areas), asked over real sockets of
`ielts-service serve`: with a model (the fake, which writes the topic it was sent into its
items) and with the offline bank. What counts as "on the subject" is written here by hand
(the words each subject is about) and read from bank.json, not from the code under test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

import httpx
import pytest

from tests.conftest import azure_env
from tests.support import fake_model as fm
from tests.support.process import Server, start_server
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e

# Specific subjects: (as typed, part, the words that say what it is about).
SPECIFIC = [
    ("my favourite teacher", 2, ("teacher",)),
    ("a memorable trip", 2, ("memorable", "trip")),
    ("a skill you want to learn", 2, ("skill", "learn")),
    ("a time you were late", 2, ("late",)),
    ("a person you admire", 2, ("person", "admire")),
    ("a book that changed your life", 2, ("book", "changed")),
    ("A gift you gave someone", 2, ("gift", "gave")),
    ("a time you helped someone", 2, ("helped",)),
    ("your favourite restaurant", 2, ("restaurant",)),
    ("a place you would like to visit", 2, ("place", "visit")),
    ("an app you use every day", 2, ("app",)),
    ("a piece of advice you received", 2, ("advice",)),
    ("a family member you admire", 2, ("family member", "admire")),
    ("a film you enjoyed", 2, ("film", "enjoyed")),
    ("Describe a sports event you watched", 2, ("sports event",)),
    ("a difficult decision", 2, ("difficult", "decision")),
    ("street food", 1, ("street food",)),
    ("social media", 1, ("social media",)),
    ("online shopping", 3, ("online shopping",)),
    ("working from home", 3, ("working from home",)),
]
# Broad subjects: phrasings that mean one catalogue area, asked one after another.
BROAD = [
    ("travel and holidays", 2, ("travel", "travelling", "Travel!")),
    ("films", 1, ("Movies", "films", "the cinema")),
    ("hometown", 1, ("my hometown", "Home town", "HOMETOWN.")),
    ("science and technology", 3, ("Technology", "science & technology", "tech")),
]
RAW_AREAS = json.loads(
    resources.files("ielts_service.questions").joinpath("bank.json").read_text())["topics"]
# As served: each card carries the Part 3 sets written for it (see questions/bank.py).
BANK_AREAS = {area["name"]: {
    **area, "part2": [{k: v for k, v in card.items() if k != "part3"} for card in area["part2"]],
    "part3": [s for card in area["part2"] for s in card["part3"]]} for area in RAW_AREAS}


def ask(server: Server, topic: str, part: int) -> tuple[int, dict[str, Any]]:
    response = httpx.post(server.url + "/generate-question",
                          json={"topic": topic, "part": part}, timeout=30)
    return response.status_code, response.json()


def item_of(data: dict[str, Any]) -> dict[str, Any]:
    return data["cue_card"] if data["part"] == 2 else {"questions": data["questions"]}


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory, fake_model_server: fm.FakeModel,
                 redis_server: RedisServer) -> Iterator[Server]:
    # The echoing model writes one card per topic (its cards are near-duplicates of each
    # other): without VARIETY_SERVES_PER_ITEM=0 a second student would rightly widen it.
    server = start_server(tmp_path_factory.mktemp("fidelity-model"), **azure_env(
        fake_model_server, REDIS_URL=redis_server.url, RATE_LIMIT_PER_MINUTE="0",
        VARIETY_SERVES_PER_ITEM="0"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bank_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("fidelity-bank"), RATE_LIMIT_PER_MINUTE="0")
    yield server
    server.stop()


# ------------------------------------------------------------------ with a model
@pytest.mark.parametrize(("typed", "part", "about"), SPECIFIC, ids=[s[0] for s in SPECIFIC])
def test_a_specific_subject_reaches_the_model_in_the_students_words(
        model_server, fake_model, redis, typed, part, about):
    fake_model.set_default(fm.echo_topic())
    status, body = ask(model_server, typed, part)
    assert status == 200, body
    assert len(fake_model.requests) == 1 and body["data"]["source"] == "ai"
    quoted = fm.quoted_topic(fake_model.requests[0])
    sent = json.loads(quoted)  # still one quoted JSON string: data, not instructions
    assert all(word in sent for word in about), sent
    assert body["data"]["topic"] == sent  # the answer names what was honoured
    assert fm.echoed(part, quoted) in body["data"]["question"]  # written on what was sent


@pytest.mark.parametrize(("area", "part", "phrasings"), BROAD, ids=[b[0] for b in BROAD])
def test_phrasings_of_one_area_share_one_pool_and_one_model_call(
        model_server, fake_model, redis, area, part, phrasings):
    fake_model.set_default(fm.echo_topic())
    answers = [ask(model_server, typed, part) for typed in phrasings]
    assert [status for status, _ in answers] == [200, 200, 200]
    assert [body["data"]["source"] for _, body in answers] == ["ai", "cache", "cache"]
    assert len(fake_model.requests) == 1
    assert json.loads(fm.quoted_topic(fake_model.requests[0])) == area
    assert {body["data"]["topic"] for _, body in answers} == {area}


def test_with_the_model_down_a_subject_the_bank_lacks_is_503_never_another_subject(
        serve, fake_model):
    server = serve(**azure_env(fake_model, AI_MAX_ATTEMPTS="1"))
    fake_model.set_default(fm.status(503))
    status, body = ask(server, "a skill you want to learn", 2)
    assert status == 503 and body["code"] == "upstream_unavailable"
    status, body = ask(server, "a memorable trip", 2)  # the bank has a card on this one
    assert status == 200 and body["data"]["degraded"] is True
    assert body["data"]["cue_card"]["title"] == "Describe a memorable trip you have taken"


# ------------------------------------------------------------------ the offline bank
def on_subject(part: int, item: dict[str, Any], about: tuple[str, ...]) -> bool:
    """Part 2: the card's title names the subject; Part 1: the set's questions do; Part 3:
    the set is a discussion written for a card that names it."""
    def names(text: str) -> bool:
        return all(word in text.lower() for word in about)

    if part == 2:
        return names(item["title"])
    if part == 1:
        return names(" ".join(item["questions"]))
    return any(item in card["part3"] and names(card["title"])
               for area in RAW_AREAS for card in area["part2"])


def check_unavailable(server: Server, status: int, body: dict[str, Any], part: int) -> None:
    catalogue = {t["topic"] for t in httpx.get(server.url + "/v1/topics").json()["data"]["topics"]}
    assert status == 422 and body["code"] == "topic_unavailable", body
    suggested = [detail["suggestion"] for detail in body["details"]]
    assert 1 <= len(suggested) <= 5 and set(suggested) <= catalogue
    status, answer = ask(server, suggested[0], part)  # a suggestion is served when chosen
    assert status == 200 and answer["data"]["topic"] == suggested[0]


@pytest.mark.parametrize(("typed", "part", "about"), SPECIFIC, ids=[s[0] for s in SPECIFIC])
def test_the_bank_answers_on_the_subject_or_says_it_has_none(bank_server, typed, part, about):
    status, body = ask(bank_server, typed, part)
    if status != 200:
        return check_unavailable(bank_server, status, body, part)
    data = body["data"]
    assert data["source"] == "bank" and all(word in data["topic"] for word in about)
    assert on_subject(part, item_of(data), about), (typed, data["question"])


@pytest.mark.parametrize(("area", "part", "phrasings"), BROAD, ids=[b[0] for b in BROAD])
def test_the_bank_answers_every_phrasing_of_an_area_from_that_area(
        bank_server, area, part, phrasings):
    for typed in phrasings:
        status, body = ask(bank_server, typed, part)
        assert status == 200 and body["data"]["topic"] == area, (typed, body)
        assert item_of(body["data"]) in BANK_AREAS[area][f"part{part}"]


def test_the_bank_serves_the_subjects_it_has_cards_for_and_refuses_the_rest(bank_server):
    """Neither extreme passes the set above by accident: the bank's own cards on a subject
    are served, and a subject it has no card for is unavailable (it once got a photo card)."""
    for typed, title in (("a memorable trip", "Describe a memorable trip you have taken"),
                         ("my favourite teacher", "Describe a teacher who influenced you")):
        status, body = ask(bank_server, typed, 2)
        assert status == 200 and body["data"]["cue_card"]["title"] == title
    for typed in ("a skill you want to learn", "a time you were late"):
        status, body = ask(bank_server, typed, 2)
        check_unavailable(bank_server, status, body, 2)
    served = sum(ask(bank_server, typed, part)[0] == 200 for typed, part, _ in SPECIFIC)
    assert 0 < served < len(SPECIFIC)

