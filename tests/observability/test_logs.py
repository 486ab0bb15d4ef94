"""Logs operators can filter by request: ids on every line, one access line, one ai_call per attempt."""

from __future__ import annotations

import io
import json
import logging
import threading

import structlog

from ielts_service.observability.logging import BatchWriter, configure_logging
from tests.support import fake_model as fm
from tests.support.waiting import generations_settled

ACCESS_FIELDS = {"method", "route", "path", "status", "duration_ms", "bytes", "client",
                 "user_agent", "request_id"}
AI_CALL_FIELDS = {"request_id", "provider", "model", "prompt", "prompt_version", "part",
                  "attempt", "outcome", "latency_ms", "prompt_tokens", "completion_tokens"}


def of_request(events, request_id):
    return [e for e in events if e.get("request_id") == request_id]


async def test_every_line_of_a_request_carries_its_request_id(azure_client, fake_model,
                                                              log_events):
    fake_model.enqueue(fm.status(429, headers={"retry-after-ms": "20"}))
    response = await azure_client.post("/generate-question", json={"topic": "gardens"},
                                       headers={"X-Request-ID": "req-abc"})
    logged = [e for e in log_events() if e["event"] != "services_opened"]
    assert response.headers["X-Request-ID"] == "req-abc"
    assert {e["event"] for e in logged} >= {"ai_call", "request"}
    assert all(e.get("request_id") == "req-abc" for e in logged), logged


async def test_one_access_line_per_request_with_its_fields(bank_client, log_events):
    await bank_client.post("/generate-question", json={"part": 2},
                           headers={"User-Agent": "frontend/1.2", "X-Request-ID": "r1"})
    await bank_client.get("/no/such/page", headers={"X-Request-ID": "r2"})
    access = [e for e in log_events() if e["event"] == "request"]
    assert [e["request_id"] for e in access] == ["r1", "r2"]
    first, second = access
    assert ACCESS_FIELDS <= set(first)
    assert first["route"] == "/generate-question" and first["status"] == 200
    assert first["user_agent"] == "frontend/1.2" and first["bytes"] > 0
    assert second["route"] == "unmatched" and second["path"] == "/no/such/page"


async def test_a_validation_failure_puts_its_details_on_the_access_line(bank_client, log_events):
    await bank_client.post("/generate-question", json={"part": 8, "colour": "red"})
    access = [e for e in log_events() if e["event"] == "request"][-1]
    assert access["status"] == 422
    assert {d["field"] for d in access["details"]} == {"part", "colour"}


async def test_one_ai_call_per_attempt_with_retry_reason_wait_and_tokens(
    azure_client, fake_model, log_events
):
    fake_model.enqueue(fm.status(429, headers={"retry-after-ms": "150"}),
                       fm.ok(usage=(321, 654)))
    await azure_client.post("/generate-question", json={"topic": "gardens", "part": 3})
    await generations_settled(azure_client)  # the answer goes on streaming after the reply
    calls = [e for e in log_events() if e["event"] == "ai_call"]
    assert len(calls) == 2 == len(fake_model.requests)
    retried, succeeded = calls
    assert AI_CALL_FIELDS <= set(retried) and AI_CALL_FIELDS <= set(succeeded)
    assert (retried["attempt"], retried["outcome"], retried["retry_reason"]) == (
        1, "rate_limited", "rate_limited")
    assert retried["retry_wait_ms"] >= 150 and retried["status_code"] == 429
    assert (succeeded["attempt"], succeeded["outcome"]) == (2, "success")
    assert (succeeded["prompt_tokens"], succeeded["completion_tokens"]) == (321, 654)
    assert succeeded["part"] == 3 and succeeded["prompt"] == "part3"
    assert succeeded["model"] == "gpt-4o-test" and succeeded["provider"] == "azure"


async def test_the_last_failed_attempt_is_logged_too(client_with_attempts, fake_model, log_events):
    fake_model.set_default(fm.status(500))
    await client_with_attempts.post("/generate-question", json={"topic": "quantum physics"})
    calls = [e for e in log_events() if e["event"] == "ai_call"]
    assert [c["outcome"] for c in calls] == ["server_error", "server_error"]
    assert calls[0]["retry_reason"] == "server_error" and calls[1]["retry_reason"] is None


def test_console_format_on_a_tty_and_json_otherwise():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Tty(), io.StringIO()
    try:
        configure_logging("info", "auto", stream=tty, background=False)
        structlog.get_logger("t").info("hello", n=1)
        configure_logging("info", "auto", stream=pipe, background=False)
        structlog.get_logger("t").info("hello", n=1)
        logging.getLogger("hypercorn.error").info("stdlib line")
    finally:
        configure_logging("info", "json", background=False)
    assert "hello" in tty.getvalue() and not tty.getvalue().lstrip().startswith("{")
    lines = [json.loads(line) for line in pipe.getvalue().splitlines()]
    assert lines[0]["event"] == "hello" and lines[0]["n"] == 1
    assert lines[1]["event"] == "stdlib line" and lines[1]["logger"] == "hypercorn.error"


def test_a_stalled_stream_costs_dropped_lines_not_a_blocked_caller():
    class Stalled(io.StringIO):
        """A pipe nobody reads: a write blocks until the gate opens, however long that is."""

        def __init__(self) -> None:
            super().__init__()
            self.stalled, self.open_gate = threading.Event(), threading.Event()

        def write(self, text: str) -> int:
            self.stalled.set()
            self.open_gate.wait()
            return super().write(text)

    stream = Stalled()
    writer = BatchWriter(stream, max_lines=50, interval=0.01)

    def log_500_lines() -> None:
        writer.emit(logging.makeLogRecord({"msg": "line 0"}))
        stream.stalled.wait(timeout=30)  # the writer thread is now stuck in write()
        for n in range(1, 500):
            writer.emit(logging.makeLogRecord({"msg": f"line {n}"}))

    caller = threading.Thread(target=log_500_lines, daemon=True)
    caller.start()
    caller.join(timeout=30)  # a caller that waits on the stream never returns before the gate
    returned_while_stalled = stream.stalled.is_set() and not caller.is_alive()
    stream.open_gate.set()
    caller.join()
    writer.close()
    lines = stream.getvalue().splitlines()
    assert returned_while_stalled
    dropped = [json.loads(line) for line in lines if "log_lines_dropped" in line]
    assert len(lines) - len(dropped) + sum(d["count"] for d in dropped) == 500
    assert dropped and dropped[0]["level"] == "warning"
