"""The `{status, data}` envelope and the one place errors become responses."""

from __future__ import annotations

from typing import Any

import structlog
from quart import Quart, Response, g, jsonify
from quart_rate_limiter import RateLimitExceeded
from werkzeug.exceptions import HTTPException

from ielts_service.errors import APIError

log = structlog.get_logger("ielts_service.api")

HTTP_CODES = {
    400: ("invalid_json", "the request could not be read"),
    401: ("unauthorized", "authentication required"),
    403: ("forbidden", "not allowed"),
    404: ("not_found", "no such endpoint"),
    405: ("method_not_allowed", "method not allowed on this endpoint"),
    408: ("timeout", "the request body took too long to arrive"),
    413: ("payload_too_large", "request body is too large"),
    415: ("unsupported_media_type", "send the body as application/json"),
    429: ("rate_limited", "too many requests; slow down"),
    503: ("upstream_unavailable", "service unavailable; try again later"),
    504: ("timeout", "the request took too long"),
}


def success(data: Any, status: int = 200) -> tuple[Response, int]:
    return jsonify({"status": "success", "data": data}), status


def error_response(error: APIError) -> tuple[Response, int, dict[str, str]]:
    if error.details:
        g.error_details = error.details  # the access line names them
    body: dict[str, Any] = {"status": "error", "code": error.code, "message": error.message}
    if error.details:
        body["details"] = error.details
    return jsonify(body), error.status, error.headers


def register_error_handlers(app: Quart) -> None:
    @app.errorhandler(APIError)
    async def _api_error(error: APIError) -> tuple[Response, int, dict[str, str]]:
        return error_response(error)

    @app.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> tuple[Response, int, dict[str, str]]:
        status = error.code or 500
        code, message = HTTP_CODES.get(status, ("http_error", "the request failed"))
        headers = {}
        if isinstance(error, RateLimitExceeded):
            headers["Retry-After"] = str(max(1, error.retry_after))
        if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
            headers["Allow"] = ", ".join(sorted(error.valid_methods))  # type: ignore[attr-defined]
        return error_response(APIError(status, code, message, headers=headers))

    @app.errorhandler(Exception)
    async def _unhandled(error: Exception) -> tuple[Response, int, dict[str, str]]:
        log.exception("unhandled_exception", error_type=type(error).__name__)
        return error_response(APIError(500, "internal_error", "internal error; it has been logged"))
