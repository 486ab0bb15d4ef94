"""Every error code the service answers with, in one table, and `APIError`.

The table feeds the envelope (status and default message), the OpenAPI document (which
codes each status of a route may carry) and, through the envelope's `message`, the
practice page's words. Domain code raises its own errors; `api.envelope` maps them here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ErrorCode:
    """One stable `code`, the HTTP status it always comes with, and a default message."""

    status: int
    code: str
    message: str


# Default messages are for people: a developer reading the envelope, or a student on the
# practice page, which shows the message with when to try again where `Retry-After` says.
TABLE = (
    ErrorCode(400, "invalid_json", "the request could not be read"),
    ErrorCode(401, "unauthorized", "authentication required"),
    ErrorCode(403, "forbidden", "not allowed"),
    ErrorCode(404, "not_found", "no such endpoint"),
    ErrorCode(404, "not_cached",
              "no question on this topic is ready yet; send the request as a POST to have one "
              "written"),
    ErrorCode(405, "method_not_allowed", "method not allowed on this endpoint"),
    ErrorCode(408, "request_timeout", "the request body took too long to arrive"),
    ErrorCode(413, "payload_too_large", "request body is too large"),
    ErrorCode(415, "unsupported_media_type", "send the body as application/json"),
    ErrorCode(422, "invalid_payload", "the request's fields are not valid"),
    ErrorCode(422, "topic_rejected",
              "the IELTS Speaking test avoids this topic; please choose another"),
    ErrorCode(422, "topic_unavailable",
              "the offline question bank has no questions on this topic; "
              "try one of the suggested topics"),
    ErrorCode(422, "content_filtered",
              "the model's content filter refused this topic; please choose another"),
    ErrorCode(422, "invalid_prompts", "the prompt files have problems; the last good ones serve"),
    ErrorCode(429, "rate_limited", "too many requests; slow down"),
    ErrorCode(429, "generation_limited",
              "you have asked for many new questions this hour; try a topic from the catalogue, "
              "or try again later"),
    ErrorCode(500, "internal_error", "internal error; it has been logged"),
    ErrorCode(503, "upstream_unavailable",
              "the question generator is unavailable right now"),
    ErrorCode(503, "cache_unavailable", "the cache did not answer"),
    ErrorCode(503, "not_ready", "not ready"),
    ErrorCode(504, "timeout", "the question took too long to arrive"),
    # Any other HTTP error the framework raises (416 on a bad Range header, say): the
    # status is the framework's; this code and message say only that it failed.
    ErrorCode(400, "http_error", "the request failed"),
)
CODES = {entry.code: entry for entry in TABLE}
# The code a bare HTTP status means when the framework raises it (not found, too large...).
BY_STATUS = {400: CODES["invalid_json"], 401: CODES["unauthorized"], 403: CODES["forbidden"],
             404: CODES["not_found"], 405: CODES["method_not_allowed"],
             408: CODES["request_timeout"], 413: CODES["payload_too_large"],
             415: CODES["unsupported_media_type"], 429: CODES["rate_limited"],
             503: CODES["upstream_unavailable"], 504: CODES["timeout"]}


@dataclass
class APIError(Exception):
    """An error answer: `api.envelope` turns it into `{"status": "error", ...}`.

    Build it with `APIError.of(code, ...)`, so the status comes from the table."""

    status: int
    code: str
    message: str
    details: list[dict[str, str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, code: str, message: str | None = None, *,
           details: list[dict[str, str]] | None = None,
           headers: dict[str, str] | None = None) -> APIError:
        entry = CODES[code]
        return cls(entry.status, code, message or entry.message, details, headers or {})

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"
