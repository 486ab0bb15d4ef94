"""The offline bank: enough topic areas, every item valid by the same rules as model output."""

from __future__ import annotations

import pytest

from ielts_service.questions.bank import Bank, TopicUnavailable, pool_topic
from ielts_service.questions.items import CARD_TYPES, duplicate_of, item_id
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


def test_no_bank_item_nearly_repeats_another_anywhere_in_the_bank():
    """The same check that drops a model's near-duplicates, over the whole bank: a student
    moving between areas never meets the same card or set in other words."""
    for part in (1, 2, 3):
        held: list[tuple[str, dict]] = []
        for topic in BANK.topics:
            for item in topic.items[part]:
                reason = duplicate_of(part, item, [other for _, other in held])
                assert reason is None, (part, topic.name, item, reason)
                held.append((topic.name, item))


@pytest.mark.parametrize("topic", BANK.topics, ids=lambda t: t.name)
def test_every_area_holds_four_items_per_part_and_every_card_its_own_discussion(topic):
    assert all(len(topic.items[part]) >= 4 for part in (1, 2, 3)), topic.name
    for card in topic.items[2]:
        assert card["type"] in CARD_TYPES
        linked = topic.part3_for(item_id(2, card))
        assert linked and all(s in topic.items[3] for s in linked)  # the card's own sets
    assert len(set(topic.card_types)) >= 3  # a frontend can offer more than one kind


def test_part_1_can_open_with_work_study_or_home():
    names = {t.name for t in BANK.topics}
    assert {"work or study", "hometown", "home and accommodation"} <= names


@pytest.mark.parametrize(("typed", "area"), [
    ("travel", "travel and holidays"), ("Travelling", "travel and holidays"),
    ("TRIPS!", "travel and holidays"), ("a holiday", "travel and holidays"),
    ("Travel & Holidays", "travel and holidays"), ("Movies", "films"),
    ("MY HOMETOWN", "hometown"), ("your home town", "hometown"), ("the news", "tv and news"),
    ("public transport", "transport"), ("Technology.", "science and technology"),
])
def test_text_that_names_an_area_is_that_area(typed, area):
    """Case, punctuation, plurals, "&", leading articles and "my"/"your" aside, the text is
    the area's name or one of its listed aliases."""
    assert BANK.match(typed).name == area


@pytest.mark.parametrize("typed", [
    "a memorable trip", "Memorable journeys!", "my favourite teacher", "buses",
    "new technology", "a skill you want to learn", "a time you were late", "street food",
    "quantum chromodynamics", "travel agents", "",
])
def test_more_specific_text_names_no_area(typed):
    assert BANK.match(typed) is None


def test_every_name_and_alias_means_its_own_area_and_no_other():
    for area in BANK.topics:
        assert area.aliases, area.name
        for text in (area.name, *area.aliases):
            named = BANK.match(text)  # the first area listing it: another one if two did
            assert named is area, (text, area.name, named and named.name)


@pytest.mark.parametrize(("typed", "title"), [
    ("a memorable trip", "Describe a memorable trip you have taken"),
    ("My favourite teacher", "Describe a teacher who influenced you"),
    ("a time you helped someone", "Describe a time when you helped someone"),
    ("Buses", "Describe a memorable ride you took by bus or train"),
])
def test_specific_text_gets_only_the_cards_on_it_and_their_discussions(typed, title):
    honoured, cards = BANK.items_for(typed, 2)
    assert [card["title"] for card in cards] == [title]
    # Part 3 follows the card: the sets written for it
    assert BANK.items_for(typed, 3) == (honoured, BANK.written_for(cards[0]))
    assert BANK.items_for(typed, 1) is None  # Part 1 sets are written for an area


@pytest.mark.parametrize(("typed", "first"), [
    ("a skill you want to learn", {"languages", "education"}),
    ("a time you were late", {"time management"}),
    ("a person you admire", {"family"}),
    ("your favourite restaurant", {"food and cooking"}),
    ("a song you like", {"music"}),
])
def test_a_topic_the_bank_has_nothing_on_is_unavailable_with_the_closest_areas(typed, first):
    for part in (1, 2, 3):
        with pytest.raises(TopicUnavailable) as raised:
            BANK.choose(typed, part)
        suggestions = raised.value.suggestions
        assert 1 <= len(suggestions) <= 5 and len(set(suggestions)) == len(suggestions)
        assert set(suggestions) <= {t.name for t in BANK.topics}
        assert suggestions[0] in first


@pytest.mark.parametrize(("typed", "suggested"), [
    ("tecnology", "science and technology"), ("travl", "travel and holidays"),
    ("photograpy", "photography"),
])
def test_a_misspelt_area_is_suggested_not_guessed(typed, suggested):
    assert BANK.match(typed) is None and BANK.items_for(typed, 2) is None
    assert BANK.suggestions(typed)[0] == suggested


def test_the_topic_a_pool_is_kept_under():
    assert {pool_topic(BANK, t) for t in ("travel", "travelling", "Travel!")} == {
        "travel and holidays"}
    assert pool_topic(BANK, "My favourite  Teacher!") == "favourite teacher"


def test_bank_version_follows_its_content():
    assert Bank.load(b'{"topics": []}').version != BANK.version
