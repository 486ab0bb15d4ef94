"""The IELTS rules every item must pass, whether it comes from the model, the bank or a test.

`check_item` returns the problems (empty when the item is valid); `accept_items` keeps the
valid ones of a batch, drops duplicates by normalised text and says why it dropped the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ielts_service.llm.errors import InvalidOutput
from ielts_service.questions.items import Item

QUESTION_COUNTS = {1: (4, 5), 3: (4, 6)}  # questions per set, by part
QUESTION_WORDS = {1: 20, 3: 30}  # words per question, by part
BULLET_OPENERS = ("what", "who", "when", "where", "how", "why")
TITLE_WORDS, BULLET_WORDS, EXPLAIN_WORDS, FOLLOW_UP_WORDS = 16, 12, 16, 16
MAX_CHARS = 300

# Part 3 is abstract discussion: questions about the candidate's own life belong in Part 1.
_PERSONAL = re.compile(
    r"\b(your|yours|yourself)\b|^(have you ever|did you|do you (like|have|usually|often|enjoy)"
    r"|would you like)\b",
    re.IGNORECASE,
)


class Problem(str):
    """A rule an item breaks: readable text plus a stable `code` for metrics."""

    code: str

    def __new__(cls, code: str, message: str) -> Problem:
        problem = super().__new__(cls, message)
        problem.code = code
        return problem


def _words(text: str) -> int:
    return len(text.split())


def _is_text(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value.strip()) <= MAX_CHARS and "\n" not in value


def _check_questions(part: int, item: dict[str, Any]) -> list[Problem]:
    questions = item.get("questions")
    low, high = QUESTION_COUNTS[part]
    if set(item) != {"questions"}:
        return [Problem("fields", "item must have exactly the field 'questions'")]
    if not isinstance(questions, list) or not low <= len(questions) <= high:
        return [Problem("question_count", f"needs {low}-{high} questions")]
    problems: list[Problem] = []
    for q in questions:
        if not _is_text(q):
            problems.append(Problem("question_form", "each question must be one line of text"))
            continue
        if not q.strip().endswith("?"):
            problems.append(Problem("question_mark", f"question does not end with '?': {q[:60]}"))
        if _words(q) > (limit := QUESTION_WORDS[part]):
            problems.append(Problem("too_long", f"question longer than {limit} words: {q[:60]}"))
        if part == 3 and _PERSONAL.search(q.strip()):
            problems.append(Problem("personal", f"Part 3 question is personal: {q[:60]}"))
    if len({str(q).strip().lower() for q in questions}) != len(questions):
        problems.append(Problem("repeat", "questions repeat"))
    return problems


def _check_cue_card(item: dict[str, Any]) -> list[Problem]:
    if set(item) != {"title", "bullets", "explain", "follow_ups"}:
        return [Problem("fields", "cue card must have exactly title, bullets, explain, follow_ups")]
    title, bullets, explain, follow_ups = (item[k] for k in ("title", "bullets", "explain",
                                                              "follow_ups"))
    problems: list[Problem] = []
    if not _is_text(title) or not title.startswith("Describe ") or "?" in title:
        problems.append(Problem("title", "title must start with 'Describe' and not be a question"))
    elif _words(title) > TITLE_WORDS:
        problems.append(Problem("too_long", f"title longer than {TITLE_WORDS} words"))
    if not isinstance(bullets, list) or not 3 <= len(bullets) <= 4:
        problems.append(Problem("bullet_count", "needs 3-4 bullet points"))
    else:
        for b in bullets:
            if not _is_text(b) or b.split()[0].lower() not in BULLET_OPENERS:
                openers = "/".join(BULLET_OPENERS)
                message = f"bullet must start with {openers}: {b!s:.60}"
                problems.append(Problem("bullet_form", message))
            elif "?" in b or _words(b) > BULLET_WORDS:
                problems.append(Problem("bullet_form",
                                        f"bullet must be a short phrase, not a question: {b[:60]}"))
    if not _is_text(explain) or not explain.lower().startswith("and explain ") or "?" in explain:
        problems.append(Problem("explain",
                                "explain must start with 'and explain' and not be a question"))
    elif _words(explain) > EXPLAIN_WORDS:
        problems.append(Problem("too_long", f"explain longer than {EXPLAIN_WORDS} words"))
    if not isinstance(follow_ups, list) or not 1 <= len(follow_ups) <= 2:
        problems.append(Problem("follow_up_count", "needs 1-2 rounding-off questions"))
    else:
        for f in follow_ups:
            if not _is_text(f) or not f.strip().endswith("?") or _words(f) > FOLLOW_UP_WORDS:
                problems.append(Problem("follow_up_form", "rounding-off question must be short "
                                        f"and end with '?': {f!s:.60}"))
    return problems


def check_item(part: int, item: object) -> list[Problem]:
    """The ways `item` breaks the rules of `part`; an empty list means it is valid."""
    if not isinstance(item, dict):
        return [Problem("fields", "item must be an object")]
    return _check_cue_card(item) if part == 2 else _check_questions(part, item)


def tidy(part: int, item: Item) -> Item:
    """Trim whitespace and drop trailing full stops so every source looks the same."""

    def clean(text: str) -> str:
        return " ".join(text.split()).rstrip(".")

    if part != 2:
        return {"questions": [" ".join(q.split()) for q in item["questions"]]}
    explain = clean(item["explain"])
    return {
        "title": clean(item["title"]),
        "bullets": [clean(b) for b in item["bullets"]],
        "explain": "and" + explain[3:],
        "follow_ups": [" ".join(f.split()) for f in item["follow_ups"]],
    }


def fingerprint(part: int, item: Item) -> str:
    """Normalised text: two items with the same fingerprint are duplicates."""
    text = item.get("title", "") if part == 2 else " ".join(item["questions"])
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def accept_items(part: int, raw: object) -> tuple[list[Item], list[Problem]]:
    """Valid, tidied, de-duplicated items of `raw`, and the reasons the others were dropped.

    A dropped item's reason is its first problem (all of them, joined, in the text)."""
    if not isinstance(raw, list):
        return [], [Problem("fields", "items must be a list")]
    seen: set[str] = set()
    accepted: list[Item] = []
    reasons: list[Problem] = []
    for candidate in raw:
        problems = check_item(part, candidate)
        if problems:
            reasons.append(Problem(problems[0].code, "; ".join(problems)))
            continue
        item = tidy(part, candidate)
        key = fingerprint(part, item)
        if key in seen:
            reasons.append(Problem("duplicate", "duplicate item"))
            continue
        seen.add(key)
        accepted.append(item)
    return accepted, reasons


@dataclass(frozen=True)
class Batch:
    """The valid items of one model answer, and why the others were dropped."""

    items: list[Item]
    rejected: list[Problem]


def parse_answer(part: int, payload: object,
                 on_rejected: Callable[[int, list[Problem]], None] | None = None) -> Batch:
    """The model's `{"items": [...]}` answer as a Batch; `InvalidOutput` (a failed attempt,
    retried) when no item is valid. `on_rejected` hears about every dropped item."""
    raw = payload.get("items") if isinstance(payload, dict) else None
    items, rejected = accept_items(part, raw)
    if rejected and on_rejected is not None:
        on_rejected(part, rejected)
    if not items:
        raise InvalidOutput("no valid item: " + "; ".join(rejected[:5]))
    return Batch(items, rejected)


class ItemChecker:
    """Checks a streamed answer's items as they complete: valid and tidied, none repeating an
    earlier one of the same answer; `on_rejected` hears about every dropped item."""

    def __init__(self, part: int,
                 on_rejected: Callable[[int, list[Problem]], None] | None = None) -> None:
        self.part, self._on_rejected = part, on_rejected
        self._seen: set[str] = set()

    def accept(self, raw: list[Any]) -> list[Item]:
        accepted, rejected = [], []
        for candidate in raw:
            if problems := check_item(self.part, candidate):
                rejected.append(Problem(problems[0].code, "; ".join(problems)))
                continue
            item = tidy(self.part, candidate)
            if (key := fingerprint(self.part, item)) in self._seen:
                rejected.append(Problem("duplicate", "duplicate item"))
                continue
            self._seen.add(key)
            accepted.append(item)
        if rejected and self._on_rejected is not None:
            self._on_rejected(self.part, rejected)
        return accepted
