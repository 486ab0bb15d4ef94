"""A whole Speaking test: three Part 1 topics, one cue card, and Part 3 written for that card."""

from __future__ import annotations

import asyncio
import hashlib
import random
from typing import Any

from ielts_service.deadline import Deadline
from ielts_service.questions.service import QuestionService
from ielts_service.questions.topics import reject_avoided
from ielts_service.state.quota import OPERATOR, Payer

# Part 1 always opens with work or study, or home and hometown.
OPENING_TOPICS = ("work or study", "hometown", "home and accommodation")
PART1_CATEGORIES = ("everyday life", "leisure and media")


def part1_topics(service: QuestionService, avoid: str, rng: random.Random) -> list[str]:
    """An opening topic, then two familiar ones that differ from it and from the card."""
    others = [t.name for t in service.bank.topics
              if t.category in PART1_CATEGORIES and t.name not in OPENING_TOPICS + (avoid,)]
    openers = [t for t in OPENING_TOPICS if t != avoid]
    return [rng.choice(openers), *rng.sample(others, 2)]


async def mock_test(
    service: QuestionService, topic: str | None, session_id: str | None, deadline: Deadline,
    payer: Payer = OPERATOR,
) -> dict[str, Any]:
    """The `data` of a /v1/mock-test answer. Each part falls back on its own."""
    reject_avoided(topic)
    if topic is not None and service.model is None:
        # Bank mode: no card on the topic is 422 topic_unavailable before any part is drawn
        # (Part 3 follows the card, so it has a set whenever the card was found).
        service.bank.choose(topic, 2)
    rng = random.Random()
    card_topic = topic or service.bank.random_topic(rng).name
    # The card's nearest area, not its words: "a memorable trip" keeps travel out of Part 1.
    area = service.bank.closest(card_topic)
    openers = part1_topics(service, area.name if area else card_topic, rng)
    part2_task = asyncio.create_task(service.question(card_topic, 2, session_id, deadline, payer))
    part1 = await asyncio.gather(*(service.question(t, 1, session_id, deadline, payer)
                                 for t in openers))
    part2 = await part2_task
    # Part 3 is written for the card just served (the bank: the sets written for it), on
    # the card's (normalised) topic.
    part3 = await service.question(part2["topic"], 3, session_id, deadline, payer,
                                   card=part2["cue_card"])
    part3["linked_to"] = part2["id"]
    ids = [p["id"] for p in (*part1, part2, part3)]
    return {
        "id": "mt-" + hashlib.sha256("|".join(ids).encode()).hexdigest()[:16],
        "part1": {"topics": [{"topic": p["topic"], "questions": p["questions"], "id": p["id"],
                              "source": p["source"]} for p in part1]},
        "part2": part2,
        "part3": part3,
        "degraded": any(p["degraded"] for p in (*part1, part2, part3)),
    }
