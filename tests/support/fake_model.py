"""A real HTTP server standing in for Azure OpenAI / OpenAI chat completions.

Tests program it with scripted replies (``ok``, ``status``, ``slow``, ``drop``,
``raw`` ...), or with replies built from each request (``respond``, ``echo_topic``), and
inspect what it received through ``FakeModel.requests``.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.support.fake_stream import Paced, send_stream, streamed

_AZURE_PATH = re.compile(r"^/openai/deployments/([^/]+)/chat/completions$")
_OPENAI_PATHS = ("/v1/chat/completions", "/chat/completions")
_PART_NAME = re.compile(r"part[\s_-]*([123])", re.IGNORECASE)
_counter, _counter_lock = itertools.count(1), threading.Lock()


def _next_number() -> int:
    with _counter_lock:
        return next(_counter)


# ---------------------------------------------------------------- items
_TOPICS = ("music", "travel", "cooking", "sport", "reading", "weather", "shopping", "friends")
_PLACES = ("a place you visited", "a book you read", "a person you admire", "a skill you learned",
           "a trip you enjoyed", "a gift you received", "a meal you remember", "a park you like")
_TYPES = ("place", "object", "person", "activity", "event", "object", "event", "place")


def _item(part: int, k: int) -> dict[str, Any]:
    topic = _TOPICS[k % len(_TOPICS)]
    if part == 1:
        return {"questions": [f"Do you enjoy {topic} number {k}?",
                              f"How often do you think about {topic} number {k}?",
                              f"When did you first try {topic} number {k}?",
                              f"Would you like more {topic} number {k} in future?"]}
    if part == 2:
        return {"type": _TYPES[k % len(_TYPES)],
                # The second word keeps cards k and k + 8 apart (not near-duplicates).
                "title": f"Describe {_PLACES[k % len(_PLACES)]} about "
                         f"{_TOPICS[k // len(_PLACES) % len(_TOPICS)]} number {k}",
                "bullets": ["what it was", "when it happened", "who was with you"],
                "explain": f"and explain why number {k} was memorable",
                "follow_ups": [f"Would you do something like number {k} again?"]}
    if part == 3:
        return {"questions": [f"Why do people value {topic} number {k}?",
                              f"How has {topic} number {k} changed in recent decades?",
                              f"What role should governments play in {topic} number {k}?",
                              f"Is {topic} number {k} more important for young or old people?",
                              f"How might {topic} number {k} develop in the future?"]}
    raise ValueError(f"IELTS part must be 1, 2 or 3, not {part!r}")


def valid_items(part: int, n: int = 5) -> list[dict[str, Any]]:
    """``n`` distinct, valid items of ``part``; text differs on every call."""
    return [_item(part, _next_number()) for _ in range(n)]


def invalid_items(part: int) -> list[dict[str, Any]]:
    """Items that each break one rule of ``part``."""
    if part == 1:
        return [{"questions": ["Do you enjoy music", "Where do you live?", "Do you cook?", "Why?"]},
                {"questions": ["Do you enjoy music?", "Where do you live?"]}]
    if part == 2:
        good = _item(2, _next_number())
        return [{**good, "title": "Talk about a place you visited"},
                {**good, "type": "thing"},
                {**good, "bullets": ["what it was", "when it was", "where it was",
                                     "who was there", "how you felt"]},
                {**good, "bullets": ["what was it?", "when did it happen?", "who was with you?"]},
                {**good, "follow_ups": []}]
    if part == 3:
        return [{"questions": ["Why do people travel", "How has travel changed?",
                               "Is travel good?", "What about cost?", "Will it grow?"]},
                {"questions": ["What is your favourite sport?", "Have you ever played golf?",
                               "Why do people play?", "Is sport good?", "Will it grow?"]}]
    raise ValueError(f"IELTS part must be 1, 2 or 3, not {part!r}")


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog (5) makes a storm of connections wait on 1 s SYN
    # retransmits: the fake, not the service, would look slow.
    request_queue_size = 4096
    stopped = False
    fake: FakeModel

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay silent: clients hanging up mid-reply is part of the job."""


class _Handler(BaseHTTPRequestHandler):
    # Replies go out as two writes; with Nagle on, the body waits 40 ms for a delayed ACK.
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """No stderr noise."""

    def setup(self) -> None:
        super().setup()
        with self.server.fake._cond:
            self.server.fake._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.fake._cond:
                self.server.fake._connections.discard(self.connection)

    def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-request-id", f"fake-{_next_number()}")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _send_json(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(code, json.dumps(payload).encode(), headers)

    def _dispatch(self) -> None:
        try:  # httpx always sends Content-Length; chunked bodies are refused
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                raise ValueError("chunked")
            raw_body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        except (ValueError, OSError):
            self.close_connection = True
            self._send_json(400, _error(400, "unreadable request body"))
            return
        url = urlsplit(self.path)
        azure = _AZURE_PATH.match(url.path)
        if self.command != "POST" or not (azure or url.path in _OPENAI_PATHS):
            self._send_json(404, _error(404, f"no route for {self.command} {url.path}"))
            return
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            body: Any = json.loads(raw_body) if raw_body else None
        except ValueError:
            body = None
        fake = self.server.fake
        recorded = Recorded(self.command, url.path, query,
                            {k.lower(): v for k, v in self.headers.items()}, body,
                            time.monotonic())
        fake._record(recorded)
        if azure and "api-version" not in query:
            self._send_json(404, _error(404, "Resource not found: api-version is required"))
            return
        if not isinstance(body, dict):
            self._send_json(400, _error(400, "request body must be a JSON object"))
            return
        reply, release = fake._next_reply()
        self._answer(reply, recorded, release)

    def _answer(self, reply: Reply, recorded: Recorded, release: threading.Event) -> None:
        body: dict[str, Any] = recorded.body
        if isinstance(reply, Respond):
            self._answer(reply.build(recorded), recorded, release)
        elif isinstance(reply, Slow):
            release.wait(reply.seconds)
            self._answer(Drop() if self.server.stopped else reply.then, recorded, release)
        elif isinstance(reply, Drop):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif isinstance(reply, Raw):
            self._send(reply.status, reply.body, reply.headers)
        elif isinstance(reply, Status):
            payload = reply.body if reply.body is not None else _error(
                reply.code, f"fake model error {reply.code}")
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self._send(reply.code, data, reply.headers)
        else:
            self._answer_ok(reply, body, release)

    def _answer_ok(self, reply: Ok, body: dict[str, Any], release: threading.Event) -> None:
        content: str | None = reply.content
        if reply.content_null:
            content = None
        elif content is None:
            items = reply.items
            if items is None:
                part = _requested_part(body)
                if part is None:
                    self._send_json(400, _error(400, "fake model: cannot tell the IELTS part "
                                                     "from response_format.json_schema.name"))
                    return
                items = valid_items(part)
            content = json.dumps({"items": items})
        payload: dict[str, Any] = {
            "id": f"chatcmpl-fake{_next_number()}", "object": "chat.completion",
            "created": int(time.time()), "model": reply.model,
            "choices": [{"index": 0, "finish_reason": reply.finish_reason, "logprobs": None,
                         "message": {"role": "assistant", "content": content, "refusal": None}}],
        }
        if reply.usage is not None:
            prompt, completion = reply.usage
            payload["usage"] = {"prompt_tokens": prompt, "completion_tokens": completion,
                                "total_tokens": prompt + completion}
        if streamed(body):
            if not (body.get("stream_options") or {}).get("include_usage"):
                payload.pop("usage", None)  # as Azure: counts only when asked for
            fake = self.server.fake
            with fake._cond:
                fake.open_streams += 1
            try:
                send_stream(self, payload, reply.pace or Paced(), release)
            finally:
                with fake._cond:
                    fake.open_streams -= 1
            return
        self._send_json(200, payload)

    def _guarded(self) -> None:
        try:
            self._dispatch()
        except (TimeoutError, ConnectionError, BrokenPipeError):
            self.close_connection = True
        except Exception as exc:  # never let a bad request kill the handler loop
            self.close_connection = True
            try:
                self._send_json(500, _error(500, f"fake model bug: {exc!r}"))
            except OSError:
                pass

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _guarded


class FakeModel:
    """Programmable chat-completions server on 127.0.0.1 (see module docstring)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[Reply] = []
        self._requests: list[Recorded] = []
        self._default: Reply | None = None
        self._release = threading.Event()
        self._connections: set[socket.socket] = set()
        self.open_streams = 0  # streamed answers still being written
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeModel:
        """Bind 127.0.0.1:0 and serve in a daemon thread."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-model", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release delayed replies and close open connections."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stopped = True
        self._release_delayed()
        server.shutdown()
        server.server_close()
        with self._cond:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeModel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server."""
        if self._server is None:
            raise RuntimeError("FakeModel is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[Recorded]:
        """A snapshot of the chat-completion requests received, in order."""
        with self._cond:
            return list(self._requests)

    def enqueue(self, *replies: Reply) -> None:
        """Script replies, consumed one per request in order."""
        with self._cond:
            self._queue.extend(replies)

    def set_default(self, reply: Reply | None) -> None:
        """Reply used when the queue is empty (None: built-in valid answer)."""
        with self._cond:
            self._default = reply

    def reset(self) -> None:
        """Clear queue, requests and default; release delayed replies."""
        with self._cond:
            self._queue.clear()
            self._requests.clear()
            self._default = None
        self._release_delayed()

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> None:
        """Block until at least ``n`` requests arrived, else AssertionError."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._requests) >= n, timeout):
                raise AssertionError(f"expected {n} requests within {timeout}s, "
                                     f"got {len(self._requests)}")

    # -- used by the handler
    def _release_delayed(self) -> None:
        with self._cond:
            old, self._release = self._release, threading.Event()
        old.set()

    def _record(self, rec: Recorded) -> None:
        with self._cond:
            self._requests.append(rec)
            self._cond.notify_all()

    def _next_reply(self) -> tuple[Reply, threading.Event]:
        with self._cond:
            reply = self._queue.pop(0) if self._queue else (self._default or Ok())
            return reply, self._release
