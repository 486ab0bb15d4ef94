"""Themes the IELTS Speaking test avoids, found in anything: what a student types, what the
model writes, what the bank holds.

The test avoids politics, religion, race, named public figures, trauma, death, self-harm,
sexuality, alcohol and drugs, war, and one culture's religious observance. A list of bare
words blocks too much ("a running race", "killing time", "a drug store") and a list of
nouns misses too much ("when my dog died", "praying"), so the list names word forms per
theme, and `ALLOWED` phrases are taken out before it is read.

Text is first put in one form, so disguises do not slip past: NFKC (fullwidth letters),
format characters removed (soft hyphens, zero-width spaces), accents dropped, look-alike
Cyrillic and Greek letters read as the Latin ones they pass for, `_` and other
punctuation read as spaces, and letters spelt out one by one ("p o l i t i c s") joined.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# Word forms per theme; "-s" plurals are matched without listing them.
THEMES: dict[str, tuple[str, ...]] = {
    "politics": (
        "politics", "political", "politically", "politician", "politicised", "election",
        "electoral", "voter", "ballot", "parliament", "prime minister", "political party",
        "democracy", "dictator", "dictatorship", "communism", "communist", "socialism",
        "fascism", "fascist", "immigration", "immigrant", "refugee", "asylum seeker",
        "deportation", "protest march", "nazi", "hitler",
    ),
    "religion": (
        "religion", "religious", "god", "goddess", "church", "churches", "mosque", "synagogue",
        "bible", "quran", "koran", "torah", "pray", "praying", "prayed", "prayer", "worship",
        "worshipping", "atheist", "atheism", "christian", "christianity", "muslim", "islam",
        "islamic", "hindu", "hinduism", "buddhist", "buddhism", "jewish", "judaism", "sikh",
        "catholic", "protestant", "holy", "pilgrimage", "christmas", "easter", "ramadan",
        "eid", "diwali", "hanukkah", "passover",
    ),
    "race": ("racism", "racist", "racial", "ethnicity", "race relations",
             "skin colour", "white supremacy"),
    "death and trauma": (
        "death", "die", "died", "dies", "dying", "passed away", "funeral", "cemetery",
        "grief", "grieving", "bereavement", "mourning", "deceased", "kill", "killed",
        "killing", "killer", "murder", "murdered", "suicide", "suicidal", "self harm",
        "selfharm", "trauma", "traumatic", "abuse", "abused", "abusive", "assault", "rape",
        "kidnap", "kidnapped", "torture", "genocide", "massacre",
    ),
    "sexuality": ("sex", "sexual", "sexuality", "sexy", "porn", "pornography", "nude",
                  "gay", "lesbian", "bisexual", "transgender", "dating app", "one night stand"),
    "alcohol, drugs and gambling": (
        "alcohol", "alcoholic", "beer", "wine", "vodka", "whisky", "whiskey", "get drunk",
        "got drunk", "getting drunk", "drunken", "hangover", "drug", "drugs", "cocaine",
        "cannabis", "marijuana", "heroin",
        "narcotics", "overdose", "gamble", "gambling", "gambler", "casino", "betting",
    ),
    "war": ("war", "warfare", "military", "army", "soldier", "weapon", "gun", "bomb",
            "bombing", "terrorism", "terrorist", "invasion", "war crime"),
}

# Ordinary phrases that contain an avoided word form; they are read as harmless.
ALLOWED = (
    "killing time", "kill time", "kills time", "killed time", "drug store", "drug shop",
    "killer whale", "tug of war", "star wars", "water gun", "glue gun", "bath bomb",
    "praying mantis", "murder mystery", "murder mysteries", "die hard", "die out",
    "dies out", "died out", "dying out", "dying to",
)

# Letters of other scripts that pass for Latin ones (Unicode's confusables, Cyrillic and
# Greek, same case). A table of the few dozen that matter rather than confusable-homoglyphs
# at run time, whose full table costs each worker ~10 MB; tests/questions/test_avoided.py
# checks it against that library's data.
_LOOKS_LIKE = {
    "a": "αаΑАɑ", "b": "ΒВ", "c": "ϲсϹС", "d": "ԁ", "e": "еҽΕЕ", "f": "Ϝ", "g": "Ԍɡ",
    "h": "һΗН", "i": "ͺιіӏı", "j": "ϳјͿЈ", "k": "ΚК", "m": "ΜϺМ", "n": "Ν", "o": "οσоΟО",
    "p": "ρϱрΡР", "q": "ԛ", "r": "г", "s": "ѕЅ", "t": "ΤТ", "u": "υ", "v": "νѵѴ",
    "w": "ѡԝԜ", "x": "хΧХ", "y": "γуүΥϒУҮ", "z": "Ζ",
}
LOOKALIKES = str.maketrans({ch: latin for latin, chars in _LOOKS_LIKE.items() for ch in chars})
_SPELT_OUT = re.compile(r"\b(?:\w ){2,}\w\b")  # "p o l i t i c s"
_SEPARATORS = re.compile(r"[\W_]+")


def fold(text: str) -> str:
    """`text` in the one form the check reads: see the module's docstring."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text.translate(LOOKALIKES))
        text = unicodedata.normalize("NFKD", text)  # "é" is "e" and an accent, then dropped
        text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Mn", "Me"))
        text = text.translate(LOOKALIKES)
    text = text.casefold()
    text = " ".join(_SEPARATORS.sub(" ", text).split())
    return _SPELT_OUT.sub(lambda m: m.group(0).replace(" ", ""), text)


def _tokens(phrase: str) -> tuple[str, ...]:
    return tuple(fold(phrase).split())


Tables = tuple[dict[tuple[str, ...], str], frozenset[tuple[str, ...]], frozenset[str],
               frozenset[str]]


@functools.cache
def _tables() -> Tables:
    terms = {_tokens(term): theme for theme, words in THEMES.items() for term in words}
    allowed = frozenset(_tokens(phrase) for phrase in ALLOWED)
    vocabulary = frozenset(word for key in (*terms, *allowed) for word in key)
    first_words = frozenset(key[0] for key in terms)  # no term can start elsewhere
    return terms, allowed, vocabulary, first_words


def _singular(token: str, vocabulary: frozenset[str]) -> str:
    """"politicians" reads as "politician"; words the lists do not know stay as they are."""
    if token not in vocabulary and token.endswith("s") and token[:-1] in vocabulary:
        return token[:-1]
    return token


def _windows(count: int) -> list[tuple[int, int]]:
    """Every (start, end) of up to three words, the longest first at each start."""
    return [(start, start + size) for start in range(count)
            for size in (3, 2, 1) if start + size <= count]


def find_avoided(text: str) -> tuple[str, str] | None:
    """`(theme, words)` of the first avoided theme in `text`, or None when it has none."""
    terms, allowed, vocabulary, first_words = _tables()
    words = [_singular(token, vocabulary) for token in fold(text).split()]
    if first_words.isdisjoint(words):  # most text: nothing to look at closer
        return None
    harmless: set[int] = set()
    for start, end in _windows(len(words)):
        if tuple(words[start:end]) in allowed:
            harmless.update(range(start, end))
    for start, end in _windows(len(words)):
        window = tuple(words[start:end])
        if window in terms and harmless.isdisjoint(range(start, end)):
            return terms[window], " ".join(window)
    return None


def is_avoided(text: str) -> bool:
    """True when `text` touches a theme the test avoids."""
    return find_avoided(text) is not None
