"""The IELTS rules, as a prompt editor or a model would break them."""

from __future__ import annotations

import pytest

from ielts_service.questions.validators import accept_items, check_item
from tests.support.fake_model import invalid_items, valid_items

CARD = {"type": "object", "title": "Describe a useful object you own",
        "bullets": ["what it is", "when you got it", "how often you use it"],
        "explain": "and explain why it is useful to you",
        "follow_ups": ["Do your friends have one too?"]}


def card(**changes):
    return {**CARD, **changes}


def test_a_well_formed_cue_card_passes():
    assert check_item(2, CARD) == []


@pytest.mark.parametrize(("item", "problem"), [
    (card(title="Talk about a useful object"), "title must start with 'Describe'"),
    (card(title="Describe a useful object?"), "title must be a phrase, not a question"),
    (card(bullets=["what it is", "when you got it"]), "needs 3-4 bullet points"),
    (card(bullets=["what it is"] * 5), "needs 3-4 bullet points"),
    (card(bullets=["What is it?", "when you got it", "how you use it"]), "not a question"),
    (card(bullets=["it is red", "when you got it", "how you use it"]), "bullet must start"),
    (card(explain="Why is it useful"), "explain must start with 'and explain'"),
    (card(follow_ups=[]), "needs 1-2 rounding-off questions"),
    (card(follow_ups=["Tell me more."]), "rounding-off question"),
    (card(type="thing"), "type must be one of person, place, object, event, activity"),
    ({**CARD, "extra": 1}, "exactly type, title, bullets, explain, follow_ups"),
    ("Describe a thing", "item must be an object"),
])
def test_off_format_cue_cards_are_rejected_with_a_reason(item, problem):
    assert any(problem in p for p in check_item(2, item))


@pytest.mark.parametrize(("part", "questions", "problem"), [
    (1, ["Do you cook?"] * 3, "needs 4-5 questions"),
    (1, ["Do you cook?", "Why", "Who cooks?", "When do you eat?"], "does not end with '?'"),
    (1, ["Do you cook?", "Do you cook?", "Who cooks for you?", "When do you eat?"],
     "questions repeat"),
    (1, ["Do you " + "really " * 13 + "cook?", "a?", "b?", "c?"], "longer than 15 words"),
    (3, ["Why " + "do " * 22 + "people?", "a?", "b?", "c?"], "longer than 22 words"),
    (3, ["What do you like about your job?", "b?", "c?", "d?"], "personal"),
    (3, ["Have you ever been abroad?", "b?", "c?", "d?"], "personal"),
    (3, ["a?", "b?", "c?", "d?", "e?", "f?", "g?"], "needs 4-6 questions"),
])
def test_off_format_question_sets_are_rejected(part, questions, problem):
    assert any(problem in p for p in check_item(part, {"questions": questions}))


def test_part_3_allows_opinion_questions_with_you():
    item = {"questions": ["Do you think cities will get bigger?", "Why do people move?",
                          "How has work changed?", "What makes a good neighbour?"]}
    assert check_item(3, item) == []


@pytest.mark.parametrize("part", [1, 2, 3])
def test_accept_items_keeps_the_valid_drops_the_rest_and_duplicates(part):
    good = valid_items(part, 3)
    accepted, reasons = accept_items(part, [good[0], *invalid_items(part), good[0], *good[1:]])
    assert accepted == good
    assert len(reasons) == len(invalid_items(part)) + 1 and "duplicate item" in reasons


def test_accept_items_tidies_whitespace_and_full_stops():
    messy = card(title="  Describe a useful   object you own. ", explain="And explain why.")
    messy["title"] = messy["title"].strip()
    accepted, _ = accept_items(2, [messy])
    assert accepted[0]["title"] == "Describe a useful object you own"
    assert accepted[0]["explain"] == "and explain why"


def test_accept_items_rejects_a_non_list():
    assert accept_items(1, {"questions": []}) == ([], ["items must be a list"])
