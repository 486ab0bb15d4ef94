"""What the fake model can be told to answer (``ok``, ``status``, ``slow``, ``drop``, ``raw``,
``respond``, ``echo_topic`` ...), and the request it records."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.fake_items import _next_number
from tests.support.fake_stream import Paced

_AZURE_PATH = re.compile(r"^/openai/deployments/([^/]+)/chat/completions$")
_OPENAI_PATHS = ("/v1/chat/completions", "/chat/completions")
_PART_NAME = re.compile(r"part[\s_-]*([123])", re.IGNORECASE)


# ---------------------------------------------------------------- replies
@dataclass(frozen=True)
class Ok:
    """200 chat.completion; ``items=None`` builds valid items for the requested part."""
    items: list[dict[str, Any]] | None = None
    content: str | None = None
    content_null: bool = False
    finish_reason: str = "stop"
    usage: tuple[int, int] | None = (100, 200)
    model: str = "gpt-4o"
    pace: Paced | None = None  # how a streamed answer goes out (see fake_stream)


@dataclass(frozen=True)
class Status:
    """An HTTP error with a JSON body (``bytes`` body is sent as is)."""
    code: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Raw:
    """Exactly ``body`` with Content-Type application/json."""
    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Slow:
    """Wait ``seconds``, then send ``then``; reset() sends it at once, stop() drops it."""
    seconds: float
    then: Reply = field(default_factory=Ok)


@dataclass(frozen=True)
class Drop:
    """Read the request, then close the socket without a byte of response."""


@dataclass(frozen=True)
class Respond:
    """The reply ``build(request)`` returns for the request as received."""
    build: Callable[[Recorded], Reply]


Reply = Ok | Status | Raw | Slow | Drop | Respond

CONTENT_FILTER_BODY: dict[str, Any] = {"error": {
    "message": "The response was filtered due to the prompt triggering Azure OpenAI's "
               "content management policy.",
    "type": None, "param": "prompt", "code": "content_filter", "status": 400,
    "innererror": {"code": "ResponsibleAIPolicyViolation",
                   "content_filter_result": {"hate": {"filtered": True, "severity": "high"}}},
}}
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 429: "rate_limit_exceeded"}


def ok(items: list[dict[str, Any]] | None = None, *, content: str | None = None,
       finish_reason: str = "stop", usage: tuple[int, int] | None = (100, 200),
       model: str = "gpt-4o", pace: Paced | None = None) -> Ok:
    """A 200 chat.completion whose content is ``{"items": items}`` or raw ``content``;
    streamed (at `pace`) when the request asks for a stream."""
    return Ok(items=items, content=content, finish_reason=finish_reason, usage=usage,
              model=model, pace=pace)


def status(code: int, *, body: Any = None, headers: dict[str, str] | None = None) -> Status:
    """An HTTP ``code`` error, e.g. ``status(429, headers={"retry-after-ms": "300"})``."""
    return Status(code=code, body=body, headers=dict(headers or {}))


def content_filter_400() -> Status:
    """Azure's 400 for a prompt that trips the content filter."""
    return Status(code=400, body=CONTENT_FILTER_BODY)


def content_filter_finish() -> Ok:
    """A 200 whose choice was cut by the content filter (content null)."""
    return Ok(content_null=True, finish_reason="content_filter")


def slow(seconds: float, then: Reply | None = None) -> Slow:
    """Delay ``then`` (default ``ok()``) by ``seconds``; no header goes out before."""
    return Slow(seconds=seconds, then=then if then is not None else Ok())


def drop() -> Drop:
    """Close the connection without answering."""
    return Drop()


def raw(body: bytes, *, status: int = 200, headers: dict[str, str] | None = None) -> Raw:
    """Send exactly ``body`` (e.g. truncated JSON) as application/json."""
    return Raw(body=body, status=status, headers=dict(headers or {}))


def respond(build: Callable[[Recorded], Reply]) -> Respond:
    """A reply computed per request, e.g. from its messages or its ``x-request-id``."""
    return Respond(build=build)


# ---------------------------------------------------------------- a model that reads the topic
TOPIC_MARK = "Topic: "  # where the prompt files put the topic, last in the user message


def quoted_topic(request: Recorded) -> str | None:
    """The topic exactly as the user message carried it: the text after its last
    ``Topic: `` (a JSON string literal when the service quotes it), else None."""
    user = request.message("user")
    return user.rsplit(TOPIC_MARK, 1)[1] if user and TOPIC_MARK in user else None


def echoed(part: int, quoted: str) -> str:
    """The text ``echo_topic`` writes into every item of ``part`` for ``quoted``: its first
    eight words, as a model that follows the rules would write them (no markup, no second
    sentence or question, and in Part 3 nothing that addresses the candidate)."""
    text = re.sub(r"[<>{}\[\]`*#|\\%?.!]", " ", quoted)
    if part == 3:
        text = re.sub(r"\byou(r|rs|rself)?\b", "one", text, flags=re.IGNORECASE)
    return "about " + " ".join(text.split()[:8])


def _echo_item(part: int, quoted: str, k: int) -> dict[str, Any]:
    echo = echoed(part, quoted)  # with the words beside it, eight words keep every limit
    if part == 1:
        return {"questions": [f"Do you like talking {echo}?", f"How often do you think {echo}?",
                              f"Would you like to learn more, number {k}?",
                              "When did you last talk with a friend?"]}
    if part == 2:
        return {"type": "object", "title": f"Describe something {echo}",
                "bullets": ["what it is", "when you found it", f"where you saw number {k}"],
                "explain": "and explain how you feel about it",
                "follow_ups": ["Do your friends like it too?"]}
    return {"questions": [f"How do people feel {echo} nowadays?",
                          f"Why do some people care {echo}?",
                          f"How has number {k} changed in recent decades?",
                          "What might change in the future?"]}


def _echo(request: Recorded) -> Reply:
    part, quoted = _requested_part(request.body), quoted_topic(request)
    if part is None or quoted is None:
        return Status(400, _error(400, "fake model: no part or no 'Topic: ' to echo"))
    return Ok(items=[_echo_item(part, quoted, _next_number()) for _ in range(2)])


def echo_topic() -> Respond:
    """A model that writes the topic, as the user message quoted it, into each item: what
    the service sent shows in what it serves (see ``echoed``)."""
    return Respond(build=_echo)


# ---------------------------------------------------------------- server
@dataclass
class Recorded:
    """One chat-completion request as received."""
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    received_at: float

    def message(self, role: str) -> str | None:
        """The content of the first chat message with ``role``, if any."""
        messages = self.body.get("messages") if isinstance(self.body, dict) else None
        for message in messages if isinstance(messages, list) else []:
            if isinstance(message, dict) and message.get("role") == role:
                return message.get("content")
        return None

    @property
    def deployment(self) -> str | None:
        """The Azure deployment in the path, or None on OpenAI-style paths."""
        m = _AZURE_PATH.match(self.path)
        return m.group(1) if m else None


def _requested_part(body: Any) -> int | None:
    try:
        name = body["response_format"]["json_schema"]["name"]
    except (KeyError, TypeError):
        return None
    m = _PART_NAME.search(str(name))
    return int(m.group(1)) if m else None


def _error(code: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(code, "server_error" if code >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "code": str(code)}}
