"""Topics: cleaning what a student typed, the key form used for pools, and refusing topics
the test avoids (the themes and their check are in `avoided`)."""

from __future__ import annotations

import re
import unicodedata

from ielts_service.questions.avoided import is_avoided

# Bidirectional overrides and isolates can disguise text; other format characters
# (joiners used by many scripts) are kept.
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LEADING_WORDS = re.compile(r"^(?:(?:a|an|the|my|your|about|describe)\s+)+")


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


class TopicRejected(Exception):
    """The topic touches an area the IELTS Speaking test avoids."""


def reject_avoided(topic: str | None) -> None:
    """Raise TopicRejected for a topic the test avoids; anything else (or None) passes."""
    if topic is not None and is_avoided(topic):
        raise TopicRejected(topic)
