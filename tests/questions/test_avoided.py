"""Themes the test avoids: found in ordinary phrasing and through disguises, without
blocking the everyday words that merely look like them."""

from __future__ import annotations

import pytest
from confusable_homoglyphs import confusables

from ielts_service.questions.avoided import THEMES, find_avoided, fold, is_avoided
from ielts_service.questions.topics import TopicRejected, reject_avoided

# (text, the theme it touches, or None when it touches none)
TABLE = [
    # what the review found missed
    ("when my dog died", "death and trauma"),
    ("praying", "religion"),
    ("politicians", "politics"),
    ("gambling", "alcohol, drugs and gambling"),
    ("Describe your views on immigration policy", "politics"),
    # and more like them
    ("the day my grandmother passed away", "death and trauma"),
    ("a funeral I went to", "death and trauma"),
    ("my favourite politician", "politics"),
    ("elections in my country", "politics"),
    ("going to church on Sundays", "religion"),
    ("Christmas presents", "religion"),
    ("racism at school", "race"),
    ("self-harm", "death and trauma"),
    ("a time I got drunk", "alcohol, drugs and gambling"),
    ("a casino in Macau", "alcohol, drugs and gambling"),
    ("the best wine I tasted", "alcohol, drugs and gambling"),
    ("soldiers and weapons", "war"),
    ("Why do people gamble?", "alcohol, drugs and gambling"),
    ("What is your religion?", "religion"),
    ("a dating app", "sexuality"),
    # ordinary words and phrases that only look like avoided ones
    ("a running race", None),
    ("killing time", None),
    ("a drug store", None),
    ("drug stores near my home", None),
    ("a race against time", None),
    ("tug of war at a school fair", None),
    ("a killer whale at the aquarium", None),
    ("a murder mystery novel", None),
    ("What role should governments play in protecting parks?", None),
    ("a party for my birthday", None),
    ("the digital revolution", None),
    ("the migration of birds", None),
    ("a building dating from 1900", None),
    ("a hero in my town", None),
    ("Have you ever drunk coconut water?", None),
    ("a historic building in my city", None),
    ("celebrations and festivals", None),
    ("a deadline at work", None),
    ("a wedding I went to", None),
    ("Why do some languages die out?", None),
    ("Do you like ethnic food?", None),
]


@pytest.mark.parametrize(("text", "theme"), TABLE)
def test_avoided_themes_are_found_and_ordinary_words_are_not(text, theme):
    found = find_avoided(text)
    assert (found[0] if found else None) == theme, found


@pytest.mark.parametrize("disguised", [
    "ｐｏｌｉｔｉｃｓ today",  # fullwidth letters (NFKC)
    "poli\u00adtics",  # soft hyphen
    "poli\u200btics",  # zero-width space
    "war_crimes",  # underscore as a separator
    "WAR-CRIMES",
    "р\u043eliti\u0441s",  # Cyrillic р, о, с
    "\u03a1OLITICS",  # Greek capital rho
    "pólitícs",  # accents
    "p o l i t i c s",  # spelt out
    "Gambling!!!",
])
def test_disguised_avoided_themes_are_found(disguised):
    assert is_avoided(disguised)
    with pytest.raises(TopicRejected):
        reject_avoided(disguised)


def _confusable_pairs() -> list[tuple[str, str]]:
    """Every Greek and Cyrillic letter Unicode lists as confusable with a Latin letter of
    the same case, with that letter."""
    pairs = []
    for code in range(0x370, 0x530):
        char = chr(code)
        found = char.isalpha() and confusables.is_confusable(char, preferred_aliases=["latin"])
        for glyph in found[0]["homoglyphs"] if found else []:
            latin = glyph["c"]
            if len(latin) == 1 and latin.isascii() and latin.isupper() == char.isupper():
                pairs.append((char, latin))
    return pairs


PAIRS = _confusable_pairs()
WORDS = [w for words in THEMES.values() for w in words if " " not in w]


def test_unicode_lists_the_look_alikes_this_test_walks_through():
    assert len(PAIRS) >= 60 and {latin.lower() for _, latin in PAIRS} >= set("aceopxy")


@pytest.mark.parametrize(("lookalike", "latin"), PAIRS, ids=lambda c: f"U+{ord(c):04X}")
def test_each_look_alike_letter_is_read_as_the_latin_one(lookalike, latin):
    """An avoided word with one of its letters swapped for a look-alike is still found."""
    word = next(w for w in WORDS if latin.lower() in w)
    word = word.upper() if latin.isupper() else word
    disguised = word.replace(latin, lookalike, 1)
    assert disguised != word and is_avoided(disguised), (disguised, fold(disguised))
