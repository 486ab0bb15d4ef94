"""The frontend's call: one question item for a topic and part."""

from __future__ import annotations

from quart import Blueprint, Response, g

from ielts_service.api.envelope import success
from ielts_service.api.validation import GenerateQuestion, payload
from ielts_service.clients import services

blueprint = Blueprint("questions", __name__)


@blueprint.route("/generate-question", methods=["GET", "POST"])
@payload(GenerateQuestion)
async def generate_question() -> tuple[Response, int]:
    """A Part 1 set, Part 2 cue card or Part 3 set for a topic.

    The payload was validated before this runs; it is in `g.payload`."""
    body: GenerateQuestion = g.payload
    data = await services().questions.question(body.topic, body.part, body.session_id, g.deadline)
    return success(data)
