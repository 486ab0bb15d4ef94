"""The frontend's calls: one question item, or a whole linked mock test."""

from __future__ import annotations

from quart import Blueprint, Response, g, request

from ielts_service.api.envelope import success
from ielts_service.guards.clients import client_key
from ielts_service.guards.schemas import MockTestRequest, QuestionRequest
from ielts_service.guards.validation import payload
from ielts_service.questions.mock_test import mock_test as build_mock_test
from ielts_service.services import services
from ielts_service.state.quota import Payer

blueprint = Blueprint("questions", __name__)


@blueprint.route("/generate-question", methods=["GET", "POST"])
@payload(QuestionRequest)
async def generate_question() -> tuple[Response, int]:
    """A Part 1 set, Part 2 cue card or Part 3 set for a topic.

    The payload was validated before this runs; it is in `g.payload`. Only POST may cause
    a model call: a GET (a link, or an image on any web page) is answered from pools or the
    bank."""
    body: QuestionRequest = g.payload
    payer = Payer(await client_key(), fresh=request.method == "POST")
    data = await services().questions.question(body.topic, body.part, body.session_id,
                                               g.deadline, payer)
    return success(data)


@blueprint.post("/v1/mock-test")
@payload(MockTestRequest)
async def mock_test() -> tuple[Response, int]:
    """Part 1 on three topics, a Part 2 card, and Part 3 linked to the card."""
    body: MockTestRequest = g.payload
    data = await build_mock_test(services().questions, body.topic, body.session_id, g.deadline,
                                 Payer(await client_key()))
    return success(data)
