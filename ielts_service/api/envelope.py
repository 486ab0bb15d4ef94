"""The `{status, data}` envelope, and the one place errors become responses.

Domain code raises its own errors (a rejected topic, an unreachable model, a passed
deadline); `DOMAIN_ERRORS` says which code of the table in `ielts_service.errors` each
one answers with. Nothing else chooses a status.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import structlog
from quart import Quart, Response, g, jsonify
from quart_rate_limiter import RateLimitExceeded
from werkzeug.exceptions import HTTPException

from ielts_service.deadline import DeadlineExceeded
from ielts_service.errors import BY_STATUS, CODES, APIError
from ielts_service.llm.errors import ContentFiltered
from ielts_service.questions.bank import TopicUnavailable
from ielts_service.questions.prompts import PromptError
from ielts_service.questions.service import NoQuestion, NotCached
from ielts_service.questions.topics import TopicRejected
from ielts_service.state.quota import QuotaExhausted
from ielts_service.state.redis import StoreError

log = structlog.get_logger("ielts_service.api")
CACHE_RETRY_AFTER = 5


def _prompt_problems(error: PromptError) -> APIError:
    return APIError.of("invalid_prompts", "; ".join(str(p) for p in error.problems),
                       details=[{"field": f"{p.file}:{p.line}", "problem": p.message}
                                for p in error.problems])


def _suggestions(error: TopicUnavailable) -> APIError:
    return APIError.of("topic_unavailable", details=[
        {"field": "topic", "problem": f"try {name!r} instead", "suggestion": name}
        for name in error.suggestions])


DOMAIN_ERRORS: dict[type[Exception], Callable[[Any], APIError]] = {
    TopicRejected: lambda _: APIError.of("topic_rejected"),
    TopicUnavailable: _suggestions,
    ContentFiltered: lambda _: APIError.of("content_filtered"),
    NoQuestion: lambda e: APIError.of("upstream_unavailable",
                                      headers={"Retry-After": str(int(e.retry_after))}),
    QuotaExhausted: lambda e: APIError.of(
        "generation_limited", headers={"Retry-After": str(max(1, math.ceil(e.retry_after)))}),
    NotCached: lambda _: APIError.of("not_cached"),
    DeadlineExceeded: lambda _: APIError.of("timeout"),
    StoreError: lambda _: APIError.of("cache_unavailable",
                                      headers={"Retry-After": str(CACHE_RETRY_AFTER)}),
    PromptError: _prompt_problems,
}


def success(data: Any, status: int = 200) -> tuple[Response, int]:
    return jsonify({"status": "success", "data": data}), status


def error_response(error: APIError, **extra: Any) -> tuple[Response, int, dict[str, str]]:
    """The error envelope; `extra` adds fields (readiness adds its `checks`)."""
    if error.details:
        g.error_details = error.details  # the access line names them
    body: dict[str, Any] = {"status": "error", "code": error.code, "message": error.message}
    if error.details:
        body["details"] = error.details
    body.update(extra)
    return jsonify(body), error.status, error.headers


def _http_error(error: HTTPException) -> APIError:
    status = error.code or 500
    entry = BY_STATUS.get(status, CODES["http_error"])
    headers = {}
    if isinstance(error, RateLimitExceeded):  # ours always carries whole seconds
        seconds = error.retry_after if isinstance(error.retry_after, int) else 1
        headers["Retry-After"] = str(max(1, seconds))
    valid_methods = getattr(error, "valid_methods", None)
    if status == 405 and valid_methods:
        headers["Allow"] = ", ".join(sorted(valid_methods))
    return APIError(status, entry.code, entry.message, headers=headers)


def register_error_handlers(app: Quart) -> None:
    @app.errorhandler(APIError)
    async def _api_error(error: APIError) -> tuple[Response, int, dict[str, str]]:
        return error_response(error)

    for kind, to_api_error in DOMAIN_ERRORS.items():
        app.register_error_handler(kind, _answer_with(to_api_error))

    @app.errorhandler(HTTPException)
    async def _http(error: HTTPException) -> tuple[Response, int, dict[str, str]]:
        return error_response(_http_error(error))

    @app.errorhandler(Exception)
    async def _unhandled(error: Exception) -> tuple[Response, int, dict[str, str]]:
        log.exception("unhandled_exception", error_type=type(error).__name__)
        return error_response(APIError.of("internal_error"))


def _answer_with(
    to_api_error: Callable[[Any], APIError]
) -> Callable[[Exception], Any]:
    async def answer(error: Exception) -> tuple[Response, int, dict[str, str]]:
        return error_response(to_api_error(error))

    return answer
