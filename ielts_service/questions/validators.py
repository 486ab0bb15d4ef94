"""The IELTS rules every item must pass, whether it comes from the model, the bank or a test.

`check_item` returns the problems (empty when the item is valid), each with a stable `code`
that `ielts_items_rejected_total` counts; `accept_items` keeps the valid ones of a batch,
drops near-duplicates and says why it dropped the rest. The rules are those of the public
test description: cue-card points are indirect ("what it is", never "what is it"), every
question line is one question, Part 1 asks about the candidate and Part 3 about society.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ielts_service.llm.errors import InvalidOutput
from ielts_service.questions.avoided import find_avoided
from ielts_service.questions.items import (
    CARD_FIELDS,
    CARD_TYPES,
    Item,
    Problem,
    duplicate_of,
    fingerprint,
    tidy,
    unlike,
)

__all__ = ["Batch", "Problem", "accept_items", "check_item", "fingerprint", "parse_answer",
           "tidy", "unlike"]

QUESTION_COUNTS = {1: (4, 5), 3: (4, 6)}  # questions per set, by part
QUESTION_WORDS = {1: 15, 3: 22}  # words per question: about the real test's longest
MAX_YES_NO = 2  # per Part 1 set: the rest open with a question word or offer a choice
BULLET_OPENERS = ("what", "who", "when", "where", "how", "why")
TITLE_WORDS, BULLET_WORDS, EXPLAIN_WORDS, FOLLOW_UP_WORDS = 16, 10, 14, 12
MAX_CHARS = 300

QUESTION_OPENERS = frozenset("what who whom whose which when where why how".split())
AUXILIARIES = frozenset(
    "am is are was were do does did have has had can could will would shall should may might "
    "must isn't aren't wasn't weren't don't doesn't didn't haven't hasn't can't couldn't "
    "won't wouldn't shouldn't".split())
# Words that start the subject of a clause: after "what is" they show a direct question.
SUBJECTS = frozenset("i you he she it we they this that these those the a an my your his her "
                     "its our their someone somebody anyone anybody everyone people".split())
_PREPOSITIONS = frozenset("in at on for from to with by about of under since until".split())
_YOU = re.compile(r"\byou(?:rs?|rself|rselves)?\b", re.IGNORECASE)
# How examiners open Part 3 to society; what is left must not address the candidate.
_DISCUSSION = re.compile(
    r"\b(?:in your (?:country|opinion|view|culture|society)|your (?:country|culture|society|"
    r"generation)(?:'s)?|(?:do|would|don't) you (?:think|agree|say|believe|expect|imagine)|"
    r"what do you think)\b", re.IGNORECASE)
_LINK = re.compile(r"https?:|www\.|\b[\w-]+\.(?:com|org|net|io|co|uk|edu|gov|info|ly)\b"
                   r"|[\w.+-]+@[\w-]+\.\w", re.IGNORECASE)
_MARKUP = re.compile(r"<[^>]*>|&#?\w+;|[{}`|\\]|\*\*|__|\]\(|^\s*(?:[-*#>]|\d+[.)])\s")
_SECOND_SENTENCE = re.compile(r"[.!]\s+[A-Z]")  # "I like films. Do you?"


def _words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def _is_text(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value.strip()) <= MAX_CHARS and "\n" not in value


def _inverted(clause: str) -> bool:
    """A direct question where the card needs an indirect one: "what is it", "where did you
    buy it" (the card prints "what it is", "where you bought it"). "who was there" and
    "what happened" ask about the subject, and read the same both ways."""
    words = _words(clause)
    if not words or words[0] not in QUESTION_OPENERS:
        return False
    for i, word in enumerate(words[1:5], start=1):
        if word in SUBJECTS:
            return False
        if word in AUXILIARIES:
            return i + 1 < len(words) and words[i + 1] in SUBJECTS
    return False


def _opening(question: str) -> str:
    """The word the question proper opens with: "In your opinion, is ..." opens with "is"."""
    words = _words(question)
    first = words[0].removesuffix("'s") if words else ""  # "What's ..."
    if first in QUESTION_OPENERS or first in AUXILIARIES:
        return first
    if len(words) > 1 and words[0] in _PREPOSITIONS and words[1] in QUESTION_OPENERS:
        return words[1]  # "In what ways ...", "At what age ..."
    lead, comma, rest = question.partition(",")
    rest_words = _words(rest)
    return rest_words[0] if comma and len(_words(lead)) <= 8 and rest_words else ""


def _is_yes_no(question: str) -> bool:
    return _opening(question) in AUXILIARIES and " or " not in question


def _text_problems(text: str) -> Iterator[Problem]:
    """What no line a student sees may hold, whichever field it is in."""
    if _LINK.search(text):
        yield Problem("link", f"links and e-mail addresses are not allowed: {text:.60}")
    if _MARKUP.search(text):
        yield Problem("markup", f"markup is not allowed: {text:.60}")
    if avoided := find_avoided(text):
        yield Problem("avoided_theme", f"a theme the test avoids ({avoided[0]}: "
                                       f"{avoided[1]!r}): {text:.60}")


def _question_problems(text: str, limit: int, what: str) -> Iterator[Problem]:
    """One question, opening with a question word or an auxiliary, ending in "?"."""
    if text.count("?") > 1 or _SECOND_SENTENCE.search(text):
        yield Problem("one_question", f"one question per line: {text:.60}")
    elif not text.rstrip().endswith("?"):
        yield Problem("question_mark", f"{what} does not end with '?': {text:.60}")
    elif not _opening(text):
        yield Problem("question_form", f"{what} must open with a question word or an "
                                       f"auxiliary: {text:.60}")
    if len(text.split()) > limit:
        yield Problem("too_long", f"{what} longer than {limit} words: {text:.60}")


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
        problems += _text_problems(q)
        problems += _question_problems(q, QUESTION_WORDS[part], "question")
        if part == 1 and not _YOU.search(q):
            problems.append(Problem("not_personal",
                                    f"Part 1 asks about the candidate ('you'): {q:.60}"))
        if part == 3 and _YOU.search(_DISCUSSION.sub(" ", q)):
            problems.append(Problem("personal", f"Part 3 question is personal: {q:.60}"))
    if problems:
        return problems
    if part == 1 and sum(map(_is_yes_no, questions)) > MAX_YES_NO:
        problems.append(Problem("question_mix", f"at most {MAX_YES_NO} yes/no questions a set"))
    if len({q.strip().lower() for q in questions}) != len(questions):
        problems.append(Problem("repeat", "questions repeat"))
    return problems


def _check_point(text: object, what: str, limit: int, code: str) -> Iterator[Problem]:
    """A cue-card line: a phrase, never a question, indirect word order."""
    if not _is_text(text):
        yield Problem(code, f"{what} must be one line of text")
        return
    assert isinstance(text, str)
    yield from _text_problems(text)
    if "?" in text:
        yield Problem(code, f"{what} must be a phrase, not a question: {text:.60}")
    elif _inverted(text.removeprefix("and explain ").removeprefix("And explain ")):
        yield Problem("word_order", f"{what} must use statement word order ('what it is', "
                                    f"not 'what is it'): {text:.60}")
    if len(text.split()) > limit:
        yield Problem("too_long", f"{what} longer than {limit} words: {text:.60}")


def _check_cue_card(item: dict[str, Any]) -> list[Problem]:
    if set(item) != set(CARD_FIELDS):
        return [Problem("fields", "cue card must have exactly " + ", ".join(CARD_FIELDS))]
    title, bullets, explain, follow_ups = (item[k] for k in CARD_FIELDS[1:])
    problems: list[Problem] = []
    if item["type"] not in CARD_TYPES:
        problems.append(Problem("card_type", "type must be one of " + ", ".join(CARD_TYPES)))
    if not _is_text(title) or not title.startswith("Describe "):
        problems.append(Problem("title", "title must start with 'Describe' and not be a question"))
    else:
        problems += _check_point(title, "title", TITLE_WORDS, "title")
    if not isinstance(bullets, list) or not 3 <= len(bullets) <= 4:
        problems.append(Problem("bullet_count", "needs 3-4 bullet points"))
    else:
        for b in bullets:
            if _is_text(b) and b.split()[0].lower() not in BULLET_OPENERS:
                problems.append(Problem("bullet_form", f"bullet must start with "
                                        f"{'/'.join(BULLET_OPENERS)}: {b:.60}"))
            else:
                problems += _check_point(b, "bullet", BULLET_WORDS, "bullet_form")
    if not _is_text(explain) or not explain.lower().startswith("and explain "):
        problems.append(Problem("explain", "explain must start with 'and explain' and not be "
                                           "a question"))
    else:
        problems += _check_point(explain, "explain", EXPLAIN_WORDS, "explain")
    if not isinstance(follow_ups, list) or not 1 <= len(follow_ups) <= 2:
        problems.append(Problem("follow_up_count", "needs 1-2 rounding-off questions"))
        return problems
    for f in follow_ups:
        if not _is_text(f):
            problems.append(Problem("follow_up_form", "rounding-off question must be one line"))
            continue
        problems += _text_problems(f)
        problems += _question_problems(f, FOLLOW_UP_WORDS, "rounding-off question")
        if not _YOU.search(f):
            problems.append(Problem("not_personal", f"rounding-off questions are personal "
                                                    f"('you'): {f:.60}"))
    return problems


def check_item(part: int, item: object) -> list[Problem]:
    """The ways `item` breaks the rules of `part`; an empty list means it is valid."""
    if not isinstance(item, dict):
        return [Problem("fields", "item must be an object")]
    return _check_cue_card(item) if part == 2 else _check_questions(part, item)


@functools.lru_cache(maxsize=2048)
def _checked(part: int, canonical: str) -> tuple[Problem, ...]:
    """`check_item` of an item as JSON: a pool read back again and again costs a lookup."""
    return tuple(check_item(part, json.loads(canonical)))


def accept_items(part: int, raw: object, *, dedupe: bool = True,
                 held: list[Item] | None = None) -> tuple[list[Item], list[Problem]]:
    """Valid, tidied items of `raw` with near-duplicates (of each other, or of items already
    `held`) dropped unless `dedupe` is off (items de-duplicated when stored), and the
    reasons the others were dropped: each one's first problem (all, joined, in the text)."""
    if not isinstance(raw, list):
        return [], [Problem("fields", "items must be a list")]
    accepted: list[Item] = []
    reasons: list[Problem] = []
    for candidate in raw:
        try:
            problems = _checked(part, json.dumps(candidate, sort_keys=True, ensure_ascii=False))
        except (TypeError, ValueError):  # not JSON: a Python caller's object
            problems = tuple(check_item(part, candidate))
        if problems:
            reasons.append(Problem(problems[0].code, "; ".join(problems)))
            continue
        item = tidy(part, candidate)
        if dedupe and (reason := duplicate_of(part, item, [*(held or []), *accepted])):
            reasons.append(reason)
            continue
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
        self._accepted: list[Item] = []

    def accept(self, raw: list[Any]) -> list[Item]:
        accepted, rejected = accept_items(self.part, raw, held=self._accepted)
        self._accepted += accepted
        if rejected and self._on_rejected is not None:
            self._on_rejected(self.part, rejected)
        return accepted
