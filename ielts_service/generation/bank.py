"""The built-in offline question bank: our own items in the IELTS format, topic by topic.

It is the provider when no model is configured, and the fallback when the model cannot
be reached. `bank.json` ships inside the package; every item passes the validators.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ielts_service.generation.items import Item
from ielts_service.generation.topics import normalise_topic, words


@dataclass(frozen=True)
class BankTopic:
    name: str
    category: str
    card_types: tuple[str, ...]
    keywords: tuple[str, ...]
    items: dict[int, list[Item]]


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
            raw = resources.files("ielts_service.generation").joinpath("bank.json").read_bytes()
        data: dict[str, Any] = json.loads(raw)
        topics = [
            BankTopic(
                name=t["name"],
                category=t["category"],
                card_types=tuple(t["card_types"]),
                keywords=tuple(t["keywords"]),
                items={1: t["part1"], 2: t["part2"], 3: t["part3"]},
            )
            for t in data["topics"]
        ]
        return cls(topics, "bank-" + hashlib.sha256(raw).hexdigest()[:12])

    def match(self, topic: str) -> BankTopic | None:
        """The topic area a free-text topic belongs to, or None when none is close."""
        norm = normalise_topic(topic)
        if norm in self._by_name:
            return self._by_name[norm]
        tokens = words(norm)
        forms = set().union(*(_forms(w) for w in tokens)) if tokens else set()
        joined = f" {' '.join(tokens)} "
        best, best_score = None, 0
        for candidate in self.topics:
            score = sum(
                (f" {kw} " in joined) if " " in kw else (kw in forms)
                for kw in candidate.keywords
            )
            if score > best_score:
                best, best_score = candidate, score
        return best

    def fallback_topic(self, topic: str) -> BankTopic:
        """A stable stand-in when nothing matches: the same text always maps to the same area."""
        digest = int(hashlib.sha256(normalise_topic(topic).encode()).hexdigest(), 16)
        return self.topics[digest % len(self.topics)]

    def random_topic(self, rng: random.Random | None = None) -> BankTopic:
        return (rng or random).choice(self.topics)
