"""The offline bank: enough topic areas, every item valid by the same rules as model output."""

from __future__ import annotations

import pytest

from ielts_service.questions.bank import Bank
from ielts_service.questions.validators import check_item, fingerprint, tidy

BANK = Bank.load()


def test_the_bank_covers_at_least_30_topic_areas_with_every_part():
    assert len(BANK.topics) >= 30
    for topic in BANK.topics:
        assert all(topic.items[part] for part in (1, 2, 3)), topic.name


@pytest.mark.parametrize("topic", BANK.topics, ids=lambda t: t.name)
def test_every_bank_item_passes_the_validators(topic):
    for part in (1, 2, 3):
        for item in topic.items[part]:
            assert check_item(part, item) == [], (topic.name, part, item)
            assert tidy(part, item) == item, "bank items are stored tidy"


def test_no_two_bank_items_are_duplicates():
    for part in (1, 2, 3):
        prints = [fingerprint(part, i) for t in BANK.topics for i in t.items[part]]
        assert len(prints) == len(set(prints))


def test_part_1_can_open_with_work_study_or_home():
    names = {t.name for t in BANK.topics}
    assert {"work or study", "hometown", "home and accommodation"} <= names


@pytest.mark.parametrize(("typed", "area"), [
    ("a memorable trip", "travel and holidays"), ("Memorable journeys!", "travel and holidays"),
    ("Movies", "films"), ("buses", "transport"), ("new technology", "science and technology"),
    ("MY HOMETOWN", "hometown"), ("the news", "tv and news"),
])
def test_free_text_maps_onto_its_topic_area(typed, area):
    assert BANK.match(typed).name == area


def test_unrelated_text_matches_no_area_but_has_a_stable_stand_in():
    assert BANK.match("quantum chromodynamics") is None
    assert BANK.fallback_topic("quantum chromodynamics") is BANK.fallback_topic("Quantum  chromodynamics")


def test_bank_version_follows_its_content():
    assert Bank.load(b'{"topics": []}').version != BANK.version
