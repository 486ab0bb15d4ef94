"""The machine-readable API (`/openapi.json`) and a page to read it (`/docs`).

Generated, so it cannot drift: request bodies and query parameters are the JSON schema of
the models the validation hook enforces (`guards.schemas`), and each route's error
answers are the codes of `ielts_service.errors` it can send, grouped by their status.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel
from quart import Blueprint, Response

from ielts_service import __version__
from ielts_service.api.page import TYPES, served
from ielts_service.errors import CODES
from ielts_service.guards.schemas import MockTestRequest, QuestionRequest

blueprint = Blueprint("docs", __name__)

# What the guards may answer before a handler runs, per kind of route.
BODY = ("invalid_json", "payload_too_large", "unsupported_media_type", "request_timeout")
GUARDED = ("unauthorized", "forbidden", "rate_limited")  # client API keys, rate limits
QUESTION = ("invalid_payload", "topic_rejected", "topic_unavailable", "content_filtered",
            "generation_limited", "upstream_unavailable", "timeout")
# A GET never calls the model: a pool, the bank, or nothing ready yet.
CACHED_ONLY = ("invalid_payload", "topic_rejected", "topic_unavailable", "not_cached")
ADMIN = ("unauthorized", "forbidden")


@dataclass(frozen=True)
class Operation:
    summary: str
    codes: tuple[str, ...] = ()
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    content: tuple[str, ...] = ("application/json",)  # media types of the success answer
    secured: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


OPERATIONS: dict[str, dict[str, Operation]] = {
    "/generate-question": {
        "post": Operation("One question item for a topic and part", (*BODY, *GUARDED, *QUESTION),
                          body=QuestionRequest),
        "get": Operation("The same from the query string, answered from pools or the bank "
                         "only: never a fresh model call", (*GUARDED, *CACHED_ONLY),
                         query=QuestionRequest),
    },
    "/v1/mock-test": {"post": Operation("A whole linked Speaking test",
                                        (*BODY, *GUARDED, *QUESTION), body=MockTestRequest)},
    "/v1/topics": {"get": Operation("The topic catalogue")},
    "/health/live": {"get": Operation("The process is up")},
    "/health/ready": {"get": Operation("Can serve (200) or not (503)", ("not_ready",))},
    "/metrics": {"get": Operation("Prometheus text exposition (bearer METRICS_TOKEN when set)",
                                  ADMIN, content=("text/plain",))},
    "/admin/prompts": {"get": Operation("Prompt versions in use", ADMIN, secured=True)},
    "/admin/prompts/reload": {"post": Operation("Re-read the prompt files",
                                                (*ADMIN, "invalid_prompts"), secured=True)},
    "/admin/cache/purge": {"post": Operation("Drop every pool", (*ADMIN, "cache_unavailable"),
                                             secured=True)},
    "/openapi.json": {"get": Operation("This document")},
    "/docs": {"get": Operation("This document as a page", content=("text/html",))},
    "/": {"get": Operation("The practice page", content=("text/html",))},
    "/static/{name}": {"get": Operation(
        "The practice page's files (any other name: 404)", ("not_found",),
        content=tuple(sorted(set(TYPES.values()))),
        extra={"parameters": [{"name": "name", "in": "path", "required": True,
                               "schema": {"type": "string", "enum": sorted(served())}}]})},
}
_REQUEST_ID = {"$ref": "#/components/headers/RequestId"}


def _error_response(codes: list[str]) -> dict[str, Any]:
    status = CODES[codes[0]].status
    headers: dict[str, Any] = {"X-Request-ID": _REQUEST_ID}
    if status in (429, 503):
        headers["Retry-After"] = {"$ref": "#/components/headers/RetryAfter"}
    schema = {"allOf": [{"$ref": "#/components/schemas/Error"},
                        {"properties": {"code": {"enum": codes}}}]}
    description = "; ".join(f"{c}: {CODES[c].message}" for c in codes)
    return {"description": description, "headers": headers,
            "content": {"application/json": {"schema": schema}}}


def _responses(operation: Operation) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "success", "headers": {"X-Request-ID": _REQUEST_ID}}
    if operation.content == ("application/json",):
        ok["content"] = {"application/json": {"schema": {"$ref": "#/components/schemas/Success"}}}
    else:
        ok["content"] = {media: {"schema": {"type": "string"}} for media in operation.content}
    responses = {"200": ok}
    by_status: dict[int, list[str]] = {}
    for code in operation.codes:
        by_status.setdefault(CODES[code].status, []).append(code)
    for status, codes in sorted(by_status.items()):
        responses[str(status)] = _error_response(codes)
    return responses


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    parameters = []
    for name, schema in model.model_json_schema()["properties"].items():
        schema = dict(schema)
        options = [s for s in schema.pop("anyOf", []) if s.get("type") != "null"]
        schema.update(options[0] if options else {})
        schema.pop("title", None)
        parameters.append({"name": name, "in": "query", "required": False,
                           "description": schema.pop("description", ""), "schema": schema})
    return parameters


def _operation(operation: Operation) -> dict[str, Any]:
    document: dict[str, Any] = {"summary": operation.summary, "responses": _responses(operation),
                                **operation.extra}
    if operation.body is not None:
        document["requestBody"] = {"required": False, "content": {"application/json": {
            "schema": operation.body.model_json_schema()}}}
    if operation.query is not None:
        document["parameters"] = _query_parameters(operation.query)
    if operation.secured:
        document["security"] = [{"bearer": []}]
    return document


@cache
def spec() -> dict[str, Any]:
    error = {"type": "object", "required": ["status", "code", "message"], "properties": {
        "status": {"const": "error"}, "code": {"type": "string"}, "message": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "problem": {"type": "string"},
            # topic_unavailable: one catalogue topic per entry, closest first
            "suggestion": {"type": "string"}}}}}}
    success = {"type": "object", "required": ["status", "data"], "properties": {
        "status": {"const": "success"}, "data": {"type": "object"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "ielts-service", "version": __version__,
                 "description": "IELTS Speaking test questions. Every JSON response is an "
                                "envelope: {status, data} or {status, code, message}."},
        "paths": {path: {method: _operation(op) for method, op in methods.items()}
                  for path, methods in OPERATIONS.items()},
        "components": {
            "schemas": {"Success": success, "Error": error},
            "headers": {
                "RequestId": {"required": True, "description": "echoed when well-formed",
                              "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}},
                "RetryAfter": {"description": "seconds to wait before trying again",
                               "schema": {"type": "string", "pattern": "^[0-9]+$"}},
            },
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
            statuses = "; ".join(f"{status} {html.escape(answer['description'])}"
                                 for status, answer in operation["responses"].items())
            rows.append(f"<h2><code>{method.upper()} {html.escape(path)}</code></h2>"
                        f"<p>{html.escape(operation['summary'])}</p>{body}"
                        f"<p>Answers: {statuses}</p>")
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
