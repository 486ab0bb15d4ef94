"""What a chat completion says: its JSON payload, or why it has none."""

from __future__ import annotations

import json

import openai
from openai.types.chat import ChatCompletion

from ielts_service.llm.errors import ContentFiltered, InvalidOutput


def payload_of(completion: ChatCompletion) -> object:
    """The decoded JSON of the first choice; `ContentFiltered` when Azure's filter stopped
    it (a 200 whose finish_reason says so, or a refusal), `InvalidOutput` when it is not JSON."""
    if not completion.choices:
        raise InvalidOutput("no choices")
    choice = completion.choices[0]
    if choice.finish_reason == "content_filter" or choice.message.refusal:
        raise ContentFiltered()
    try:
        return json.loads(choice.message.content or "")
    except (ValueError, RecursionError):
        raise InvalidOutput(f"answer is not JSON (finish_reason={choice.finish_reason})") from None


def is_content_filter_error(exc: BaseException) -> bool:
    """Azure's other signal of a blocked prompt: HTTP 400 with code `content_filter`."""
    return isinstance(exc, openai.BadRequestError) and exc.code == "content_filter"
