"""The access line's direct chain writes the same JSON as the stdlib route it skips."""

from __future__ import annotations

import io
import json

import structlog

from ielts_service.observability import logging as service_logging
from ielts_service.observability.logging import configure_logging, fast_logger

SECRET = "access-line-secret-71c"


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    assert service_logging._writer is not None
    service_logging._writer.flush()
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_direct_access_line_is_the_line_the_stdlib_route_writes():
    stream = io.StringIO()
    configure_logging("info", "json", [SECRET], stream=stream)
    try:
        structlog.contextvars.bind_contextvars(request_id="req-1", other="bound")
        fields = {"method": "POST", "path": f"/x?k={SECRET}", "status": 200, "bytes": None,
                  "duration_ms": 1.5, "request_id": "req-1"}
        fast = fast_logger("ielts_service.access")
        assert fast is not structlog.get_logger("ielts_service.access")
        fast.info("request", **fields)
        structlog.get_logger("ielts_service.access").info("request", **fields)
        direct, stdlib = _lines(stream)
        assert direct.pop("timestamp") and stdlib.pop("timestamp")
        assert list(direct.items()) == list(stdlib.items())  # same keys, order and values
        assert direct["path"] == "/x?k=[REDACTED]" and direct["other"] == "bound"
        assert direct["logger"] == "ielts_service.access" and direct["level"] == "info"
    finally:
        structlog.contextvars.clear_contextvars()
        configure_logging("info", "json", background=False)  # as tests/conftest.py has it


def test_below_its_level_the_direct_line_is_not_written():
    stream = io.StringIO()
    configure_logging("warning", "json", stream=stream)
    try:
        fast_logger("ielts_service.access").info("request", status=200)
        fast_logger("ielts_service.access").warning("request", status=500)
        assert [line["status"] for line in _lines(stream)] == [500]
    finally:
        configure_logging("info", "json", background=False)
