"""The built-in offline question bank: our own items in the IELTS format, topic by topic.

It is the provider when no model is configured, and the fallback when the model cannot
be reached. `bank.json` ships inside the package; every item passes the validators.

Which items a topic may be served (the README's "Bank matching"): text that is, once
normalised, an area's name or one of its aliases *is* that area, and gets any of its items.
Other text is more specific: it gets the cards whose title names every content word of it,
and in Part 3 the discussion sets written for those cards. Part 1 sets are written for an
area, so a specific topic has none. The bank never stands in with another subject.

`bank.json` is `{"version": 1, "topics": [AREA, ...]}`, one AREA per topic area:

    {"name": "travel and holidays", "category": "everyday life",
     "card_types": ["place", "event"],      # the types of its cards (the catalogue shows them)
     "keywords": ["travel", ...],           # words that bring the area up in suggestions
     "aliases": ["travelling", "trips", ...],  # phrasings that mean the area (`Bank.match`)
     "part1": [{"questions": [...]}, ...],  # Part 1 sets
     "part2": [                             # cue cards, each with the Part 3 written for it
       {"type": "place", "title": "Describe ...", "bullets": [...],
        "explain": "and explain ...", "follow_ups": [...],
        "part3": [{"questions": [...]}, ...]},
       ...]}

A card's `type` is one of `items.CARD_TYPES`. Part 3 belongs to a card, as in the test: a
mock test serves the card's own sets after it; a Part 3 request on the area draws from all
of the area's, one on a card's subject from that card's. Every area holds at least four
items per part (a session practising offline sees four before a repeat) and cards of at
least three types. To deepen the bank, add sets to `part1`, cards to `part2` (their types
listed in `card_types`) and sets to a card's `part3`; tests/questions/test_bank.py checks
every item against the validators and the whole bank for near-duplicates.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ielts_service.questions.items import CARD_FIELDS, Item, item_id
from ielts_service.questions.topics import normalise_topic, words

Stems = frozenset[str]


@dataclass(frozen=True)
class BankTopic:
    name: str
    category: str
    card_types: tuple[str, ...]
    keywords: tuple[str, ...]
    aliases: tuple[str, ...]  # phrasings that mean the area itself: they share its pools
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
                     aliases=tuple(raw.get("aliases", ())),
                     items={1: raw["part1"], 2: cards, 3: part3}, part3_by_card=linked)


class TopicUnavailable(Exception):
    """The bank has nothing on this topic; `suggestions` are the closest catalogue topics."""

    def __init__(self, suggestions: list[str]) -> None:
        super().__init__("no bank item on this topic")
        self.suggestions = suggestions


# Hand-written rather than a stemming library: two small rules (plurals for names and
# aliases; plus -ing/-ed for content words), compared as sets so either side may be plural.
def plural_forms(word: str) -> set[str]:
    """The word and the singulars it could be: "movies" -> movie, "buses" -> bus, "cities" -> city."""
    forms = {word}
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        forms.add(word[:-1])
        if word.endswith("es"):
            forms.add(word[:-2])
        if word.endswith("ies"):
            forms.add(word[:-3] + "y")
    return forms


def stems(word: str) -> Stems:
    """Plural forms plus -ing and -ed taken off: "learning" and "learned" meet "learn"."""
    forms = plural_forms(word)
    for suffix, least in (("ing", 6), ("ed", 5)):
        if len(word) >= least and word.endswith(suffix):
            base = word[: -len(suffix)]
            forms.update({base, base + "e"})
            if len(base) > 2 and base[-1] == base[-2]:  # travelling, planned
                forms.add(base[:-1])
    return frozenset(forms)


# Words that do not say what a topic is about. "favourite" is here because any card on the
# subject lets the student choose their favourite; "like", "would" and "not" are not.
STOPWORDS = frozenset(
    "a an the my your our their his her its of in on at to for and or with about from some "
    "any that this these those you i me we is are was were be been do does did have has had "
    "favourite favorite describe who whom which what when where how why very really one".split()
)


def phrase(text: str) -> tuple[set[str], ...]:
    """Normalised words of a topic, each with its plural forms: the near-duplicate key."""
    return tuple(plural_forms(w) for w in words(normalise_topic(text)))


def same_phrase(a: tuple[set[str], ...], b: tuple[set[str], ...]) -> bool:
    return len(a) == len(b) and all(x & y for x, y in zip(a, b, strict=True))


def content(text: str) -> list[Stems]:
    """The words that say what a topic is about, each as its stems."""
    return [stems(w) for w in words(normalise_topic(text)) if w not in STOPWORDS]


def _vocabulary(text: str) -> Stems:
    return frozenset().union(*(stems(w) for w in words(text)))


def _covers(vocabulary: Stems, wanted: list[Stems]) -> bool:
    return all(w & vocabulary for w in wanted)


ALIKE = 0.75  # a suggestion spelt this much like the text (difflib ratio) is close to it
SPELLING = 40  # characters of the text compared by spelling: a typo shows in fewer


class Bank:
    """Topic areas with Part 1 sets, Part 2 cards and Part 3 sets."""

    def __init__(self, topics: list[BankTopic], version: str) -> None:
        self.topics = topics
        self.version = version
        self._phrases = [(phrase(p), t) for t in topics for p in (t.name, *t.aliases)]
        self._written_for = {card: sets for t in topics for card, sets in t.part3_by_card.items()}
        self._titles = {t.name: [_vocabulary(card["title"]) for card in t.items[2]]
                        for t in topics}
        self._names = {t.name: _vocabulary(" ".join((t.name, *t.aliases, *t.keywords)))
                       for t in topics}
        self._cards = {name: frozenset().union(*titles) for name, titles in self._titles.items()}

    def __repr__(self) -> str:
        return f"Bank(topics={len(self.topics)}, version={self.version!r})"

    @classmethod
    def load(cls, raw: bytes | None = None) -> Bank:
        if raw is None:
            raw = resources.files("ielts_service.questions").joinpath("bank.json").read_bytes()
        data: dict[str, Any] = json.loads(raw)
        topics = [_area(t) for t in data["topics"]]
        return cls(topics, "bank-" + hashlib.sha256(raw).hexdigest()[:12])

    def match(self, topic: str) -> BankTopic | None:
        """The area this text names: its name or an alias, once normalised (case,
        punctuation, plurals, leading articles and "my"/"your"); None for anything else."""
        key = phrase(topic)
        return next((area for p, area in self._phrases if same_phrase(p, key)), None)

    def on_subject(self, topic: str, part: int) -> list[Item]:
        """Part 2: the cards whose title names every content word of `topic`; Part 3: the
        discussion sets that follow those cards; Part 1: none (see the module note)."""
        wanted = content(topic)
        if not wanted or part == 1:
            return []
        found = []
        for area in self.topics:
            cards = [card for card, title in zip(area.items[2], self._titles[area.name],
                                                 strict=True) if _covers(title, wanted)]
            found += cards if part == 2 else [questions for card in cards
                                              for questions in area.part3_for(item_id(2, card))]
        return found

    def items_for(self, topic: str, part: int,
                  card: Item | None = None) -> tuple[str, list[Item]] | None:
        """The topic honoured and the items on it, or None when the bank has none; a Part 3
        after one of the bank's cards (`card`) gets the sets written for that card."""
        area = self.match(topic)
        if area is not None:
            return area.name, self.written_for(card) or area.items[part]
        found = self.on_subject(topic, part)
        return (normalise_topic(topic), self.written_for(card) or found) if found else None

    def choose(self, topic: str | None, part: int,
               card: Item | None = None) -> tuple[str, list[Item]]:
        """Bank mode: `items_for` the topic, or TopicUnavailable naming the closest catalogue
        topics; without a topic, a drawn area's."""
        if topic is None:
            area = self.random_topic()
            return area.name, area.items[part]
        found = self.items_for(topic, part, card)
        if found is None:
            raise TopicUnavailable(self.suggestions(topic))
        return found

    def _shared(self, topic: str) -> dict[str, float]:
        """Per area, the words it shares with the text: in its name, aliases or keywords
        twice as much as in its card titles; a word few areas share counts more."""
        wanted = content(topic) or [stems(w) for w in words(normalise_topic(topic))]
        score = dict.fromkeys(self._names, 0.0)
        for w in wanted:
            hits = {name: 2 if w & vocabulary else 1 if w & self._cards[name] else 0
                    for name, vocabulary in self._names.items()}
            sharing = sum(1 for hit in hits.values() if hit) or 1
            for name, hit in hits.items():
                score[name] += hit / sharing
        return score

    def suggestions(self, topic: str, limit: int = 5) -> list[str]:
        """Up to `limit` catalogue topics closest to what was asked, closest first: those
        sharing a word with it or spelt much like it (a typo), else the most alike."""
        shared = self._shared(topic)
        matcher = difflib.SequenceMatcher()
        matcher.set_seq2(normalise_topic(topic)[:SPELLING])  # difflib caches seq2's analysis

        def alike(area: BankTopic, floor: float, names: bool = False) -> float:
            """How alike the text is to the area's name or an alias; 0 when under `floor`
            (the cheap upper bounds rule most phrases out before the full ratio)."""
            best = 0.0
            for text in (area.name,) if names else (area.name, *area.aliases):
                matcher.set_seq1(text)
                if matcher.real_quick_ratio() >= floor and matcher.quick_ratio() >= floor:
                    best = max(best, matcher.ratio())
            return best if best >= floor else 0.0

        ranked = sorted(((shared[a.name], alike(a, 0.0 if shared[a.name] else ALIKE), a.name)
                         for a in self.topics), key=lambda r: (-r[0], -r[1], r[2]))
        close = [name for score, similar, name in ranked if score > 0 or similar >= ALIKE]
        if not close:  # nothing in common: the most alike by spelling, however little
            close = [name for _, name in sorted(
                ((alike(a, 0.0, names=True), a.name) for a in self.topics),
                key=lambda r: (-r[0], r[1]))]
        return close[:limit]

    def closest(self, topic: str) -> BankTopic | None:
        """The area a topic is nearest to (sharing at least one word), or None."""
        area = self.match(topic)
        if area is not None:
            return area
        shared = self._shared(topic)
        best = max(self.topics, key=lambda a: shared[a.name])
        return best if shared[best.name] > 0 else None

    def catalogue(self) -> list[dict[str, Any]]:
        """The topic areas a frontend can offer, with the phrasings that mean each and what
        the bank holds on each: items per part, and its cards by type."""
        return [{"topic": t.name, "category": t.category, "card_types": sorted(set(t.card_types)),
                 "aliases": list(t.aliases),
                 "bank": {"part1": len(t.items[1]), "part2": len(t.items[2]),
                          "part3": len(t.items[3]),
                          "cards": dict(sorted(Counter(c["type"] for c in t.items[2]).items()))}}
                for t in self.topics]

    def random_topic(self, rng: random.Random | None = None) -> BankTopic:
        return (rng or random).choice(self.topics)

    def written_for(self, card: Item | None) -> list[Item]:
        """The Part 3 sets written for `card`; none when it is not one of the bank's cards."""
        return self._written_for.get(item_id(2, card), []) if card else []


@functools.lru_cache(maxsize=8192)
def pool_topic(bank: Bank, topic: str) -> str:
    """The topic a pool is kept under, and the model is asked about: the area's name when
    the text names an area, else the student's own text, normalised.

    Cached: popular topics arrive over and over, and the bank never changes."""
    area = bank.match(topic)
    return area.name if area else normalise_topic(topic)
