"""Payload validation that runs before any handler (a `before_request` hook).

A view declares its payload model with `@payload(Model)`; the hook reads the body (or the
query string for GET), checks content type, size, JSON and fields, and leaves the parsed
model in `g.payload`. A bad payload never reaches a handler, let alone the model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from quart import g
from quart.globals import request_ctx
from quart.wrappers import Request

from ielts_service.errors import APIError
from ielts_service.guards.schemas import problem

F = TypeVar("F", bound=Callable[..., Any])
PAYLOAD_MODEL = "payload_model"


def payload(model: type[BaseModel]) -> Callable[[F], F]:
    """Declare the payload model of a view; `validate_payload` enforces it."""

    def mark(view: F) -> F:
        setattr(view, PAYLOAD_MODEL, model)
        return view

    return mark


def payload_model(view: object) -> type[BaseModel] | None:
    """The model a view declared with `@payload`, if any."""
    model: type[BaseModel] | None = getattr(view, PAYLOAD_MODEL, None)
    return model


def _details(exc: ValidationError) -> list[dict[str, str]]:
    details = []
    for error in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "body"
        words = problem(field, error["type"]) or error["msg"].removeprefix("Value error, ")
        details.append({"field": field, "problem": words})
    return details


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


async def _json_body(request: Request) -> object:
    body = await request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH, early
    if not body.strip():
        return {}
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise APIError.of("unsupported_media_type")
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise APIError.of("invalid_json", "the body is not valid JSON") from None


def _query(request: Request) -> dict[str, Any]:
    values: dict[str, Any] = dict(request.args.items())
    part = values.get("part")
    if isinstance(part, str) and part.isascii() and part.isdigit():
        values["part"] = int(part)
    return values


async def validate_payload() -> None:
    """before_request: parse and validate the payload of views that declare one."""
    request = request_ctx.request  # the object itself: no context lookup per attribute
    model = payload_model(request_ctx.app.view_functions.get(request.endpoint or ""))
    if model is None or request.method == "OPTIONS":  # a preflight has no payload
        return
    raw = await _json_body(request) if request.method == "POST" else _query(request)
    if not isinstance(raw, dict):
        raise APIError.of("invalid_payload", "the body must be a JSON object",
                          details=[{"field": "body", "problem": "must be a JSON object"}])
    try:
        g.payload = model.model_validate(raw)
    except ValidationError as exc:
        details = _details(exc)
        message = "; ".join(f"{d['field']} {d['problem']}" for d in details)
        raise APIError.of("invalid_payload", message, details=details) from None
