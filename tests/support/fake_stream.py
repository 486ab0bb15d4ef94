"""Streamed answers for the fake model: a chat completion sent as server-sent events, the
way Azure OpenAI streams (`data: {chunk}` lines, usage in a last chunk, `data: [DONE]`).

`Paced` sets a realistic pace (time to the first token, chunks a second) and can break the
connection part-way, after the text of some items has gone out.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Paced:
    """How a streamed answer goes out: after `first_token` s, `per_second` chunks a second
    of `chunk_chars` characters; with `break_after_items`, the connection drops once that
    many items' text has been sent (the items before it are complete, the next is not)."""

    first_token: float = 0.0
    per_second: float = 0.0  # 0: as fast as the socket takes them
    chunk_chars: int = 24
    break_after_items: int | None = None


class Writer(Protocol):
    connection: socket.socket
    close_connection: bool

    def send_response(self, code: int) -> None: ...
    def send_header(self, key: str, value: str) -> None: ...
    def end_headers(self) -> None: ...
    @property
    def wfile(self) -> Any: ...


def _cut(content: str, after_items: int) -> str:
    """`content` up to just past the end of item number `after_items` (and a little of the
    next), so exactly that many items are complete when the connection drops."""
    depth, items, in_string, escaped = 0, 0, False, False
    for i, ch in enumerate(content):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if ch == "}" and depth == 2:  # an item inside {"items": [ ... ]}
                items += 1
                if items == after_items:
                    return content[: i + 1] + ', {"que'
    return content


def send_stream(writer: Writer, payload: dict[str, Any], pace: Paced,
                release: threading.Event) -> None:
    """Write `payload` (a chat.completion) as a stream of chat.completion.chunk events."""
    choice = payload["choices"][0]
    content: str = choice["message"]["content"] or ""
    if pace.break_after_items is not None:
        content = _cut(content, pace.break_after_items)
    base = {"id": payload["id"], "object": "chat.completion.chunk", "created": payload["created"],
            "model": payload["model"]}
    writer.send_response(200)
    writer.send_header("Content-Type", "text/event-stream")
    writer.send_header("Cache-Control", "no-cache")
    writer.send_header("Connection", "close")
    writer.end_headers()
    writer.close_connection = True

    def event(data: dict[str, Any] | str) -> None:
        text = data if isinstance(data, str) else json.dumps(data)
        writer.wfile.write(f"data: {text}\n\n".encode())
        writer.wfile.flush()

    def chunk(delta: dict[str, Any], finish: str | None = None) -> None:
        event({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                                    "logprobs": None}]})

    release.wait(pace.first_token)
    chunk({"role": "assistant", "content": ""})
    pieces = [content[i:i + pace.chunk_chars] for i in range(0, len(content), pace.chunk_chars)]
    for piece in pieces:
        chunk({"content": piece})
        if pace.per_second:
            release.wait(1 / pace.per_second)
    if pace.break_after_items is not None:
        writer.connection.shutdown(socket.SHUT_RDWR)  # mid-answer, no finish, no [DONE]
        return
    chunk({}, choice["finish_reason"])
    if (usage := payload.get("usage")) is not None:
        event({**base, "choices": [], "usage": usage})
    event("[DONE]")


def streamed(body: Any) -> bool:
    """Whether the request asked for a streamed answer."""
    return isinstance(body, dict) and body.get("stream") is True
