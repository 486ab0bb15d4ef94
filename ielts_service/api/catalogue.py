"""The topic catalogue a frontend can offer."""

from __future__ import annotations

from quart import Blueprint, Response

from ielts_service.api.envelope import success
from ielts_service.questions.mock_test import OPENING_TOPICS
from ielts_service.services import services

blueprint = Blueprint("catalogue", __name__)


@blueprint.get("/v1/topics")
async def topics() -> tuple[Response, int]:
    """Every topic area with its category, the Part 2 card types it has and its aliases
    (the phrasings that share its pools)."""
    catalogue = services().questions.catalogue()
    return success({"topics": catalogue, "count": len(catalogue),
                    "part1_openers": list(OPENING_TOPICS)})
