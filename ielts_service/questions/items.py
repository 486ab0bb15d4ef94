"""Question items: the model's output schema per part, ids, the shape sent to clients, and
when two items are the same one (`fingerprint`, `near_duplicate`, `duplicate_of`)."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

Item = dict[str, Any]
PARTS = (1, 2, 3)
# The kinds of cue card the test uses; the model names one per card, the bank one per card.
CARD_TYPES = ("person", "place", "object", "event", "activity")
CARD_FIELDS = ("type", "title", "bullets", "explain", "follow_ups")

_QUESTIONS = {
    "type": "object",
    "properties": {"questions": {"type": "array", "items": {"type": "string"}}},
    "required": ["questions"],
    "additionalProperties": False,
}
_CUE_CARD = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": list(CARD_TYPES)},
        "title": {"type": "string"},
        "bullets": {"type": "array", "items": {"type": "string"}},
        "explain": {"type": "string"},
        "follow_ups": {"type": "array", "items": {"type": "string"}},
    },
    "required": list(CARD_FIELDS),
    "additionalProperties": False,
}


class Problem(str):
    """A rule an item breaks: readable text plus a stable `code` for metrics."""

    code: str

    def __new__(cls, code: str, message: str) -> Problem:
        problem = super().__new__(cls, message)
        problem.code = code
        return problem


def output_schema(part: int) -> dict[str, Any]:
    """The strict JSON schema the model must answer with: `{"items": [ITEM, ...]}`."""
    item = _CUE_CARD if part == 2 else _QUESTIONS
    return {
        "type": "object",
        "properties": {"items": {"type": "array", "items": item}},
        "required": ["items"],
        "additionalProperties": False,
    }


def response_format(part: int) -> dict[str, Any]:
    """The `response_format` argument for a structured-output chat completion."""
    return {
        "type": "json_schema",
        "json_schema": {"name": f"ielts_part{part}", "strict": True, "schema": output_schema(part)},
    }


def item_id(part: int, item: Item) -> str:
    """A stable id: the same item always gets the same id, wherever it came from."""
    canonical = json.dumps([part, item], sort_keys=True, ensure_ascii=False).lower()
    return f"p{part}-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def render_text(part: int, item: Item) -> str:
    """The item as one plain-text string, laid out as the test shows it."""
    if part != 2:
        return "\n".join(item["questions"])
    lines = [item["title"] + ".", "You should say:"]
    lines += [f"  {bullet}" for bullet in item["bullets"]]
    lines.append(item["explain"] + ".")
    return "\n".join(lines)


def to_data(
    part: int, topic: str, item: Item, *, source: str, degraded: bool, prompt_version: str
) -> dict[str, Any]:
    """The `data` of a successful /generate-question response."""
    data: dict[str, Any] = {
        "id": item_id(part, item),
        "part": part,
        "topic": topic,
        "question": render_text(part, item),
    }
    if part == 2:
        data["cue_card"] = {k: item[k] for k in CARD_FIELDS}
    else:
        data["questions"] = list(item["questions"])
    data.update(source=source, degraded=degraded, prompt_version=prompt_version)
    return data


def tidy(part: int, item: Item) -> Item:
    """Trim whitespace and drop trailing full stops so every source looks the same."""

    def clean(text: str) -> str:
        return " ".join(text.split()).rstrip(".")

    if part != 2:
        return {"questions": [" ".join(q.split()) for q in item["questions"]]}
    explain = clean(item["explain"])
    return {
        "type": item["type"],
        "title": clean(item["title"]),
        "bullets": [clean(b) for b in item["bullets"]],
        "explain": "and" + explain[3:],
        "follow_ups": [" ".join(f.split()) for f in item["follow_ups"]],
    }


def summary(part: int, item: Item) -> str:
    """One line that tells the item apart: a card's title, a set's questions."""
    return item["title"] if part == 2 else " / ".join(item["questions"])


def fingerprint(part: int, item: Item) -> str:
    """Normalised text: two items with the same fingerprint are duplicates."""
    text = item.get("title", "") if part == 2 else " ".join(item["questions"])
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


# Words that say nothing about what an item is about: cue cards share "what it is".
_FRAME = frozenset(
    "a an the and or of to in on at for with about from by as is are was were be been do does "
    "did you your yours it its this that these those what who when where why how which would "
    "could should will can have has had there their they them people some any more most very "
    "describe explain say not".split())


@functools.lru_cache(maxsize=4096)  # every pair of a batch and its pool compares the same lines
def _content(text: str) -> frozenset[str]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return frozenset(w[:-1] if len(w) > 3 and w.endswith("s") else w
                     for w in words if w not in _FRAME)


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared) if a or b else 1.0


@functools.lru_cache(maxsize=4096)
def _all_words(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"[a-z0-9']+", text.lower()))


def _same_line(a: str, b: str) -> bool:
    """Two cue-card points that say the same ("where you bought it", "where you got it")."""
    return _overlap(_all_words(a), _all_words(b)) >= 0.6


def near_duplicate(part: int, a: Item, b: Item) -> bool:
    """Two items a student would take for the same one: cards with nearly the same title,
    or a similar title and nearly the same points; sets sharing half their questions."""
    if part == 2:
        title = _overlap(_content(a["title"]), _content(b["title"]))
        ours, theirs = [*a["bullets"], a["explain"]], [*b["bullets"], b["explain"]]
        same = sum(any(_same_line(p, q) for q in theirs) for p in ours)
        return title >= 0.8 or (title >= 0.5 and same >= 0.75 * min(len(ours), len(theirs)))
    ours = [_content(q) for q in a["questions"]]
    theirs = [_content(q) for q in b["questions"]]
    shared = sum(any(_overlap(q, t) >= 0.75 for t in theirs) for q in ours)
    return 2 * shared >= min(len(ours), len(theirs))


def duplicate_of(part: int, item: Item, others: list[Item]) -> Problem | None:
    """Why `item` repeats one of `others` (same text, or nearly: see `near_duplicate`)."""
    key = fingerprint(part, item)
    for other in others:
        if fingerprint(part, other) == key:
            return Problem("duplicate", "duplicate item")
        if near_duplicate(part, item, other):
            return Problem("near_duplicate", f"nearly the same as an item already held: "
                                             f"{summary(part, other):.60}")
    return None


def unlike(part: int, items: list[Item], held: list[Item],
           on_dropped: Callable[[int, list[Problem]], None]) -> list[Item]:
    """The items that do not (nearly) repeat one already `held`; `on_dropped` hears why the
    others went."""
    kept: list[Item] = []
    dropped: list[Problem] = []
    for item in items:
        if reason := duplicate_of(part, item, held):
            dropped.append(reason)
        else:
            kept.append(item)
    on_dropped(part, dropped)
    return kept
