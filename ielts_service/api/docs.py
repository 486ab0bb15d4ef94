"""The machine-readable API (`/openapi.json`) and a page to read it (`/docs`).

The request schemas come from the same pydantic models the validation hook enforces, so
the spec cannot drift from what the service accepts.
"""

from __future__ import annotations

import html
import json
from typing import Any

from quart import Blueprint, Response

from ielts_service import __version__
from ielts_service.api.envelope import HTTP_CODES
from ielts_service.guards.validation import GenerateQuestion, MockTest

blueprint = Blueprint("openapi", __name__)

_ERROR = {"type": "object", "required": ["status", "code", "message"], "properties": {
    "status": {"const": "error"}, "code": {"type": "string"}, "message": {"type": "string"},
    "details": {"type": "array", "items": {"type": "object", "properties": {
        "field": {"type": "string"}, "problem": {"type": "string"}}}}}}
_SUCCESS = {"type": "object", "required": ["status", "data"], "properties": {
    "status": {"const": "success"}, "data": {"type": "object"}}}


def _responses(*statuses: int) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "success", "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Success"}}}}}
    for status in statuses:
        code = HTTP_CODES.get(status, ("error", ""))[0]
        responses[str(status)] = {"description": code, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return responses


def _body(model: type[Any]) -> dict[str, Any]:
    return {"required": False, "content": {"application/json": {
        "schema": model.model_json_schema()}}}


def spec() -> dict[str, Any]:
    question_errors = (400, 413, 415, 422, 429, 503, 504)
    query = [{"name": name, "in": "query", "required": False, "schema": schema}
             for name, schema in (("topic", {"type": "string", "minLength": 1,
                                              "maxLength": 120}),
                                  ("part", {"type": "integer", "enum": [1, 2, 3]}),
                                  ("session_id", {"type": "string",
                                                  "pattern": "^[A-Za-z0-9._-]{1,64}$"}))]
    bearer = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "ielts-service", "version": __version__,
                 "description": "IELTS Speaking test questions. Every response is an "
                                "envelope: {status, data} or {status, code, message}."},
        "paths": {
            "/generate-question": {
                "post": {"summary": "One question item for a topic and part",
                         "requestBody": _body(GenerateQuestion),
                         "responses": _responses(*question_errors)},
                "get": {"summary": "The same, from the query string", "parameters": query,
                        "responses": _responses(422, 429, 503, 504)},
            },
            "/v1/mock-test": {"post": {"summary": "A whole linked Speaking test",
                                       "requestBody": _body(MockTest),
                                       "responses": _responses(*question_errors)}},
            "/v1/topics": {"get": {"summary": "The topic catalogue", "responses": _responses()}},
            "/health/live": {"get": {"summary": "The process is up", "responses": _responses()}},
            "/health/ready": {"get": {"summary": "Can serve (200) or not (503)",
                                      "responses": _responses(503)}},
            "/metrics": {"get": {"summary": "Prometheus text exposition", "responses": {
                "200": {"description": "metrics", "content": {"text/plain": {}}}}}},
            "/admin/prompts": {"get": {"summary": "Prompt versions in use", "security": bearer,
                                       "responses": _responses(401, 403)}},
            "/admin/prompts/reload": {"post": {"summary": "Re-read the prompt files",
                                               "security": bearer,
                                               "responses": _responses(401, 403, 422)}},
            "/admin/cache/purge": {"post": {"summary": "Drop every pool", "security": bearer,
                                            "responses": _responses(401, 403, 503)}},
        },
        "components": {
            "schemas": {"Success": _SUCCESS, "Error": _ERROR},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


@blueprint.get("/openapi.json")
async def openapi_json() -> Response:
    """The OpenAPI 3.1 document."""
    return Response(json.dumps(spec()), content_type="application/json")


@blueprint.get("/docs")
async def docs() -> Response:
    """A readable page of the API, rendered here: no scripts, nothing fetched."""
    document = spec()
    rows = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            schema = operation.get("requestBody", {}).get("content", {}).get(
                "application/json", {}).get("schema")
            body = (f"<pre>{html.escape(json.dumps(schema, indent=2))}</pre>" if schema else "")
            statuses = ", ".join(operation["responses"])
            rows.append(f"<h2><code>{method.upper()} {html.escape(path)}</code></h2>"
                        f"<p>{html.escape(operation['summary'])}</p>{body}"
                        f"<p>Statuses: {statuses}</p>")
    page = (f"<!doctype html><html lang=en><meta charset=utf-8><title>ielts-service API</title>"
            f"<style>body{{font-family:sans-serif;max-width:50rem;margin:auto;padding:1rem}}"
            f"pre{{background:#f4f4f4;padding:.5rem;overflow:auto}}</style>"
            f"<h1>ielts-service {html.escape(document['info']['version'])}</h1>"
            f"<p>{html.escape(document['info']['description'])} "
            f"Machine-readable: <a href=/openapi.json>/openapi.json</a>.</p>{''.join(rows)}")
    response = Response(page, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
    return response
