"""The regression set: lines models write that the test would never print, each rejected
with its reason, and authentic lines, each accepted; the prompts' own examples and the
bank held to the same rules."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ielts_service.questions.bank import Bank
from ielts_service.questions.items import CARD_TYPES, near_duplicate
from ielts_service.questions.validators import ItemChecker, accept_items, check_item

PROMPTS = Path(__file__).resolve().parents[2] / "prompts"
CARD = {"type": "object", "title": "Describe a present you gave to someone",
        "bullets": ["what it was", "who you gave it to", "where you bought it"],
        "explain": "and explain why you chose it",
        "follow_ups": ["Do you enjoy choosing presents?"]}
PART1 = ["What kind of music do you listen to?", "How often do you go to concerts?",
         "Which song did you last listen to?", "Would you like to learn an instrument?"]
PART3 = ["Why do people enjoy live music?", "How has the music industry changed?",
         "Should governments fund concert halls?", "What might music sound like in the future?"]


def codes(part: int, item: object) -> set[str]:
    return {p.code for p in check_item(part, item)}


def with_question(part: int, line: str) -> dict[str, list[str]]:
    """A valid set with its first question replaced by `line`."""
    return {"questions": [line, *(PART1 if part == 1 else PART3)[1:]]}


@pytest.mark.parametrize(("field", "line", "code"), [
    # the review's lines: question word order in the points and the explain line
    ("bullets", "what is it", "word_order"),
    ("bullets", "where did you buy it", "word_order"),
    ("explain", "and explain why do you like it", "word_order"),
    # more like them
    ("bullets", "who is this person", "word_order"),
    ("bullets", "how often do you use it", "word_order"),
    ("bullets", "what kind of music is it", "word_order"),
    ("bullets", "when did you get it", "word_order"),
    ("bullets", "what was the weather like", "word_order"),
    ("explain", "and explain how did it change your life", "word_order"),
    ("explain", "and explain why is it important to you", "word_order"),
    ("bullets", "what it is?", "bullet_form"),
    ("bullets", "what you did at https://example.com", "link"),
    ("bullets", "what you wrote to me@example.com", "link"),
    ("bullets", "what the **best** part was", "markup"),
    ("bullets", "what <b>it</b> is", "markup"),
    ("bullets", "what happened at the funeral", "avoided_theme"),
    ("bullets", "what it is and when you got it and where you keep it", "too_long"),
    ("title", "Describe your views on immigration policy", "avoided_theme"),
    ("title", "Describe a time when you got drunk", "avoided_theme"),
    ("title", "Describe the day your pet died", "avoided_theme"),
    ("title", "Describe a church you have visited", "avoided_theme"),
    ("follow_ups", "Do you like it? Why?", "one_question"),
    ("follow_ups", "I hope you enjoyed it?", "question_form"),
    ("follow_ups", "Do most people buy presents online?", "not_personal"),
    ("type", "thing", "card_type"),
])
def test_off_format_card_lines_are_rejected_with_their_reason(field, line, code):
    value = [line, *CARD[field][1:]] if isinstance(CARD[field], list) else line
    assert codes(2, {**CARD, field: value}) == {code}


@pytest.mark.parametrize(("part", "line", "code"), [
    # the review's lines
    (3, "How often do you visit museums?", "personal"),
    (3, "What would you do if you found a wallet?", "personal"),
    (3, "Why do people read? What do they gain?", "one_question"),
    (1, "Why do people read? What do they gain?", "one_question"),
    (1, "I really like reading books?", "question_form"),
    (1, "What are the long-term economic consequences of urbanisation for developing nations?",
     "not_personal"),
    # more like them
    (3, "Have you ever been to a museum?", "personal"),
    (3, "What is your favourite kind of museum?", "personal"),
    (3, "Which museum did you visit last?", "personal"),
    (1, "Tell me about your hometown?", "question_form"),
    (1, "I like reading. Do you?", "one_question"),
    (1, "Do you like music, and why?, and when?", "one_question"),
    (1, "How does the global economy affect developing nations?", "not_personal"),
    (1, "What do you usually do at the weekend with your family and friends in your town?",
     "too_long"),
    (3, "Why do some people believe that the cities of the future will be cleaner, greener "
        "and safer than the cities we live in now?", "too_long"),
    (3, "Why do people enjoy gambling?", "avoided_theme"),
    (3, "Should politicians listen to young people?", "avoided_theme"),
    (3, "How does praying help people?", "avoided_theme"),
    (1, "Which website do you use most, www.example.com?", "link"),
    (1, "What is your **favourite** food?", "markup"),
    (1, "What {music} do you like?", "markup"),
    (1, "- What music do you like?", "markup"),
])
def test_off_format_questions_are_rejected_with_their_reason(part, line, code):
    assert code in codes(part, with_question(part, line))


@pytest.mark.parametrize(("part", "line"), [
    # authentic Part 3: "in your country", "in your opinion", "do you think"
    (3, "What kinds of jobs are popular in your country?"),
    (3, "In your opinion, is tourism good?"),
    (3, "Do you think people will work from home more in the future?"),
    (3, "Why do you think some people prefer to live alone?"),
    (3, "How are attitudes to work different in your country compared with the past?"),
    (3, "At what age should children start learning a foreign language?"),
    (3, "In what ways can bad weather affect businesses?"),
    (3, "Which is better, living in a city or in the countryside?"),
    (3, "What role should governments play in protecting the environment?"),
    # authentic Part 1
    (1, "Do you live in a house or a flat?"),
    (1, "If you could live anywhere, where would you live?"),
    (1, "What did you enjoy most about school?"),
    (1, "How often do you cook for your friends?"),
    (1, "What's your favourite time of day?"),
])
def test_authentic_lines_are_accepted(part, line):
    assert check_item(part, with_question(part, line)) == []


@pytest.mark.parametrize(("field", "line"), [
    ("bullets", "what it is"), ("bullets", "where you bought it"),
    ("bullets", "who this person is"), ("bullets", "how often you use it"),
    ("bullets", "what happened"), ("bullets", "who was there"),
    ("bullets", "what was special about it"), ("bullets", "what kind of music it is"),
    ("explain", "and explain why you like it"), ("explain", "and explain whether you would go back"),
    ("title", "Describe a running race you took part in"),
    ("title", "Describe a time when you were killing time"),
])
def test_authentic_card_lines_are_accepted(field, line):
    value = [line, *CARD[field][1:]] if isinstance(CARD[field], list) else line
    assert check_item(2, {**CARD, field: value}) == []


def test_a_part_1_set_may_have_at_most_two_yes_no_questions():
    yes_no = ["Do you like music?", "Have you been to a concert?", "Can you sing?"]
    assert codes(1, {"questions": [*yes_no, PART1[0]]}) == {"question_mix"}
    choice = ["Do you prefer rock or jazz?", *yes_no[:2], PART1[0]]  # a choice is not yes/no
    assert check_item(1, {"questions": choice}) == []


@pytest.mark.parametrize(("part", "a", "b"), [
    (2, CARD, {**CARD, "title": "Describe a present you gave someone"}),
    (2, CARD, {**CARD, "title": "Describe a gift you gave to someone",
               "bullets": ["what it was", "who you gave it to", "where you got it"]}),
    (1, {"questions": PART1}, {"questions": [*PART1[:2], "Do you play the piano?",
                                             "Who taught you to sing?"]}),
])
def test_near_duplicates_are_dropped_not_only_identical_text(part, a, b):
    assert near_duplicate(part, a, b)
    accepted, reasons = accept_items(part, [a, b])
    assert accepted == [a] and [r.code for r in reasons] == ["near_duplicate"]


def test_a_streamed_answer_drops_near_duplicates_of_its_earlier_items():
    checker = ItemChecker(2)
    assert checker.accept([CARD]) == [CARD]
    assert checker.accept([{**CARD, "title": "Describe a present you gave someone"}]) == []


def test_different_cards_on_one_topic_are_not_near_duplicates():
    other = {"type": "person", "title": "Describe a person who gave you a useful present",
             "bullets": ["who this person is", "what the present was", "when you got it"],
             "explain": "and explain how you use it now",
             "follow_ups": ["Do you often give presents?"]}
    assert not near_duplicate(2, CARD, other)
    assert accept_items(2, [CARD, other])[0] == [CARD, other]


def examples(part: int) -> list[dict]:
    """The JSON example items a prompt file shows the model."""
    text = (PROMPTS / f"part{part}.txt").read_text()
    return [json.loads(line) for line in text.splitlines() if re.match(r"^\{\"", line)]


@pytest.mark.parametrize("part", [1, 2, 3])
def test_the_prompts_examples_pass_the_gate_and_differ_from_the_format_notes(part):
    shown = examples(part)
    assert len(shown) >= 2  # more than one theme, so the model does not copy one
    for item in shown:
        assert check_item(part, item) == [], item
        assert "useful object" not in json.dumps(item)  # the format notes' own card
    if part == 2:
        assert len({item["type"] for item in shown}) == len(shown)


def test_part_2_prompt_names_every_card_type_and_asks_for_british_english():
    part2 = (PROMPTS / "part2.txt").read_text()
    assert all(f'"{kind}"' in part2 for kind in CARD_TYPES)
    assert "British English" in (PROMPTS / "system.txt").read_text()


BANK = Bank.load()


@pytest.mark.parametrize("area", BANK.topics, ids=lambda t: t.name)
def test_each_bank_card_has_a_type_and_its_own_part_3_sets(area):
    for card in area.items[2]:
        assert card["type"] in area.card_types
    sets = list(area.part3_by_card.values())
    assert len(sets) == len(area.items[2]) and all(sets)
    assert [s for group in sets for s in group] == area.items[3]


def test_no_two_bank_items_are_near_duplicates():
    for part in (1, 2, 3):
        items = [i for t in BANK.topics for i in t.items[part]]
        close = [(a, b) for n, a in enumerate(items) for b in items[n + 1:]
                 if near_duplicate(part, a, b)]
        assert close == []
