"""Topics: cleaning what a student typed, the key form used for pools, and topics the test avoids."""

from __future__ import annotations

import re
import unicodedata

# Bidirectional overrides and isolates can disguise text; other format characters
# (joiners used by many scripts) are kept.
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LEADING_WORDS = re.compile(r"^(?:(?:a|an|the|my|your|about|describe)\s+)+")

# The public test description's avoided areas (see IELTS.md), as words and phrases.
AVOIDED = frozenset({
    "politics", "political", "politician", "election", "elections", "vote", "voting",
    "president", "prime minister", "parliament", "government", "democracy", "communism",
    "religion", "religious", "god", "gods", "church", "mosque", "synagogue", "bible", "quran",
    "christmas", "easter", "ramadan", "eid", "diwali", "hanukkah", "prayer",
    "race", "racism", "racist", "ethnicity", "sex", "sexual", "sexuality", "porn", "dating",
    "alcohol", "beer", "wine", "vodka", "drunk", "drug", "drugs", "cocaine", "cannabis",
    "marijuana", "heroin", "war", "wars", "military", "army", "weapon", "weapons", "gun",
    "guns", "terrorism", "terrorist", "bomb", "genocide", "trauma", "abuse", "death", "dying",
    "funeral", "suicide", "self harm", "self-harm", "murder", "kill", "killing", "nazi",
})


def clean_topic(text: str) -> str:
    """NFC, no control or bidi-override characters, single spaces, trimmed."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(
        " " if ch in "\t\n\r\v\f" else ch
        for ch in text
        if ch in "\t\n\r\v\f"
        or (unicodedata.category(ch) != "Cc" and ch not in _BIDI_CONTROLS)
    )
    return " ".join(text.split())


def normalise_topic(text: str) -> str:
    """The pool form of a topic: case-folded, "&" as "and", other punctuation as spaces, no
    leading articles, "my" or "your"."""
    text = clean_topic(text).casefold().replace("&", " and ")
    text = re.sub(r"[^\w\s'-]+", " ", text)
    text = " ".join(text.replace("'", "").split()).strip("-")
    return _LEADING_WORDS.sub("", text) or text


def words(text: str) -> list[str]:
    return re.findall(r"[\w-]+", text.casefold())


def is_avoided(topic: str) -> bool:
    """True when the topic touches an area the test avoids (whole words or phrases)."""
    tokens = words(topic)
    joined = f" {' '.join(tokens)} "
    return any(t in AVOIDED for t in tokens) or any(
        f" {phrase} " in joined for phrase in AVOIDED if " " in phrase
    )


class TopicRejected(Exception):
    """The topic touches an area the IELTS Speaking test avoids."""


def reject_avoided(topic: str | None) -> None:
    """Raise TopicRejected for a topic the test avoids; anything else (or None) passes."""
    if topic is not None and is_avoided(topic):
        raise TopicRejected(topic)
