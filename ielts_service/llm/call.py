"""What one model call sends: `ChatCall`, and the request body made of it.

Kept apart from the client so the prompt tools and the serving master can describe a call
without importing the SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_TOKENS = 1500  # what the budget assumes a call may write when the prompt sets no cap


@dataclass(frozen=True)
class ChatCall:
    """What to send on every attempt, and the labels its logs and metrics carry."""

    messages: list[dict[str, str]]
    response_format: dict[str, Any]
    part: int
    prompt_version: str
    temperature: float | None = None  # the prompt file's; None: the service's default
    max_tokens: int | None = None

    def token_estimate(self) -> int:
        """What the budget charges up front: the cap on the answer plus ~4 chars a token."""
        sent = sum(len(m["content"]) for m in self.messages) // 4
        return (self.max_tokens or DEFAULT_MAX_TOKENS) + sent


def chat_body(call: ChatCall, model: str, temperature: float,
              stream: bool = False) -> dict[str, object]:
    """The chat-completion request body; the prompt file's settings win over the defaults.
    A streamed call also asks for the token counts, which then come in a last chunk."""
    body: dict[str, object] = {
        "model": model,
        "messages": call.messages,
        "response_format": call.response_format,
        "temperature": temperature if call.temperature is None else call.temperature,
    }
    if call.max_tokens is not None:
        body["max_tokens"] = call.max_tokens
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return body
