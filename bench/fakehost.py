"""The fake Azure OpenAI server (tests/support/fake_model.py) in a process of its own.

In the bench's own process its thousand reply threads would fight the load client for the
GIL and blur every latency; here they only compete for the CPU, like a real upstream.
The parent drives it over a pipe with the same verbs as `FakeModel`.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from tests.support.fake_model import Reply


@dataclass(frozen=True)
class Call:
    """One chat-completion request the fake model received."""
    received_at: float  # time.monotonic() of the fake's process: CLOCK_MONOTONIC, host-wide
    request_id: str | None  # the X-Request-ID the service forwarded


def _serve(conn: Connection) -> None:
    from tests.support import fake_model as fm

    # The fake itself sets a deep listen backlog and TCP_NODELAY (see tests/support).
    fake = fm.FakeModel().start()
    conn.send(fake.url)
    while True:
        verb, arg = conn.recv()
        answer: Any = None
        if verb == "stop":
            fake.stop()
            conn.send(None)
            return
        if verb == "set_default":
            fake.set_default(arg)
        elif verb == "enqueue":
            fake.enqueue(*arg)
        elif verb == "reset":
            fake.reset()
        elif verb == "calls":
            answer = [Call(r.received_at, r.headers.get("x-request-id")) for r in fake.requests]
        conn.send(answer)


class FakeModelProcess:
    """`start()`, `url`, `set_default`, `enqueue`, `reset`, `calls()`, `stop()`."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(child,), name="bench-fake-model",
                                    daemon=True)
        self.url = ""

    def start(self) -> FakeModelProcess:
        self._process.start()
        if not self._conn.poll(30):
            raise RuntimeError("the fake model process did not start within 30 s")
        self.url = self._conn.recv()
        return self

    def _ask(self, verb: str, arg: Any = None) -> Any:
        self._conn.send((verb, arg))
        if not self._conn.poll(30):
            raise RuntimeError(f"the fake model process did not answer {verb!r} within 30 s")
        return self._conn.recv()

    def set_default(self, reply: Reply | None) -> None:
        self._ask("set_default", reply)

    def enqueue(self, *replies: Reply) -> None:
        self._ask("enqueue", list(replies))

    def reset(self) -> None:
        self._ask("reset")

    def calls(self) -> list[Call]:
        return list(self._ask("calls"))

    def stop(self) -> None:
        if self._process.is_alive():
            try:
                self._ask("stop")
            except (RuntimeError, OSError, EOFError):
                pass
            self._process.join(5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
