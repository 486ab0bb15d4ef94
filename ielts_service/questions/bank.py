"""The built-in offline question bank: our own items in the IELTS format, topic by topic.

It is the provider when no model is configured, and the fallback when the model cannot
be reached. `bank.json` ships inside the package; every item passes the validators.

`bank.json` is `{"version": 1, "topics": [AREA, ...]}`, one AREA per topic area:

    {"name": "travel and holidays", "category": "everyday life",
     "card_types": ["place", "event"],      # the types of its cards (the catalogue shows them)
     "keywords": ["travel", ...],           # what free text is matched by (`Bank.match`)
     "part1": [{"questions": [...]}, ...],  # Part 1 sets
     "part2": [                             # cue cards, each with the Part 3 written for it
       {"type": "place", "title": "Describe ...", "bullets": [...],
        "explain": "and explain ...", "follow_ups": [...],
        "part3": [{"questions": [...]}, ...]},
       ...]}

A card's `type` is one of `items.CARD_TYPES`. Part 3 belongs to a card, as in the test: a
mock test serves the card's own sets after it; a Part 3 request alone draws from all of the
area's. To deepen the bank, add sets to `part1`, cards to `part2` (their types listed in
`card_types`) and sets to a card's `part3`; tests/questions/test_bank.py checks every item
against the validators and the whole bank for near-duplicates.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ielts_service.questions.items import CARD_FIELDS, Item, item_id
from ielts_service.questions.topics import normalise_topic, words


@dataclass(frozen=True)
class BankTopic:
    name: str
    category: str
    card_types: tuple[str, ...]
    keywords: tuple[str, ...]
    items: dict[int, list[Item]]  # Part 3: every card's sets
    part3_by_card: dict[str, list[Item]]  # a card's id: the Part 3 sets written for it

    def part3_for(self, card_id: str | None) -> list[Item]:
        """The Part 3 sets written for the card `card_id`; all the area's for another card."""
        return self.part3_by_card.get(card_id or "") or self.items[3]


def _area(raw: dict[str, Any]) -> BankTopic:
    """One topic area of bank.json (see the module's docstring)."""
    cards = [{key: entry[key] for key in CARD_FIELDS} for entry in raw["part2"]]
    linked = {item_id(2, card): list(entry["part3"])
              for card, entry in zip(cards, raw["part2"], strict=True)}
    if set(raw["card_types"]) != {card["type"] for card in cards}:
        raise ValueError(f"bank.json: {raw['name']}: card_types must list its cards' types")
    part3 = [questions for sets in linked.values() for questions in sets]
    return BankTopic(name=raw["name"], category=raw["category"],
                     card_types=tuple(raw["card_types"]), keywords=tuple(raw["keywords"]),
                     items={1: raw["part1"], 2: cards, 3: part3}, part3_by_card=linked)


def _forms(word: str) -> set[str]:
    """The word and the singulars it could be: "movies" -> movie, "buses" -> bus, "cities" -> city."""
    forms = {word}
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        forms.add(word[:-1])
        if word.endswith("es"):
            forms.add(word[:-2])
        if word.endswith("ies"):
            forms.add(word[:-3] + "y")
    return forms


STOPWORDS = frozenset(
    "a an the my your our their his her its of in on at to for and or with about from some "
    "any that this these those you i me we is are was were be do does did have has like "
    "favourite favorite".split()
)


class Bank:
    """Topic areas with Part 1 sets, Part 2 cards and Part 3 sets."""

    def __init__(self, topics: list[BankTopic], version: str) -> None:
        self.topics = topics
        self.version = version
        self._by_name = {t.name: t for t in topics}

    def __repr__(self) -> str:
        return f"Bank(topics={len(self.topics)}, version={self.version!r})"

    @classmethod
    def load(cls, raw: bytes | None = None) -> Bank:
        if raw is None:
            raw = resources.files("ielts_service.questions").joinpath("bank.json").read_bytes()
        data: dict[str, Any] = json.loads(raw)
        topics = [_area(t) for t in data["topics"]]
        return cls(topics, "bank-" + hashlib.sha256(raw).hexdigest()[:12])

    def match(self, topic: str, min_coverage: float = 0.0) -> BankTopic | None:
        """The topic area free text belongs to, or None when none is close enough.

        Coverage is the share of the text's content words that the area's keywords
        account for: "memorable journeys" is half covered by "journey"."""
        norm = normalise_topic(topic)
        if norm in self._by_name:
            return self._by_name[norm]
        tokens = [w for w in words(norm) if w not in STOPWORDS]
        if not tokens:
            return None
        joined = f" {' '.join(tokens)} "
        forms = {t: _forms(t) for t in tokens}
        best, best_covered = None, 0
        for candidate in self.topics:
            covered = set()
            for kw in candidate.keywords:
                if " " in kw:
                    if f" {kw} " in joined:
                        covered.update(kw.split())
                else:
                    covered.update(t for t in tokens if kw in forms[t])
            if len(covered) > best_covered:
                best, best_covered = candidate, len(covered)
        if best is None or best_covered / len(tokens) < min_coverage:
            return None
        return best

    def catalogue(self) -> list[dict[str, Any]]:
        """The topic areas a frontend can offer."""
        return [{"topic": t.name, "category": t.category, "card_types": sorted(set(t.card_types))}
                for t in self.topics]

    def fallback_topic(self, topic: str) -> BankTopic:
        """A stable stand-in when nothing matches: the same text always maps to the same area."""
        digest = int(hashlib.sha256(normalise_topic(topic).encode()).hexdigest(), 16)
        return self.topics[digest % len(self.topics)]

    def random_topic(self, rng: random.Random | None = None) -> BankTopic:
        return (rng or random).choice(self.topics)


MAPPING_COVERAGE = 0.5  # free text joins a catalogue pool when half its words match


@functools.lru_cache(maxsize=8192)
def pool_topic(bank: Bank, topic: str) -> str:
    """The topic a pool is kept under: its catalogue area when close enough, else itself.

    Cached: popular topics arrive over and over, and the bank never changes."""
    area = bank.match(topic, MAPPING_COVERAGE)
    return area.name if area else normalise_topic(topic)
