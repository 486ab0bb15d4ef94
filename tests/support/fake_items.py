"""The items the fake model writes: valid ones (text differs on every call) and ones that
each break one rule; a counter shared by everything the fake numbers."""

from __future__ import annotations

import itertools
import threading
from typing import Any

_counter, _counter_lock = itertools.count(1), threading.Lock()


def _next_number() -> int:
    with _counter_lock:
        return next(_counter)


# ---------------------------------------------------------------- items
_TOPICS = ("music", "travel", "cooking", "sport", "reading", "weather", "shopping", "friends")
_PLACES = ("a place you visited", "a book you read", "a person you admire", "a skill you learned",
           "a trip you enjoyed", "a gift you received", "a meal you remember", "a park you like")
_TYPES = ("place", "object", "person", "activity", "event", "object", "event", "place")


def _item(part: int, k: int) -> dict[str, Any]:
    topic = _TOPICS[k % len(_TOPICS)]
    if part == 1:
        return {"questions": [f"Do you enjoy {topic} number {k}?",
                              f"How often do you think about {topic} number {k}?",
                              f"When did you first try {topic} number {k}?",
                              f"Would you like more {topic} number {k} in future?"]}
    if part == 2:
        return {"type": _TYPES[k % len(_TYPES)],
                # The second word keeps cards k and k + 8 apart (not near-duplicates).
                "title": f"Describe {_PLACES[k % len(_PLACES)]} about "
                         f"{_TOPICS[k // len(_PLACES) % len(_TOPICS)]} number {k}",
                "bullets": ["what it was", "when it happened", "who was with you"],
                "explain": f"and explain why number {k} was memorable",
                "follow_ups": [f"Would you do something like number {k} again?"]}
    if part == 3:
        return {"questions": [f"Why do people value {topic} number {k}?",
                              f"How has {topic} number {k} changed in recent decades?",
                              f"What role should governments play in {topic} number {k}?",
                              f"Is {topic} number {k} more important for young or old people?",
                              f"How might {topic} number {k} develop in the future?"]}
    raise ValueError(f"IELTS part must be 1, 2 or 3, not {part!r}")


def valid_items(part: int, n: int = 5) -> list[dict[str, Any]]:
    """``n`` distinct, valid items of ``part``; text differs on every call."""
    return [_item(part, _next_number()) for _ in range(n)]


def invalid_items(part: int) -> list[dict[str, Any]]:
    """Items that each break one rule of ``part``."""
    if part == 1:
        return [{"questions": ["Do you enjoy music", "Where do you live?", "Do you cook?", "Why?"]},
                {"questions": ["Do you enjoy music?", "Where do you live?"]}]
    if part == 2:
        good = _item(2, _next_number())
        return [{**good, "title": "Talk about a place you visited"},
                {**good, "type": "thing"},
                {**good, "bullets": ["what it was", "when it was", "where it was",
                                     "who was there", "how you felt"]},
                {**good, "bullets": ["what was it?", "when did it happen?", "who was with you?"]},
                {**good, "follow_ups": []}]
    if part == 3:
        return [{"questions": ["Why do people travel", "How has travel changed?",
                               "Is travel good?", "What about cost?", "Will it grow?"]},
                {"questions": ["What is your favourite sport?", "Have you ever played golf?",
                               "Why do people play?", "Is sport good?", "Will it grow?"]}]
    raise ValueError(f"IELTS part must be 1, 2 or 3, not {part!r}")
