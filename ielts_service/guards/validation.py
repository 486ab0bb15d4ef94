"""Payload validation that runs before any handler (a `before_request` hook).

A view declares its payload model with `@payload(Model)`; the hook reads the body (or the
query string for GET), checks content type, size, JSON and fields, and leaves the parsed
model in `g.payload`. A bad payload never reaches a handler, let alone the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from quart import current_app, g, request

from ielts_service.errors import APIError
from ielts_service.questions.topics import clean_topic

F = TypeVar("F", bound=Callable[..., Any])
SESSION_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
TOPIC_MAX = 120


class MockTest(BaseModel):
    """POST /v1/mock-test: an optional Part 2 topic and session."""

    model_config = ConfigDict(extra="forbid", strict=True)

    topic: str | None = None
    session_id: str | None = None

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = clean_topic(value)
        if not value:
            raise ValueError("must not be empty")
        if len(value) > TOPIC_MAX:
            raise ValueError(f"must be at most {TOPIC_MAX} characters")
        return value

    @field_validator("session_id")
    @classmethod
    def _session(cls, value: str | None) -> str | None:
        if value is not None and not SESSION_ID.fullmatch(value):
            raise ValueError("must be 1-64 characters of letters, digits, '.', '_' or '-'")
        return value


class GenerateQuestion(MockTest):
    """POST /generate-question (and its GET form)."""

    part: int = 2

    @field_validator("part")
    @classmethod
    def _part(cls, value: int) -> int:
        if value not in (1, 2, 3):
            raise ValueError("must be 1, 2 or 3")
        return value


def payload(model: type[BaseModel]) -> Callable[[F], F]:
    """Declare the payload model of a view; `validate_payload` enforces it."""

    def mark(view: F) -> F:
        view.payload_model = model  # type: ignore[attr-defined]
        return view

    return mark


_PROBLEMS = {
    "extra_forbidden": "is not a known field",
    "int_type": "must be an integer",
    "string_type": "must be a string",
}


def _details(exc: ValidationError) -> list[dict[str, str]]:
    details = []
    for error in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "body"
        problem = _PROBLEMS.get(error["type"], error["msg"].removeprefix("Value error, "))
        details.append({"field": field, "problem": problem})
    return details


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


async def _json_body() -> object:
    body = await request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH, early
    if not body.strip():
        return {}
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise APIError(415, "unsupported_media_type", "send the body as application/json")
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise APIError(400, "invalid_json", "the body is not valid JSON") from None


def _query() -> dict[str, Any]:
    values: dict[str, Any] = dict(request.args.items())
    part = values.get("part")
    if isinstance(part, str) and part.isascii() and part.isdigit():
        values["part"] = int(part)
    return values


async def validate_payload() -> None:
    """before_request: parse and validate the payload of views that declare one."""
    view = current_app.view_functions.get(request.endpoint or "")
    model: type[BaseModel] | None = getattr(view, "payload_model", None)
    if model is None or request.method == "OPTIONS":  # a preflight has no payload
        return
    raw = await _json_body() if request.method == "POST" else _query()  # GET and HEAD
    if not isinstance(raw, dict):
        raise APIError(422, "invalid_payload", "the body must be a JSON object",
                       [{"field": "body", "problem": "must be a JSON object"}])
    try:
        g.payload = model.model_validate(raw)
    except ValidationError as exc:
        details = _details(exc)
        message = "; ".join(f"{d['field']} {d['problem']}" for d in details)
        raise APIError(422, "invalid_payload", message, details) from None
