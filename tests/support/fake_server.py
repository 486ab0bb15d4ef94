"""The fake model's HTTP server: it records every chat-completion request and answers with
the next scripted reply (`fake_replies`), streamed when the request asks for a stream."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.support.fake_items import _next_number, valid_items
from tests.support.fake_replies import (
    _AZURE_PATH,
    _OPENAI_PATHS,
    Drop,
    Ok,
    Raw,
    Recorded,
    Reply,
    Respond,
    Slow,
    Status,
    _error,
    _requested_part,
)
from tests.support.fake_stream import Paced, send_stream, streamed


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
